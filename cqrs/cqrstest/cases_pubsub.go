package cqrstest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

var eventTopic = transport.Topic{Kind: transport.KindEvent, Name: "SuiteEvent"}

// keyed returns an event envelope whose payload carries key.
func keyed(key string) *transport.Envelope {
	return envelope(transport.KindEvent, "SuiteEvent", key, []byte(`{"key":"`+key+`"}`))
}

// keyOf reads the key back from a delivery's correlation header, which
// keyed sets to "corr-"+key.
func keyOf(d transport.Delivery) string {
	return d.Envelope().CorrelationID[len("corr-"):]
}

// ack returns a delivery handler that records and acks.
func ack(c *collector, instance string) func(context.Context, transport.Delivery) {
	return func(ctx context.Context, d transport.Delivery) {
		c.add(instance, keyOf(d))
		_ = d.Ack(ctx)
	}
}

// scribble overwrites every field of env and every byte of its payload, as
// a caller that reuses an envelope once Publish returned does.
func scribble(env *transport.Envelope) {
	p := env.Payload
	for i := range p {
		p[i] = '#'
	}
	*env = transport.Envelope{ID: "scribbled", Name: "Scribbled", Kind: transport.KindQuery, Attempt: 99, Payload: p}
}

func testPublishSubscribe(t *testing.T, h *harness) {
	tr := h.connect(t)
	count := n(100, 20)
	var mu sync.Mutex
	got := map[string]*transport.Envelope{}
	h.subscribe(tr, h.group("g"), "i1", 0, func(ctx context.Context, d transport.Delivery) {
		mu.Lock()
		got[d.Envelope().ID] = d.Envelope().Clone()
		mu.Unlock()
		_ = d.Ack(ctx)
	}, eventTopic)
	pub := h.connect(t)
	sent := map[string]*transport.Envelope{}
	for _, k := range keys("e", count) {
		e := keyed(k)
		sent[e.ID] = e.Clone()
		h.publish(pub, eventTopic, e)
		scribble(e) // Publish keeps nothing of env: the bus reuses it
	}
	h.eventually(func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= count },
		func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprintf("%d of %d delivered", len(got), count) })
	mu.Lock()
	defer mu.Unlock()
	for id, want := range sent {
		g := got[id]
		if g == nil {
			t.Errorf("message %s missing", id)
			continue
		}
		if g.Attempt != 1 {
			t.Errorf("message %s: attempt %d, want 1", id, g.Attempt)
		}
		if !g.Time.Equal(want.Time) {
			t.Errorf("message %s: time %v, want %v", id, g.Time, want.Time)
		}
		w := *want
		w.Attempt, w.Time = g.Attempt, g.Time
		if !reflect.DeepEqual(*g, w) {
			t.Errorf("message %s arrived changed:\n got %+v\nwant %+v", id, *g, w)
		}
	}
	for id := range got {
		if sent[id] == nil {
			t.Errorf("message %s was never sent", id)
		}
	}
}

func testConcurrency(t *testing.T, h *harness) {
	publishers, perPublisher := 50, n(100, 20)
	c := newCollector()
	// 50 handlers: 5 instances of one group, 10 handlers each.
	for i := range 5 {
		inst := fmt.Sprintf("i%d", i)
		h.subscribe(h.connect(t), h.group("g"), inst, 10, ack(c, inst), eventTopic)
	}
	var want []string
	conns := []transport.Transport{h.connect(t), h.connect(t)}
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		ks := keys(fmt.Sprintf("p%d-", p), perPublisher)
		want = append(want, ks...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range ks {
				if err := conns[p%2].Publish(context.Background(), eventTopic, keyed(k)); err != nil {
					errs <- fmt.Errorf("publish %s: %w", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h.eventually(func() bool { return c.has(want) }, func() string { return c.diff(want, true) })
	quiet()
	if d := c.diff(want, true); d != "" {
		t.Fatal(d)
	}
}

func testTopics(t *testing.T, h *harness) {
	types, per := 20, n(100, 10)
	tr := h.connect(t)
	c := newCollector()
	var mu sync.Mutex
	wrong := []string{}
	s := transport.Subscription{Group: h.group("g"), Instance: "i1"}
	for i := range types {
		name := fmt.Sprintf("SuiteTopic%d", i)
		s.Topics = append(s.Topics, transport.TopicHandler{Topic: transport.Topic{Kind: transport.KindEvent, Name: name},
			Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
				if d.Envelope().Name != name {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s handler got %s", name, d.Envelope().Name))
					mu.Unlock()
				}
				c.add("i1", keyOf(d))
				_ = d.Ack(ctx)
			})})
	}
	sub, err := tr.Subscribe(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	pub := h.connect(t)
	var want []string
	for j := range per {
		for i := range types {
			name := fmt.Sprintf("SuiteTopic%d", i)
			k := fmt.Sprintf("t%d-%d", i, j)
			want = append(want, k)
			h.publish(pub, transport.Topic{Kind: transport.KindEvent, Name: name}, envelope(transport.KindEvent, name, k, []byte(`{}`)))
		}
	}
	h.eventually(func() bool { return c.has(want) }, func() string { return c.diff(want, true) })
	quiet()
	if d := c.diff(want, true); d != "" {
		t.Error(d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Errorf("%d deliveries to the wrong handler, e.g. %s", len(wrong), wrong[0])
	}
}

func testConsumerGroups(t *testing.T, h *harness) {
	count := n(300, 60)
	groups := map[string]*collector{"a": newCollector(), "b": newCollector()}
	for g, c := range groups {
		for i := range 3 {
			inst := fmt.Sprintf("%s%d", g, i)
			// Each handler takes a moment and an instance runs 4 at most, so
			// an instance that took everything would mean no load spreading.
			h.subscribe(h.connect(t), h.group(g), inst, 4, func(ctx context.Context, d transport.Delivery) {
				time.Sleep(time.Millisecond)
				ack(c, inst)(ctx, d)
			}, eventTopic)
		}
	}
	pub := h.connect(t)
	want := keys("e", count)
	for _, k := range want {
		h.publish(pub, eventTopic, keyed(k))
	}
	for g, c := range groups {
		h.eventually(func() bool { return c.has(want) }, func() string { return "group " + g + ": " + c.diff(want, true) })
	}
	quiet()
	for g, c := range groups {
		if d := c.diff(want, true); d != "" {
			t.Errorf("group %s: %s", g, d)
		}
		per := c.perInstance()
		for i := range 3 {
			if inst := fmt.Sprintf("%s%d", g, i); per[inst] == 0 {
				t.Errorf("group %s: instance %s got none of %d (spread %v)", g, inst, count, per)
			}
		}
	}
}

func testOwnGroup(t *testing.T, h *harness) {
	count := n(100, 20)
	c := newCollector()
	svc := h.group("svc")
	reg := func(inst string) cqrs.Registration {
		return cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
			c.add(inst, e.Key)
			return nil
		}))
	}
	b1 := h.bus(busOptions{service: svc, instance: "i1"}, reg("i1"))
	h.bus(busOptions{service: svc, instance: "i2"}, reg("i2"))
	want := keys("own", count)
	for _, k := range want {
		if err := b1.Publish(context.Background(), suiteEvent{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually(func() bool { return c.has(want) }, func() string { return c.diff(want, true) })
	quiet()
	if d := c.diff(want, true); d != "" {
		t.Fatal(d)
	}
}
