package cqrstest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// arrivals records when each scheduled message arrived, by instance.
type arrivals struct {
	mu   sync.Mutex
	at   map[string][]time.Time // key -> arrival times
	envs map[string]*transport.Envelope
	inst map[string]int
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string][]time.Time{}, envs: map[string]*transport.Envelope{}, inst: map[string]int{}}
}

func (a *arrivals) handler(instance string) func(context.Context, transport.Delivery) {
	return func(ctx context.Context, d transport.Delivery) {
		a.mu.Lock()
		k := keyOf(d)
		a.at[k] = append(a.at[k], time.Now())
		a.envs[k] = d.Envelope().Clone()
		a.inst[instance]++
		a.mu.Unlock()
		_ = d.Ack(ctx)
	}
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ts := range a.at {
		n += len(ts)
	}
	return n
}

// check reports every key of want not delivered exactly once within
// [due, due+precision], and any key delivered that was not wanted.
func (a *arrivals) check(t *testing.T, group string, want map[string]time.Time, precision time.Duration) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var late []time.Duration
	for k, due := range want {
		ts := a.at[k]
		if len(ts) != 1 {
			t.Errorf("%s: %s delivered %d times, want once", group, k, len(ts))
			continue
		}
		switch d := ts[0].Sub(due); {
		case d < 0:
			t.Errorf("%s: %s arrived %v before its time", group, k, -d)
		case d > precision:
			t.Errorf("%s: %s arrived %v after its time, over the precision %v", group, k, d, precision)
		default:
			late = append(late, d)
		}
	}
	for k := range a.at {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s delivered, never scheduled (or cancelled)", group, k)
		}
	}
	if len(late) > 0 {
		sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
		t.Logf("%s: %d scheduled messages, late by median %v, max %v", group, len(late), late[len(late)/2], late[len(late)-1])
	}
}

// scheduler returns tr as a transport.Scheduler, or fails the case after
// checking that a bus on tr refuses PublishAt with ErrSchedulingUnsupported.
func (h *harness) scheduler(tr transport.Transport) transport.Scheduler {
	h.t.Helper()
	s, ok := tr.(transport.Scheduler)
	if !ok {
		b := h.bus(busOptions{service: h.group("noschedule"), instance: "i1", transport: tr})
		_, err := b.PublishAt(context.Background(), time.Now().Add(time.Second), suiteEvent{Key: "x"})
		if !errors.Is(err, cqrs.ErrSchedulingUnsupported) {
			h.t.Fatalf("the transport does not implement transport.Scheduler, and PublishAt answered %v, want ErrSchedulingUnsupported", err)
		}
		h.t.Logf("cqrstest: the transport does not schedule; PublishAt refuses (checked)")
	}
	return s
}

// scheduleAt publishes env on topic to be delivered at.
func (h *harness) scheduleAt(tr transport.Transport, topic transport.Topic, env *transport.Envelope, at time.Time) {
	h.t.Helper()
	env.DeliverAt = at
	h.publish(tr, topic, env)
}

