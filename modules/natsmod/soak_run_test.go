package natsmod_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/faultproxy"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// The default run soaks briefly; go test -tags soak runs TestSoak_TenMinutes.
func TestSoak_Short(t *testing.T) { soak(t, 20*time.Second) }

// replica is one consumer instance behind its own proxy, so a "kill" cuts
// its connection with handlers in flight, as SIGKILL would.
type replica struct {
	proxy *faultproxy.Proxy
	tr    *natsmod.Transport
	bus   *cqrs.Bus
}

// soak runs scenarios 2, 4 and 6 together for d: steady publishing; in
// turn a broker restart, a replica killed and replaced, a slow phase
// (handlers ten times slower than publishing) and a fast one. Then it lets
// the backlog drain and counts: lost 0, duplicates and redeliveries
// reported, memory bounded.
func soak(t *testing.T, d time.Duration) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	cfg.AckWait = 2 * time.Second
	var delay atomic.Int64 // the handlers' pace, changed by the slow phase
	var mu sync.Mutex
	got := map[int]int{}
	var redelivered atomic.Int64
	handler := cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(ctx context.Context, e Tick) error {
		if m, _ := cqrs.MessageFrom(ctx); m.Envelope().Attempt > 1 {
			redelivered.Add(1)
		}
		time.Sleep(time.Duration(delay.Load()))
		mu.Lock()
		got[e.N]++
		mu.Unlock()
		return nil
	}))
	var replicas [2]*replica
	var generation atomic.Int64
	start := func(i int) *replica {
		p, err := faultproxy.Start(strings.TrimPrefix(srv.URL(), "nats://"))
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.URL = "nats://" + p.Addr()
		tr, err := natsmod.New(c, fmt.Sprintf("soak-%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, err := cqrs.New(cqrs.Options{Service: "soak", Instance: fmt.Sprintf("r%d-%d", i, generation.Add(1)), Transport: tr, Concurrency: 8,
			Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2}}, handler)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return &replica{proxy: p, tr: tr, bus: b}
	}
	kill := func(r *replica) {
		r.proxy.Blackhole(true) // acks in flight are lost with the link
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_ = r.bus.Stop(ctx)
		_ = r.tr.Close(ctx)
		cancel()
		r.proxy.Close()
	}
	for i := range replicas {
		replicas[i] = start(i)
	}
	heapStart, heapMax := heapMB(), 0.0
	pub := connect(t, cfg, "soak-publisher")
	var acked atomic.Int64
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() { // steady publishing, each retried until acknowledged
		n := 0
		topic := transport.Topic{Kind: transport.KindEvent, Name: "Tick"}
		for {
			select {
			case <-stop:
				sent <- n
				return
			default:
			}
			env := &transport.Envelope{ID: cqrs.NewID(), Name: "Tick", Kind: transport.KindEvent, ContentType: "application/json",
				Time: time.Now(), Payload: fmt.Appendf(nil, `{"n":%d}`, n)}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := pub.Publish(ctx, topic, env)
				cancel()
				if err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			acked.Add(1)
			n++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	phase := max(d/8, 2*time.Second)
	began := time.Now()
	var restarts, kills int
	for step := 0; time.Since(began) < d; step++ {
		switch step % 4 {
		case 0:
			srv.Shutdown()
			time.Sleep(300 * time.Millisecond)
			srv.StartAgain(t)
			restarts++
		case 1:
			kill(replicas[0])
			replicas[0] = start(0)
			kills++
		case 2:
			delay.Store(int64(160 * time.Millisecond)) // 2 x 8 handlers at 160ms: 100/s, a tenth of publishing
		case 3:
			delay.Store(0)
		}
		time.Sleep(phase)
		heapMax = max(heapMax, heapMB())
	}
	close(stop)
	total := <-sent
	delay.Store(0)
	lost, dups := tally(t, &mu, got, total, 2*time.Minute)
	for _, r := range replicas {
		kill(r)
	}
	t.Logf("soak %v: %d events, %d broker restarts, %d replica kills, slow and fast phases: lost %d, duplicates %d, redeliveries %d; heap %.1f MiB at start, %.1f at most",
		d, total, restarts, kills, len(lost), dups, redelivered.Load(), heapStart, heapMax)
	if len(lost) > 0 {
		t.Fatalf("lost %d acknowledged events, first %v", len(lost), lost[:min(len(lost), 10)])
	}
	if heapMax-heapStart > 128 {
		t.Fatalf("heap grew to %.1f MiB", heapMax)
	}
}
