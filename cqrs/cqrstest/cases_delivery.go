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

func testRedelivery(t *testing.T, h *harness) {
	var mu sync.Mutex
	var attempts []int
	others := newCollector()
	var flakyDone atomic.Bool
	othersBeforeFlaky := make(chan bool, 1)
	count := n(50, 10)
	want := keys("o", count)
	svc := h.group("svc")
	b := h.bus(busOptions{service: svc, instance: "i1", maxDeliver: 5, concurrency: 8,
		redelivery: cqrs.Backoff{Initial: 300 * time.Millisecond, Max: 300 * time.Millisecond, Multiplier: 1}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(ctx context.Context, e suiteEvent) error {
			if e.Key != "flaky" {
				others.add("i1", e.Key)
				return nil
			}
			m, _ := cqrs.MessageFrom(ctx)
			mu.Lock()
			attempts = append(attempts, m.Envelope().Attempt)
			seen := len(attempts)
			mu.Unlock()
			if seen < 3 {
				return errors.New("flaky fails")
			}
			othersBeforeFlaky <- others.has(want)
			flakyDone.Store(true)
			return nil
		})))
	ctx := context.Background()
	if err := b.Publish(ctx, suiteEvent{Key: "flaky"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range want {
		if err := b.Publish(ctx, suiteEvent{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually(flakyDone.Load, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("the flaky event was seen %d times (attempts %v), want 3", len(attempts), attempts)
	})
	if !<-othersBeforeFlaky {
		t.Errorf("the other events waited behind a redelivered one: %s", others.diff(want, false))
	}
	quiet()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts %v, want [1 2 3]", attempts)
	}
}

func testDeadLetterMaxDeliver(t *testing.T, h *harness) {
	const maxDeliver = 3
	var calls atomic.Int32
	others := newCollector()
	svc := h.group("svc")
	b := h.bus(busOptions{service: svc, instance: "i1", maxDeliver: maxDeliver},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
			if e.Key == "poison" {
				calls.Add(1)
				return fmt.Errorf("poison %s always fails", e.Key)
			}
			others.add("i1", e.Key)
			return nil
		})))
	ctx := context.Background()
	if err := b.Publish(ctx, suiteEvent{Key: "poison"}); err != nil {
		t.Fatal(err)
	}
	want := keys("o", n(50, 10))
	for _, k := range want {
		if err := b.Publish(ctx, suiteEvent{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	dl := h.waitDeadLetters(b, svc, 1)[0]
	h.eventually(func() bool { return others.has(want) }, func() string { return others.diff(want, true) })
	quiet()
	if got := calls.Load(); got != maxDeliver {
		t.Errorf("the failing handler ran %d times, want MaxDeliver %d", got, maxDeliver)
	}
	switch {
	case dl.ID == "":
		t.Error("dead letter without an id")
	case dl.Attempts != maxDeliver:
		t.Errorf("dead letter attempts %d, want %d", dl.Attempts, maxDeliver)
	case !strings.Contains(dl.Error, "poison poison always fails"):
		t.Errorf("dead letter error %q, want the handler's last error", dl.Error)
	case dl.Service != svc || dl.Instance != "i1":
		t.Errorf("dead letter service %q instance %q, want %q i1", dl.Service, dl.Instance, svc)
	case time.Since(dl.Time) > time.Minute || dl.Time.IsZero():
		t.Errorf("dead letter time %v", dl.Time)
	case dl.Envelope.Name != "SuiteEvent" || dl.Envelope.ID == "" || dl.Envelope.Source != svc || !strings.Contains(string(dl.Envelope.Payload), `"poison"`):
		t.Errorf("dead letter envelope %+v, want the original", dl.Envelope)
	}
	if d := others.diff(want, true); d != "" {
		t.Errorf("other events: %s", d)
	}
}

func testDeadLetterAtOnce(t *testing.T, h *harness) {
	var calls sync.Map // key -> *atomic.Int32
	count := func(k string) int32 {
		v, _ := calls.LoadOrStore(k, new(atomic.Int32))
		return v.(*atomic.Int32).Load()
	}
	svc := h.group("svc")
	tr := h.connect(t)
	b := h.bus(busOptions{service: svc, instance: "i1", maxDeliver: 5, transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
			v, _ := calls.LoadOrStore(e.Key, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
			if e.Key == "permanent" {
				return cqrs.Permanent(errors.New("refused for good"))
			}
			return nil
		})))
	if err := b.Publish(context.Background(), suiteEvent{Key: "permanent"}); err != nil {
		t.Fatal(err)
	}
	bad := keyed("undecodable")
	bad.Payload = []byte(`{"key": not json`)
	h.publish(tr, eventTopic, bad)
	unknown := envelope(transport.KindEvent, "SuiteNoSuchType", "unknown", []byte(`{"key":"unknown"}`))
	h.publish(tr, eventTopic, unknown) // on SuiteEvent's topic, naming a type nobody handles
	if err := b.Publish(context.Background(), suiteEvent{Key: "after"}); err != nil {
		t.Fatal(err)
	}
	dls := h.waitDeadLetters(b, svc, 3)
	h.eventually(func() bool { return count("after") == 1 }, func() string { return "the event after the bad ones never arrived" })
	quiet()
	byName := map[string]transport.DeadLetter{}
	for _, dl := range dls {
		switch {
		case dl.Envelope.ID == bad.ID:
			byName["undecodable"] = dl
		case dl.Envelope.ID == unknown.ID:
			byName["unknown"] = dl
		case strings.Contains(string(dl.Envelope.Payload), "permanent"):
			byName["permanent"] = dl
		}
	}
	for _, k := range []string{"permanent", "undecodable", "unknown"} {
		dl, ok := byName[k]
		if !ok {
			t.Errorf("no dead letter for the %s message (got %d dead letters)", k, len(dls))
			continue
		}
		if dl.Attempts != 1 {
			t.Errorf("%s: dead-lettered after %d attempts, want 1", k, dl.Attempts)
		}
	}
	if n := count("permanent"); n != 1 {
		t.Errorf("the permanent failure ran %d times, want 1", n)
	}
	if dl := byName["undecodable"]; dl.Code != string(cqrs.CodeInvalid) || string(dl.Envelope.Payload) != string(bad.Payload) {
		t.Errorf("undecodable: code %q payload %q, want invalid with the bytes kept", dl.Code, dl.Envelope.Payload)
	}
	if dl := byName["unknown"]; !strings.Contains(dl.Error, "SuiteNoSuchType") {
		t.Errorf("unknown type: error %q, want it to name the type", dl.Error)
	}
	if len(dls) != 3 {
		t.Errorf("%d dead letters, want 3", len(dls))
	}
}

func testReplay(t *testing.T, h *harness) {
	var failed atomic.Bool
	a, bc := newCollector(), newCollector()
	svcA, svcB := h.group("a"), h.group("b")
	ba := h.bus(busOptions{service: svcA, instance: "a1"},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
			if e.Key == "r" && failed.CompareAndSwap(false, true) {
				return cqrs.Permanent(errors.New("first time fails"))
			}
			a.add("a1", e.Key)
			return nil
		})))
	h.bus(busOptions{service: svcB, instance: "b1"},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(_ context.Context, e suiteEvent) error {
			bc.add("b1", e.Key)
			return nil
		})))
	if err := ba.Publish(context.Background(), suiteEvent{Key: "r"}); err != nil {
		t.Fatal(err)
	}
	dl := h.waitDeadLetters(ba, svcA, 1)[0]
	h.eventually(func() bool { return bc.has([]string{"r"}) }, func() string { return "group b never got the event" })
	dls, _ := ba.DeadLetters()
	got, err := dls.GetDeadLetter(context.Background(), dl.ID)
	if err != nil || got.Envelope.ID != dl.Envelope.ID {
		t.Fatalf("GetDeadLetter(%s) = %+v, %v", dl.ID, got, err)
	}
	if err := dls.ReplayDeadLetter(context.Background(), dl.ID); err != nil {
		t.Fatalf("replay: %v", err)
	}
	h.eventually(func() bool { return a.has([]string{"r"}) }, func() string { return "the replayed event never reached its group" })
	quiet()
	if d := a.diff([]string{"r"}, true); d != "" {
		t.Errorf("group a after replay: %s", d)
	}
	if d := bc.diff([]string{"r"}, true); d != "" {
		t.Errorf("group b, which did not dead-letter it: %s", d)
	}
	left, err := dls.ListDeadLetters(context.Background(), svcA, 0)
	if err != nil || len(left) != 0 {
		t.Errorf("after replay %d dead letters left (%v), want 0", len(left), err)
	}
	if _, err := dls.GetDeadLetter(context.Background(), dl.ID); cqrs.CodeOf(err) != cqrs.CodeNotFound {
		t.Errorf("GetDeadLetter after replay: %v, want not_found", err)
	}
	if err := dls.ReplayDeadLetter(context.Background(), dl.ID); cqrs.CodeOf(err) != cqrs.CodeNotFound {
		t.Errorf("second replay: %v, want not_found", err)
	}
}

func testIdempotency(t *testing.T, h *harness) {
	var calls atomic.Int32
	svc := h.group("svc")
	tr := h.connect(t)
	inbox := &inbox.Memory{}
	h.bus(busOptions{service: svc, instance: "i1", transport: tr, idempotency: inbox},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteEvent](func(context.Context, suiteEvent) error {
			calls.Add(1)
			return nil
		})))
	e := keyed("same")
	for range 2 {
		h.publish(tr, eventTopic, e.Clone())
	}
	h.eventually(func() bool { return calls.Load() >= 1 }, func() string { return "never handled" })
	quiet()
	if got := calls.Load(); got != 1 {
		t.Fatalf("handler ran %d times for one message id, want 1", got)
	}
}
