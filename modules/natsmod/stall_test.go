package natsmod_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// A subscription of concurrency 1 pulls one message at a time and must keep
// pulling: a backlog of 300 events is handled with no pause, while other
// publishes keep the subscriber's connection busy.
//
// The busy connection is what exposes the bug this guards against. With
// nats.go's Messages iterator a batch-of-1 refill was lost whenever the
// reply to a pull came back before nats.go's pull goroutine, which had
// lost the CPU after sending the request, marked it sent; the consumer then
// sat idle until the missing heartbeats (5 s) rebuilt it. Contention on the
// connection (here 8 goroutines publishing 4 KB each, in a service its own
// publishes and acks) makes that window wide enough that the stall shows
// within a few dozen messages, where on an idle connection it happens once
// in tens of thousands.
func TestSubscribe_ConcurrencyOneKeepsPulling(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	tr := connect(t, cfg, "one")
	gate := make(chan struct{})
	var handled atomic.Int64
	bus, err := cqrs.New(cqrs.Options{Service: "one", Instance: "i1", Transport: tr, Concurrency: 1},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(context.Context, Tick) error {
			<-gate // the backlog is published first
			handled.Add(1)
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer bus.Stop(context.Background())
	pub := connect(t, cfg, "pub")
	const total = 300
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range total {
		if err := pub.Publish(ctx, tickTopic, tickEnv(i)); err != nil {
			t.Fatal(err)
		}
	}
	defer keepBusy(natsmod.Conn(tr), 8, 4<<10)()
	close(gate)

	// A pause of 2 s is a stall: a pull lost and rebuilt. Handling itself
	// takes milliseconds a message, even on a loaded machine.
	began, moved, last := time.Now(), time.Now(), int64(0)
	for n := handled.Load(); n < total; n = handled.Load() {
		switch {
		case n != last:
			last, moved = n, time.Now()
		case time.Since(moved) > 2*time.Second:
			t.Fatalf("stalled: %d of %d handled, none for %v", n, total, time.Since(moved).Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d handled in %v", total, time.Since(began).Round(time.Millisecond))
}

// keepBusy has n goroutines publish size bytes to a subject nobody
// subscribes to on nc until the returned func is called, which waits for
// them.
func keepBusy(nc *nats.Conn, n, size int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	payload := make([]byte, size)
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					_ = nc.Publish("catga.test.nobody", payload)
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}
