package natsmod_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// tickBus starts a bus on tr whose Tick handler records every N.
func tickBus(t *testing.T, tr transport.Transport, service, instance string) (*sync.Mutex, map[int]int) {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	bus, err := cqrs.New(cqrs.Options{Service: service, Instance: instance, Transport: tr, Concurrency: 64,
		Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			mu.Lock()
			got[e.N]++
			mu.Unlock()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })
	return &mu, got
}

// publishTicks publishes 0..n-1 from one goroutine, each retried with its
// own id until the broker acknowledges it, and returns how many retries
// it took. pace spaces the publishes.
func publishTicks(tr transport.Transport, n int, pace time.Duration, acked *atomic.Int64) (retries int) {
	topic := transport.Topic{Kind: transport.KindEvent, Name: "Tick"}
	for i := range n {
		env := &transport.Envelope{ID: cqrs.NewID(), Name: "Tick", Kind: transport.KindEvent, ContentType: "application/json",
			Time: time.Now(), Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := tr.Publish(ctx, topic, env)
			cancel()
			if err == nil {
				acked.Add(1)
				break
			}
			retries++
			time.Sleep(50 * time.Millisecond)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
	return retries
}

// tally waits until every N below n was handled, then reports the lost
// and the duplicated.
func tally(t *testing.T, mu *sync.Mutex, got map[int]int, n int, within time.Duration) (lost []int, dups int) {
	t.Helper()
	catgatest.Poll(within, func() bool {
		mu.Lock()
		defer mu.Unlock()
		lost, dups = nil, 0
		for i := range n {
			switch c := got[i]; {
			case c == 0:
				lost = append(lost, i)
			case c > 1:
				dups += c - 1
			}
		}
		return len(lost) == 0
	})
	return lost, dups
}

// A three-node cluster with R3 streams: one node killed and restarted
// while 10,000 events flow; every acknowledged event is handled.
func TestCluster_NodeKilledAndRestarted_LosesNothing(t *testing.T) {
	total := 10_000
	if testing.Short() {
		total = 2_000
	}
	c := natstest.StartCluster(t, 3)
	cfg := testConfigAt(c.URLs())
	cfg.Replicas = 3
	mu, got := tickBus(t, connect(t, cfg, "consumer"), "ticks", "c1")
	pub := connect(t, cfg, "publisher")
	var acked atomic.Int64
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- publishTicks(pub, total, 0, &acked) }()
	catgatest.Eventually(t, time.Minute, "a third of the events not acknowledged", func() bool { return acked.Load() >= int64(total/3) })
	victim := c.Nodes[1]
	victim.Shutdown()
	killedAt := acked.Load()
	time.Sleep(time.Second)
	victim.StartAgain(t)
	retries := <-done
	lost, dups := tally(t, mu, got, total, 60*time.Second)
	t.Logf("3-node cluster, R3: %d events, node n1 killed after %d and restarted 1s later: publish retries %d, lost %d, duplicates %d, %v",
		total, killedAt, retries, len(lost), dups, time.Since(start).Round(time.Millisecond))
	if len(lost) > 0 {
		t.Fatalf("lost %d acknowledged events, first %v", len(lost), lost[:min(len(lost), 10)])
	}
}

var _ = natsmod.Config{}