func testScheduleEvents(t *testing.T, h *harness) {
	pub := h.connect(t)
	if h.scheduler(pub) == nil {
		return
	}
	g1, g2 := newArrivals(), newArrivals()
	h.subscribe(h.connect(t), h.group("g1"), "a", 0, g1.handler("a"), eventTopic)
	h.subscribe(h.connect(t), h.group("g1"), "b", 0, g1.handler("b"), eventTopic)
	h.subscribe(h.connect(t), h.group("g2"), "c", 0, g2.handler("c"), eventTopic)
	count := n(20, 8)
	want := map[string]time.Time{}
	sent := map[string]*transport.Envelope{}
	start := time.Now().Add(time.Second)
	for i := range count {
		k := fmt.Sprintf("s%03d", i)
		due := start.Add(time.Duration(i) * 50 * time.Millisecond)
		e := keyed(k)
		h.scheduleAt(pub, eventTopic, e, due)
		want[k], sent[k] = due, e.Clone()
		scribble(e) // Publish keeps nothing of env, scheduled or not
	}
	// One already due goes at once.
	now, t0 := keyed("now"), time.Now()
	h.scheduleAt(pub, eventTopic, now, t0.Add(-time.Minute))
	want["now"], sent["now"] = t0, now.Clone()
	h.eventually(func() bool { return g1.count() >= count+1 && g2.count() >= count+1 },
		func() string {
			return fmt.Sprintf("g1 %d, g2 %d of %d scheduled messages", g1.count(), g2.count(), count+1)
		})
	time.Sleep(h.f.schedulePrecision() / 2) // a duplicate has time to show
	g1.check(t, "g1", want, h.f.schedulePrecision())
	g2.check(t, "g2", want, h.f.schedulePrecision())
	g1.mu.Lock()
	defer g1.mu.Unlock()
	for k, w := range sent {
		g := g1.envs[k]
		if g == nil {
			continue
		}
		if g.ID != w.ID || g.Name != w.Name || g.CorrelationID != w.CorrelationID || g.CausationID != w.CausationID ||
			g.Source != w.Source || string(g.Payload) != string(w.Payload) || !g.Time.Equal(w.Time) || !g.DeliverAt.Equal(w.DeliverAt) {
			t.Errorf("%s arrived changed:\n got %+v\nwant %+v", k, *g, *w)
		}
	}
	t.Logf("g1 spread over its instances: %v", g1.inst)
}

func testScheduleCancel(t *testing.T, h *harness) {
	pub := h.connect(t)
	s := h.scheduler(pub)
	if s == nil {
		return
	}
	got := newArrivals()
	h.subscribe(h.connect(t), h.group("g"), "a", 0, got.handler("a"), eventTopic)
	count := n(10, 6)
	want := map[string]time.Time{}
	var cancel []*transport.Envelope
	due := time.Now().Add(1500 * time.Millisecond)
	for i := range count {
		k := fmt.Sprintf("c%03d", i)
		e := keyed(k)
		h.scheduleAt(pub, eventTopic, e, due)
		if i%2 == 0 {
			cancel = append(cancel, e.Clone())
		} else {
			want[k] = due
		}
	}
	ctx := context.Background()
	other := h.connect(t).(transport.Scheduler) // any connection cancels
	for _, e := range cancel {
		if ok, err := other.Cancel(ctx, e.ID); err != nil || !ok {
			t.Fatalf("Cancel(%s) = %v, %v; want true, nil", e.ID, ok, err)
		}
		if ok, err := other.Cancel(ctx, e.ID); err != nil || ok {
			t.Errorf("Cancel(%s) again = %v, %v; want false, nil", e.ID, ok, err)
		}
	}
	if ok, err := other.Cancel(ctx, cqrs.NewID()); err != nil || ok {
		t.Errorf("Cancel(unknown id) = %v, %v; want false, nil", ok, err)
	}
	h.eventually(func() bool { return got.count() >= len(want) },
		func() string { return fmt.Sprintf("%d of %d not cancelled delivered", got.count(), len(want)) })
	time.Sleep(h.f.schedulePrecision()) // a cancelled one has time to show
	got.check(t, "g", want, h.f.schedulePrecision())
	// Once delivered, a message is no longer scheduled.
	for _, e := range sent(got) {
		if ok, err := other.Cancel(ctx, e.ID); err != nil || ok {
			t.Errorf("Cancel(%s) after delivery = %v, %v; want false, nil", e.ID, ok, err)
		}
	}
}

func sent(a *arrivals) []*transport.Envelope {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*transport.Envelope
	for _, e := range a.envs {
		out = append(out, e)
	}
	return out
}

