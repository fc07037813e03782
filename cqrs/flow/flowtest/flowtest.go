// Package flowtest is the conformance suite of flow stores: every
// flow.Store (memory, PostgreSQL, Redis) runs it.
package flowtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow"
	"github.com/catga-go/catga/cqrs/transport"
)

// Harness is one fresh store under test.
type Harness struct {
	Store flow.Store
	// Bus sends through the store's transactions: a Publish with a Run's
	// ctx goes to the store's outbox (or is held by a memory store).
	Bus *cqrs.Bus
	// Sent counts the messages committed runs sent so far (the outbox's
	// depth with no relay running, or what a memory store published).
	Sent func(t *testing.T) int
}

// Noted is the event the suite's runs send.
type Noted struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

type counter struct {
	N     int      `json:"n"`
	Steps []string `json:"steps"`
}

// TestStore runs the suite; newHarness gives each case a fresh store.
func TestStore(t *testing.T, newHarness func(t *testing.T) Harness) {
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"NewInstanceSavedWithStateVersionAndHistory", testNew},
		{"StepsAppendInOrder", testSteps},
		{"ErrorSavesAndSendsNothing", testError},
		{"SkipSavesAndSendsNothing", testSkip},
		{"ConcurrentRunsOfOneInstanceAreSerialised", testConcurrent},
		{"FlowsAndKeysApart", testApart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newHarness(t)) })
	}
}

// flowName is a flow name of the case's own.
func flowName() string { return fmt.Sprintf("suite%06x", rand.IntN(1<<24)) }

// step is a Run that adds one to the counter, records what, and sends a
// Noted.
func step(h Harness, what string) func(ctx context.Context, in *flow.Instance) error {
	return func(ctx context.Context, in *flow.Instance) error {
		var c counter
		if len(in.State) > 0 {
			if err := json.Unmarshal(in.State, &c); err != nil {
				return err
			}
		}
		c.N++
		c.Steps = append(c.Steps, what)
		state, _ := json.Marshal(c)
		in.State = state
		in.History = append(in.History, flow.Entry{Step: what, MessageID: cqrs.NewID(), At: time.Now().UTC()})
		return h.Bus.Publish(ctx, Noted{Key: in.Key, N: c.N})
	}
}

func get(t *testing.T, s flow.Store, name, key string) (*flow.Instance, counter) {
	t.Helper()
	in, err := s.Get(context.Background(), name, key)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", name, key, err)
	}
	var c counter
	if err := json.Unmarshal(in.State, &c); err != nil {
		t.Fatalf("state %q: %v", in.State, err)
	}
	return in, c
}

