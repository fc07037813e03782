package cqrstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/transport"
)

func testCloseReopen(t *testing.T, h *harness) {
	total, cycles := n(5000, 500), 5
	c := newCollector()
	group := h.group("durable")
	open := func(i int) (transport.Transport, transport.Closer) {
		tr := h.connect(t)
		inst := fmt.Sprintf("cycle%d", i)
		s := transport.Subscription{Group: group, Instance: inst, Concurrency: 8, Topics: []transport.TopicHandler{{
			Topic: eventTopic, Handler: transport.DeliveryHandlerFunc(ack(c, inst)),
		}}}
		sub, err := tr.Subscribe(context.Background(), s)
		if err != nil {
			t.Fatalf("cycle %d subscribe: %v", i, err)
		}
		return tr, sub
	}
	closeSub := func(tr transport.Transport, sub transport.Closer) {
		ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
		defer cancel()
		if err := sub.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		closeTransport(t, tr)
	}
	tr, sub := open(0) // the group exists before the first event
	want := keys("d", total)
	pub := h.connect(t)
	published := make(chan error, 1)
	go func() {
		for i, k := range want {
			if err := pub.Publish(context.Background(), eventTopic, keyed(k)); err != nil {
				published <- fmt.Errorf("publish %s: %w", k, err)
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		published <- nil
	}()
	for i := 1; i <= cycles; i++ {
		before := c.total()
		deadline := time.Now().Add(h.f.timeout())
		for c.total() < before+total/(cycles*2) && time.Now().Before(deadline) && !c.has(want) {
			time.Sleep(2 * time.Millisecond)
		}
		closeSub(tr, sub) // a closed group keeps what arrives meanwhile
		time.Sleep(20 * time.Millisecond)
		tr, sub = open(i)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	h.eventually(func() bool { return c.has(want) }, func() string { return c.diff(want, false) })
	closeSub(tr, sub)
	if d := c.diff(want, false); d != "" {
		t.Fatal(d)
	}
	t.Logf("%d events over %d cycles: %d deliveries (%d redelivered after a close)", total, cycles, c.total(), c.total()-total)
}

func testConcurrentClose(t *testing.T, h *harness) {
	tr := h.connect(t)
	// Warm the connection up, through a delivery, so what it starts once is
	// not counted as a leak; then close the warm subscription, whose own
	// fetching would otherwise come and go while the count is taken.
	warmed := make(chan struct{}, 1)
	warm := h.subscribe(tr, h.group("warm"), "w", 1, func(ctx context.Context, d transport.Delivery) {
		_ = d.Ack(ctx)
		select {
		case warmed <- struct{}{}:
		default:
		}
	}, eventTopic)
	h.publish(tr, eventTopic, keyed("warm"))
	select {
	case <-warmed:
	case <-time.After(h.f.timeout()):
		t.Fatal("the warm-up event never arrived")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), h.f.timeout())
	defer wcancel()
	if err := warm.Close(wctx); err != nil {
		t.Fatalf("close the warm-up subscription: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	base := goroutines()
	var subs []transport.Closer
	for i := range 10 {
		s, err := tr.Subscribe(context.Background(), transport.Subscription{Group: h.group(fmt.Sprintf("g%d", i%3)), Instance: fmt.Sprintf("i%d", i),
			Topics: []transport.TopicHandler{{Topic: eventTopic, Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) { _ = d.Ack(ctx) })}}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	for range 20 {
		h.publish(tr, eventTopic, keyed("x"))
	}
	var wg sync.WaitGroup
	panics := make(chan any, 20)
	for _, s := range append(subs, subs...) { // each closed twice, all at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					panics <- v
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
			defer cancel()
			_ = s.Close(ctx)
		}()
	}
	wg.Wait()
	close(panics)
	for v := range panics {
		t.Fatalf("Close panicked: %v", v)
	}
	var left []string
	h.eventually(func() bool { left = newGoroutines(base, h.f.BrokerGoroutines); return len(left) == 0 },
		func() string {
			return fmt.Sprintf("%d goroutines left after closing:\n%s", len(left), strings.Join(left, "\n\n"))
		})
}

func testContext(t *testing.T, h *harness) {
	tr := h.connect(t)
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	sub, err := tr.Subscribe(context.Background(), transport.Subscription{Group: h.group("g"), Instance: "i1",
		Topics: []transport.TopicHandler{{Topic: eventTopic, Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				cancelled <- ctx.Err()
			case <-time.After(h.f.timeout()):
				cancelled <- errors.New("never cancelled")
			}
			_ = d.Nak(context.WithoutCancel(ctx), 0)
		})}}})
	if err != nil {
		t.Fatal(err)
	}
	h.publish(h.connect(t), eventTopic, keyed("block"))
	select {
	case <-started:
	case <-time.After(h.f.timeout()):
		t.Fatal("the handler never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := time.Now()
	_ = sub.Close(ctx)
	if err := <-cancelled; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler context: %v, want cancelled when the subscription closed", err)
	}
	if d := time.Since(closed); d > 5*time.Second {
		t.Fatalf("Close took %v with a 100ms context", d)
	}

	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	start := time.Now()
	if err := tr.Publish(expired, eventTopic, keyed("late")); err == nil {
		t.Error("Publish with an expired context succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Publish with an expired context took %v", d)
	}
}

func testDurableCommands(t *testing.T, h *harness) {
	count := n(300, 60)
	c := newCollector()
	svc := h.group("owner")
	reg := func(inst string) cqrs.Registration {
		return cqrs.HandleCommand(cqrs.CommandHandlerFunc[suiteCommand, string](func(_ context.Context, cmd suiteCommand) (string, error) {
			c.add(inst, cmd.Key)
			return "", nil
		}))
	}
	var owners []*cqrs.Bus
	var trs []transport.Transport
	for i := range 3 {
		tr := h.connect(t)
		trs = append(trs, tr)
		owners = append(owners, h.bus(busOptions{service: svc, instance: fmt.Sprintf("o%d", i), transport: tr}, reg(fmt.Sprintf("o%d", i))))
	}
	caller := h.bus(busOptions{service: h.group("caller"), instance: "c1"})
	want := keys("cmd", count)
	for _, k := range want {
		if err := caller.Dispatch(context.Background(), suiteCommand{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually(func() bool { return c.has(want) }, func() string { return c.diff(want, true) })
	quiet()
	if d := c.diff(want, true); d != "" {
		t.Fatal(d)
	}
	t.Logf("commands per instance: %v", c.perInstance())
	if !h.f.Persistent {
		return
	}
	// Restart: every owner stops; commands sent meanwhile wait for them.
	for i, b := range owners {
		ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
		_ = b.Stop(ctx)
		cancel()
		closeTransport(t, trs[i])
	}
	later := keys("after", n(50, 10))
	for _, k := range later {
		if err := caller.Dispatch(context.Background(), suiteCommand{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	h.bus(busOptions{service: svc, instance: "o-new"}, reg("o-new"))
	all := append(append([]string(nil), want...), later...)
	h.eventually(func() bool { return c.has(all) }, func() string { return c.diff(all, false) })
	quiet()
	if d := c.diff(all, true); d != "" {
		t.Fatalf("after the restart: %s", d)
	}
}

func testDrain(t *testing.T, h *harness) {
	total := n(200, 60)
	svc := h.group("svc")
	var started, finished sync.Map
	var cancelledHandlers atomic.Int32
	handled := newCollector()
	handler := func(inst string) cqrs.Registration {
		return cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(ctx context.Context, e suiteEvent) error {
			started.Store(e.Key, true)
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				cancelledHandlers.Add(1)
				return ctx.Err()
			}
			handled.add(inst, e.Key)
			finished.Store(e.Key, true)
			return nil
		}))
	}
	tr := h.connect(t)
	b := h.bus(busOptions{service: svc, instance: "first", transport: tr, concurrency: 16}, handler("first"))
	want := keys("e", total)
	pub := h.bus(busOptions{service: h.group("pub"), instance: "p"})
	for _, k := range want {
		if err := pub.Publish(context.Background(), suiteEvent{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually(func() bool { return handled.total() >= 16 }, func() string { return "no handler finished" })
	ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
	if err := b.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	cancel()
	closeTransport(t, tr)
	var unfinished []string
	started.Range(func(k, _ any) bool {
		if _, ok := finished.Load(k); !ok {
			unfinished = append(unfinished, k.(string))
		}
		return true
	})
	if len(unfinished) > 0 || cancelledHandlers.Load() > 0 {
		t.Fatalf("stop cut %d handlers short (%d cancelled): %s", len(unfinished), cancelledHandlers.Load(), list(unfinished))
	}
	firstRun := handled.total()
	h.bus(busOptions{service: svc, instance: "second", concurrency: 16}, handler("second"))
	h.eventually(func() bool { return handled.has(want) }, func() string { return handled.diff(want, false) })
	quiet()
	if d := handled.diff(want, false); d != "" {
		t.Fatal(d)
	}
	t.Logf("%d events: %d handled before stop, %d after restart, %d handled twice", total, firstRun,
		handled.perInstance()["second"], handled.total()-total)
}

// heldInbox is an idempotency store in which every key is held by a run
// elsewhere (an instance that crashed holding its claims). It counts claims.
type heldInbox struct{ claims sync.Map }

func (s *heldInbox) Claim(_ context.Context, key string, _ time.Duration) (inbox.State, error) {
	s.claims.Store(key, true)
	return inbox.StateBusy, nil
}
func (s *heldInbox) MarkDone(context.Context, string, time.Duration) error { return nil }
func (s *heldInbox) Release(context.Context, string) error                 { return nil }

func (s *heldInbox) count() int {
	n := 0
	s.claims.Range(func(any, any) bool { n++; return true })
	return n
}

// testDrainWaiting: deliveries waiting on claims another instance holds do
// not hold a stop (the transport gives handler contexts transport.WithDrain and
// drains as Close begins); they go back to the broker, not to the dead
// letters, and the next instance handles each once.
func testDrainWaiting(t *testing.T, h *harness) {
	total := n(20, 10)
	svc := h.group("svc")
	handled := newCollector()
	handler := func(inst string) cqrs.Registration {
		return cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
			handled.add(inst, e.Key)
			return nil
		}))
	}
	tr := h.connect(t)
	held := &heldInbox{}
	b := h.bus(busOptions{service: svc, instance: "first", transport: tr, concurrency: total, idempotency: held}, handler("first"))
	want := keys("w", total)
	pub := h.bus(busOptions{service: h.group("pub"), instance: "p"})
	for _, k := range want {
		if err := pub.Publish(context.Background(), suiteEvent{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually(func() bool { return held.count() >= total }, func() string {
		return fmt.Sprintf("%d of %d deliveries reached the inbox", held.count(), total)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	start := time.Now()
	err := b.Stop(ctx)
	cancel()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		t.Fatalf("stop with %d deliveries waiting on claims held elsewhere: %v after %v; the transport must drain transport.WithDrain contexts as Close begins",
			total, err, took)
	}
	if handled.total() != 0 {
		t.Fatalf("%d handled while their claims were held", handled.total())
	}
	if dls, err := b.DeadLetters(); err == nil {
		if got, err := dls.ListDeadLetters(context.Background(), svc, 0); err != nil || len(got) != 0 {
			t.Fatalf("%d dead letters (err %v), want none: a message given back at stop is not an attempt that failed: %+v", len(got), err, got)
		}
	}
	closeTransport(t, tr)
	h.bus(busOptions{service: svc, instance: "second"}, handler("second"))
	h.eventually(func() bool { return handled.has(want) }, func() string { return handled.diff(want, false) })
	quiet()
	if d := handled.diff(want, true); d != "" {
		t.Fatal(d)
	}
	t.Logf("%d deliveries waiting on held claims: stop took %v, the next instance handled each once", total, took)
}
