package natsmod_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// A handler ten times slower than the publish rate: the backlog waits in
// the broker, not in memory; nothing is redelivered; the lag shows.
func TestSlowConsumer_BoundedNoRedeliveryStormLagVisible(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	tr := connect(t, cfg, "slow")
	var handled, redelivered atomic.Int64
	bus, err := cqrs.New(cqrs.Options{Service: "slow", Instance: "s1", Transport: tr, Concurrency: 2},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(ctx context.Context, e Tick) error {
			if m, _ := cqrs.MessageFrom(ctx); m.Envelope().Attempt > 1 {
				redelivered.Add(1)
			}
			time.Sleep(20 * time.Millisecond) // 2 at a time: 100/s
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
	heapBefore := heapMB()
	pub := connect(t, cfg, "pub")
	var acked atomic.Int64
	const total = 5000 // at about 1,000/s: ten times the handler's pace
	publishTicks(pub, total, time.Millisecond, &acked)
	time.Sleep(time.Second)
	lag, err := tr.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	heapAfter := heapMB()
	var pending, unacked int64
	for _, l := range lag {
		pending += l.Pending
		unacked += l.Unacked
	}
	t.Logf("%d published in ~%v, %d handled: lag pending %d, unacked %d; redelivered %d; heap %.1f -> %.1f MiB",
		total, total*time.Millisecond, handled.Load(), pending, unacked, redelivered.Load(), heapBefore, heapAfter)
	// Unacked: the 2 handlers in flight and the pull batch (at most the
	// concurrency) waiting for them; the rest stays in the broker.
	if pending+unacked < int64(total)/2 || unacked > 4 {
		t.Errorf("lag pending %d unacked %d: want the backlog in the broker, at most 4 unacked", pending, unacked)
	}
	if redelivered.Load() != 0 {
		t.Errorf("%d redeliveries: a slow consumer must not cause a redelivery storm", redelivered.Load())
	}
	if heapAfter-heapBefore > 32 {
		t.Errorf("heap grew %.1f MiB with a backlog of %d", heapAfter-heapBefore, pending)
	}
}

// A handler that panics on one message in a hundred: the process lives on,
// the rest are handled, the panicking ones are dead-lettered, and no
// goroutine is left behind.
func TestHandlerPanics_OneInAHundred(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	tr := connect(t, cfg, "panicky")
	var handled atomic.Int64
	bus, err := cqrs.New(cqrs.Options{Service: "panicky", Instance: "p1", Transport: tr, MaxDeliver: 2,
		Redelivery: cqrs.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2},
		Delivery:   cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Service: "panicky", Retry: cqrs.RetryPolicy{Attempts: 2, Initial: time.Millisecond}})},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			if e.N%100 == 0 {
				panic(fmt.Sprintf("tick %d is cursed", e.N))
			}
			handled.Add(1)
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	const total = 1000
	publishTicks(connect(t, cfg, "pub"), total, 0, &acked)
	dls, _ := bus.DeadLetters()
	var list []transport.DeadLetter
	catgatest.Poll(30*time.Second, func() bool {
		list, _ = dls.ListDeadLetters(context.Background(), "panicky", 0)
		return handled.Load() == total-total/100 && len(list) == total/100
	})
	if err := bus.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if handled.Load() != total-total/100 || len(list) != total/100 {
		t.Fatalf("handled %d, dead-lettered %d; want %d and %d", handled.Load(), len(list), total-total/100, total/100)
	}
	if list[0].Code != string(cqrs.CodeInternal) || !strings.Contains(list[0].Error, "is cursed") {
		t.Errorf("dead letter %+v, want the panic as an internal error", list[0])
	}
	// No goroutine outlives the test: the package's goleak check sees to it.
	t.Logf("%d events, 1 in 100 panics: the process lives; handled %d, dead-lettered %d after %d attempts each",
		total, handled.Load(), len(list), list[0].Attempts)
}