func testNew(t *testing.T, h Harness) {
	name, ctx := flowName(), context.Background()
	if _, err := h.Store.Get(ctx, name, "k1"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("Get before any run: %v, want ErrNotFound", err)
	}
	var seen *flow.Instance
	before := time.Now().Add(-time.Second)
	err := h.Store.Run(ctx, name, "k1", func(ctx context.Context, in *flow.Instance) error {
		seen = &flow.Instance{Flow: in.Flow, Key: in.Key, Version: in.Version, State: in.State}
		return step(h, "first")(ctx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.Version != 0 || len(seen.State) != 0 || seen.Flow != name || seen.Key != "k1" {
		t.Fatalf("a new instance was given as %+v, want version 0, no state, %s/k1", seen, name)
	}
	in, c := get(t, h.Store, name, "k1")
	if in.Version != 1 || c.N != 1 || len(in.History) != 1 || in.History[0].Step != "first" {
		t.Fatalf("saved %+v (state %+v), want version 1, n 1, one history entry", in, c)
	}
	if in.Created.Before(before) || in.Updated.Before(in.Created) {
		t.Fatalf("created %v, updated %v", in.Created, in.Updated)
	}
	if n := h.Sent(t); n != 1 {
		t.Fatalf("%d messages sent by one committed run, want 1", n)
	}
}

func testSteps(t *testing.T, h Harness) {
	name, ctx := flowName(), context.Background()
	for _, s := range []string{"a", "b", "c"} {
		if err := h.Store.Run(ctx, name, "k", step(h, s)); err != nil {
			t.Fatal(err)
		}
	}
	in, c := get(t, h.Store, name, "k")
	if in.Version != 3 || c.N != 3 || fmt.Sprint(c.Steps) != "[a b c]" {
		t.Fatalf("version %d, state %+v; want 3, [a b c]", in.Version, c)
	}
	var steps []string
	for _, e := range in.History {
		steps = append(steps, e.Step)
	}
	if fmt.Sprint(steps) != "[a b c]" || !in.History[0].At.Before(in.History[2].At.Add(time.Nanosecond)) {
		t.Fatalf("history %+v, want a b c in order", in.History)
	}
	if !in.Updated.After(in.Created) && !in.Updated.Equal(in.Created) {
		t.Fatalf("updated %v before created %v", in.Updated, in.Created)
	}
	if n := h.Sent(t); n != 3 {
		t.Fatalf("%d sent, want 3", n)
	}
}

func testError(t *testing.T, h Harness) {
	name, ctx := flowName(), context.Background()
	if err := h.Store.Run(ctx, name, "k", step(h, "ok")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := h.Store.Run(ctx, name, "k", func(ctx context.Context, in *flow.Instance) error {
		if err := step(h, "failed")(ctx, in); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the function's error", err)
	}
	in, c := get(t, h.Store, name, "k")
	if in.Version != 1 || c.N != 1 || len(in.History) != 1 {
		t.Fatalf("after a failed run: version %d, state %+v, %d history entries; want it as before (1, n 1, 1)", in.Version, c, len(in.History))
	}
	if n := h.Sent(t); n != 1 {
		t.Fatalf("%d sent, want 1: the failed run's message must not be", n)
	}
	// A failed first run leaves no instance at all.
	_ = h.Store.Run(ctx, name, "new", func(context.Context, *flow.Instance) error { return boom })
	if _, err := h.Store.Get(ctx, name, "new"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("Get after a failed first run: %v, want ErrNotFound", err)
	}
}

func testSkip(t *testing.T, h Harness) {
	name, ctx := flowName(), context.Background()
	err := h.Store.Run(ctx, name, "k", func(ctx context.Context, in *flow.Instance) error {
		_ = step(h, "skipped")(ctx, in)
		return flow.ErrSkip
	})
	if err != nil {
		t.Fatalf("Run with ErrSkip: %v, want nil", err)
	}
	if _, err := h.Store.Get(ctx, name, "k"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("Get after a skipped first run: %v, want ErrNotFound", err)
	}
	if n := h.Sent(t); n != 0 {
		t.Fatalf("%d sent by a skipped run, want 0", n)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	name, ctx := flowName(), context.Background()
	const runs = 20
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.Store.Run(ctx, name, "hot", step(h, fmt.Sprint("s", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent run: %v", err)
		}
	}
	in, c := get(t, h.Store, name, "hot")
	if in.Version != runs || c.N != runs || len(c.Steps) != runs || len(in.History) != runs {
		t.Fatalf("after %d concurrent runs: version %d, n %d, %d steps, %d history entries; want %d each (a lost update otherwise)",
			runs, in.Version, c.N, len(c.Steps), len(in.History), runs)
	}
	if n := h.Sent(t); n != runs {
		t.Fatalf("%d sent, want %d", n, runs)
	}
}

func testApart(t *testing.T, h Harness) {
	a, b, ctx := flowName(), flowName(), context.Background()
	for _, run := range []struct{ flow, key string }{{a, "k"}, {a, "k"}, {b, "k"}, {a, "other"}} {
		if err := h.Store.Run(ctx, run.flow, run.key, step(h, "x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []struct {
		flow, key string
		n         int
	}{{a, "k", 2}, {b, "k", 1}, {a, "other", 1}} {
		if in, c := get(t, h.Store, w.flow, w.key); c.N != w.n || in.Version != int64(w.n) {
			t.Errorf("%s/%s: n %d, version %d; want %d", w.flow, w.key, c.N, in.Version, w.n)
		}
	}
}

// Recorder is a transport that records what is published (a memory
// store's harness counts it).
type Recorder struct {
	mu  sync.Mutex
	got []transport.Outgoing
}

// Publish implements transport.Transport.
func (r *Recorder) Publish(_ context.Context, topic transport.Topic, env *transport.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, transport.Outgoing{Topic: topic, Envelope: env.Clone()})
	return nil
}

// Count is how many were published.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

var errOnlyPublish = errors.New("flowtest: the recorder only publishes")

// Subscribe implements transport.Transport; it fails.
func (r *Recorder) Subscribe(context.Context, transport.Subscription) (transport.Closer, error) {
	return nil, errOnlyPublish
}

// Request implements transport.Transport; it fails.
func (r *Recorder) Request(context.Context, transport.Topic, *transport.Envelope) (*transport.Reply, error) {
	return nil, errOnlyPublish
}

// Serve implements transport.Transport; it fails.
func (r *Recorder) Serve(context.Context, transport.Responder) (transport.Closer, error) {
	return nil, errOnlyPublish
}

// BenchmarkStep measures a step: each op is one Run of store (load the
// instance and its history, change the state, append a history entry,
// publish one event through h.Bus into the store's outbox, save), from 16
// goroutines, four steps per instance as a short saga takes, the
// instances taken in turn (so that steps running at once are of different
// instances, as in a service with many orders in flight).
func BenchmarkStep(b *testing.B, h Harness) {
	name := flowName()
	instances := int64(max(1, b.N/4))
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprint("k", next.Add(1)%instances)
			if err := h.Store.Run(context.Background(), name, key, step(h, "step")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
