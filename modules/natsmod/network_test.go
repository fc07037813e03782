package natsmod_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/internal/faultproxy"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// The service reaches NATS through a proxy that adds 200ms ± 100ms of
// latency, then blackholes the link for 10s, then resets the connections:
// nothing acknowledged is lost, /ready fails within 2s of the blackhole and
// passes after it, and memory stays bounded.
func TestNetworkFaults_LatencyBlackholeResets(t *testing.T) {
	srv := natstest.Start(t)
	proxy, err := faultproxy.Start(strings.TrimPrefix(srv.URL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	direct := testConfig(srv)
	via := direct
	via.URL = "nats://" + proxy.Addr()
	consumer := connect(t, via, "behind-the-proxy")
	mu, got := tickBus(t, consumer, "ticks", "c1")
	heapBefore := heapMB()

	total := 3000
	pub := connect(t, direct, "publisher")
	var acked atomic.Int64
	published := make(chan int, 1)
	go func() { published <- publishTicks(pub, total, 2*time.Millisecond, &acked) }()

	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		return consumer.Check(ctx)
	}
	// Latency.
	proxy.SetLatency(200*time.Millisecond, 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	proxy.SetLatency(0, 0)
	// Blackhole.
	holed := time.Now()
	proxy.Blackhole(true)
	var notReadyAfter time.Duration
	for check() == nil {
		if time.Since(holed) > 2*time.Second {
			t.Fatalf("/ready check still passes %v into the blackhole", time.Since(holed))
		}
	}
	notReadyAfter = time.Since(holed)
	time.Sleep(10*time.Second - time.Since(holed))
	proxy.Blackhole(false)
	healed := time.Now()
	var checkErr error
	if !catgatest.Poll(15*time.Second, func() bool { checkErr = check(); return checkErr == nil }) {
		t.Fatalf("/ready check still fails %v after the blackhole ended: %v", time.Since(healed), checkErr)
	}
	readyAfter := time.Since(healed)
	// Resets.
	for range 3 {
		proxy.Reset()
		time.Sleep(300 * time.Millisecond)
	}
	retries := <-published
	lost, dups := tally(t, mu, got, total, 60*time.Second)
	heapAfter := heapMB()
	t.Logf("%d events through latency 200±100ms, a 10s blackhole and 3 resets: not ready %v into the blackhole, ready %v after it; lost %d, duplicates %d, publish retries %d; heap %.1f -> %.1f MiB",
		total, notReadyAfter.Round(time.Millisecond), readyAfter.Round(time.Millisecond), len(lost), dups, retries, heapBefore, heapAfter)
	if len(lost) > 0 {
		t.Fatalf("lost %d acknowledged events, first %v", len(lost), lost[:min(len(lost), 10)])
	}
	if heapAfter-heapBefore > 64 {
		t.Fatalf("heap grew %.1f MiB", heapAfter-heapBefore)
	}
}