// testScheduleBus goes through the bus: DispatchAt to a command's owner
// (once over its instances), PublishAt, Cancel and its errors.
func testScheduleBus(t *testing.T, h *harness) {
	tr := h.connect(t)
	if h.scheduler(tr) == nil {
		return
	}
	c := newCollector()
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	svc := h.group("owner")
	for i := range 2 {
		inst := fmt.Sprintf("o%d", i)
		h.bus(busOptions{service: svc, instance: inst},
			cqrs.HandleCommand(cqrs.CommandHandlerFunc[suiteCommand, string](func(_ context.Context, cmd suiteCommand) (string, error) {
				c.add(inst, cmd.Key)
				mu.Lock()
				arrived[cmd.Key] = time.Now()
				mu.Unlock()
				return "", nil
			})),
			cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
				c.add(inst, e.Key)
				mu.Lock()
				arrived[e.Key] = time.Now()
				mu.Unlock()
				return nil
			})))
	}
	caller := h.bus(busOptions{service: h.group("caller"), instance: "c1", transport: tr})
	ctx := context.Background()
	due := time.Now().Add(time.Second)
	count := n(20, 6)
	want := keys("cmd", count)
	for _, k := range want {
		if _, err := caller.DispatchAt(ctx, due, suiteCommand{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := caller.PublishAt(ctx, due, suiteEvent{Key: "event"}); err != nil {
		t.Fatal(err)
	}
	gone, err := caller.DispatchAt(ctx, due, suiteCommand{Key: "cancelled"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Cancel(ctx, gone); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := caller.Cancel(ctx, gone); !errors.Is(err, cqrs.ErrNotScheduled) {
		t.Errorf("Cancel twice: %v, want ErrNotScheduled", err)
	}
	if err := caller.Cancel(ctx, "no such id!"); err == nil || errors.Is(err, cqrs.ErrNotScheduled) {
		t.Errorf("Cancel of a malformed id: %v, want an error naming it", err)
	}
	if _, err := caller.PublishAt(ctx, time.Time{}, suiteEvent{Key: "zero"}); err == nil {
		t.Error("PublishAt the zero time: no error")
	}
	all := append(append([]string(nil), want...), "event")
	h.eventually(func() bool { return c.has(all) }, func() string { return c.diff(all, false) })
	time.Sleep(h.f.schedulePrecision())
	if d := c.diff(all, true); d != "" {
		t.Fatal(d)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, at := range arrived {
		if at.Before(due) {
			t.Errorf("%s arrived %v before its time", k, due.Sub(at))
		}
	}
	t.Logf("scheduled commands per instance: %v", c.perInstance())
}

// testScheduleRestart: scheduled messages wait in the broker while no
// instance and no publisher runs, and arrive when a group comes back.
func testScheduleRestart(t *testing.T, h *harness) {
	pub := h.connect(t)
	if h.scheduler(pub) == nil {
		return
	}
	group := h.group("g")
	first := newArrivals()
	sub := h.subscribe(h.connect(t), group, "a", 0, first.handler("a"), eventTopic)
	due := time.Now().Add(1500 * time.Millisecond)
	want := map[string]time.Time{}
	for i := range n(10, 4) {
		k := fmt.Sprintf("r%03d", i)
		h.scheduleAt(pub, eventTopic, keyed(k), due)
		want[k] = due
	}
	closeTransport(t, pub)
	ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
	_ = sub.Close(ctx)
	cancel()
	time.Sleep(time.Until(due) + 500*time.Millisecond)
	again := newArrivals()
	h.subscribe(h.connect(t), group, "b", 0, again.handler("b"), eventTopic)
	h.eventually(func() bool { return first.count()+again.count() >= len(want) },
		func() string {
			return fmt.Sprintf("%d of %d delivered after the restart", first.count()+again.count(), len(want))
		})
	quiet()
	if n := first.count(); n > 0 {
		t.Errorf("%d delivered to the closed instance", n)
	}
	again.mu.Lock()
	defer again.mu.Unlock()
	for k := range want {
		if len(again.at[k]) != 1 {
			t.Errorf("%s delivered %d times after the restart, want once", k, len(again.at[k]))
		}
	}
}
