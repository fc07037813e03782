package bench

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// OutboxRate is the steady load of BenchmarkOutboxLatency, in
// transactions per second.
const OutboxRate = 1000

// BenchmarkOutboxLatency: the outbox contenders at a steady OutboxRate
// transactions per second (b.N of them, so ns/op is about 1 ms while the
// rate holds), reporting the latency from a transaction's commit returning
// to its event's receipt by the consumer: p50-ms and p99-ms.
func BenchmarkOutboxLatency(b *testing.B) {
	env := Env{NATS: natstest.Start(b).URL()}
	withPostgres(b)
	compare(b, "OutboxLatency", env)
}

func outboxLatency(setup outboxSetup) func(*testing.B, Env) {
	return func(b *testing.B, env Env) {
		var down teardown
		defer down.run()
		recv := make([]atomic.Int64, b.N) // receipt, unix ns; the first only
		var handled atomic.Int64
		op := setup(b, env, &down, func(i int) {
			if i >= 0 && i < len(recv) && recv[i].CompareAndSwap(0, time.Now().UnixNano()) {
				handled.Add(1)
			}
		})
		commits := make([]int64, b.N)
		b.ResetTimer()
		steady(b, OutboxRate, func(i int) error {
			if err := op(i); err != nil {
				return err
			}
			commits[i] = time.Now().UnixNano()
			return nil
		})
		WaitCount(b, &handled, b.N)
		b.StopTimer()
		lat := make([]time.Duration, b.N)
		for i := range lat {
			// A receipt can come before Tx has returned to the caller:
			// the relay may read the row while the commit's answer is on
			// its way.
			lat[i] = max(0, time.Duration(recv[i].Load()-commits[i]))
		}
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	}
}

// percentile is the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(rank, 1)-1]
}

// steady runs op(i) for i in [0, b.N) at rate per second, open loop: op i
// is due at start + i/rate whatever the earlier ones took, and runs on the
// first of Publishers goroutines free. If they are all busy the next op
// waits, and the run is slower than the rate: ns/op shows it.
func steady(b *testing.B, rate int, op func(i int) error) {
	interval := time.Second / time.Duration(rate)
	next := make(chan int)
	var wg sync.WaitGroup
	for range Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := op(i); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		next <- i
	}
	close(next)
	wg.Wait()
}
