package redismod_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/internal/faultproxy"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// The consumer reaches Redis through a proxy that adds 200ms ± 100ms of
// latency, then blackholes the link for 10s, then resets the connections:
// nothing acknowledged is lost, the readiness check fails within 2s of the
// blackhole and passes after it, and memory stays bounded.
func TestNetworkFaults_LatencyBlackholeResets(t *testing.T) {
	srv := redistest.Start(t)
	proxy, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	direct := testConfig(srv.URL())
	via := direct
	via.URL = "redis://" + proxy.Addr() + "/0"
	via.ReadTimeout, via.WriteTimeout, via.DialTimeout = time.Second, time.Second, time.Second
	consumer := connect(t, via, "behind-the-proxy")
	mu, got := counter(t, consumer, "ticks", "c1")
	heapBefore := heapMB()
	pub := connect(t, direct, "publisher")
	const total = 3000
	var want []int
	var acked atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			for pub.Publish(context.Background(), tickTopic, tickEnv(i)) != nil {
				time.Sleep(20 * time.Millisecond)
			}
			acked.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := range total {
		want = append(want, i)
	}
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		return consumer.Check(ctx)
	}
	proxy.SetLatency(200*time.Millisecond, 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	proxy.SetLatency(0, 0)
	holed := time.Now()
	proxy.Blackhole(true)
	for check() == nil {
		if time.Since(holed) > 2*time.Second {
			t.Fatalf("check still passes %v into the blackhole", time.Since(holed))
		}
	}
	notReadyAfter := time.Since(holed)
	time.Sleep(10*time.Second - time.Since(holed))
	proxy.Blackhole(false)
	healed := time.Now()
	var checkErr error
	if !catgatest.Poll(15*time.Second, func() bool { checkErr = check(); return checkErr == nil }) {
		t.Fatalf("check still fails %v after the blackhole: %v", time.Since(healed), checkErr)
	}
	readyAfter := time.Since(healed)
	for range 3 {
		proxy.Reset()
		time.Sleep(300 * time.Millisecond)
	}
	<-done
	lost, dups := waitAll(t, mu, got, want, 60*time.Second)
	heapAfter := heapMB()
	t.Logf("%d events through latency 200±100ms, a 10s blackhole and 3 resets: not ready %v into the blackhole, ready %v after it; lost %d, duplicates %d; heap %.1f -> %.1f MiB",
		total, notReadyAfter.Round(time.Millisecond), readyAfter.Round(time.Millisecond), len(lost), dups, heapBefore, heapAfter)
	if len(lost) > 0 {
		t.Fatalf("lost %d, first %v", len(lost), lost[:min(len(lost), 10)])
	}
	if heapAfter-heapBefore > 64 {
		t.Fatalf("heap grew %.1f MiB", heapAfter-heapBefore)
	}
}
