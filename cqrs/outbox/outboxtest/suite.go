package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/transport"
)

// Harness is one fresh outbox of the store under test.
type Harness struct {
	// Open returns a store over the outbox; each call is one more
	// replica's view of the same outbox (a relay of its own leads it or
	// stands by).
	Open func(t *testing.T) outbox.Store
	// Tx runs fn in a transaction of the store, with fn's context carrying
	// the store's outbox (transport.WithOutbox), and commits it; an error from
	// fn rolls it back and is returned. key, when not empty, is the
	// transaction's ordering key.
	Tx func(ctx context.Context, key string, fn func(ctx context.Context) error) error
	// Dead counts the records buried in the store's dead letters.
	Dead func(t *testing.T) int
}

// Numbered is the event the suite publishes: the Nth of its key.
type Numbered struct {
	Key string
	N   int
}

// TestStore runs the suite; newHarness gives each case a fresh outbox.
func TestStore(t *testing.T, newHarness func(t *testing.T) Harness) {
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"CommitIsPublishedInOrderWithItsIDs", testCommit},
		{"RollbackPublishesNothing", testRollback},
		{"CommittedWhileNoRelayRanIsPublishedWhenOneStarts", testCrashAfterCommit},
		{"TwoRelaysPublishEachRowOnceInKeyOrder", testTwoRelays},
		{"FailedPublishIsRetriedUntilStored", testRetry},
		{"RefusedForGoodIsBuried", testBury},
		{"StopDrainsWhatIsCommitted", testStopDrains},
		{"StandbyTakesOverWhenTheLeaderStops", testHandover},
		{"ScheduledKeepsItsTime", testScheduled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newHarness(t)) })
	}
}

func newBus(t *testing.T) *cqrs.Bus {
	t.Helper()
	b, err := cqrs.New(cqrs.Options{Service: "outboxtest", Instance: "i1", Transport: &Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startRelay(t *testing.T, store outbox.Store, rec *Recorder) *outbox.Relay {
	t.Helper()
	r, err := outbox.New(store, rec, outbox.Config{Poll: 20 * time.Millisecond, RetryInitial: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("relay stop: %v", err)
		}
	})
	return r
}

// commit publishes events (key, n) for n in ns in one transaction.
func commit(t *testing.T, h Harness, bus *cqrs.Bus, key string, ns ...int) {
	t.Helper()
	err := h.Tx(context.Background(), key, func(ctx context.Context) error {
		for _, n := range ns {
			if err := bus.Publish(ctx, Numbered{Key: key, N: n}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// eventually waits up to 20 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func depth(t *testing.T, s outbox.Store) int64 {
	t.Helper()
	n, err := s.Depth(context.Background())
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	return n
}

func decode(t *testing.T, m transport.Outgoing) Numbered {
	t.Helper()
	var n Numbered
	if err := cqrs.JSON.Unmarshal(m.Envelope.Payload, &n); err != nil {
		t.Fatalf("payload %q: %v", m.Envelope.Payload, err)
	}
	return n
}

func testCommit(t *testing.T, h Harness) {
	store, rec, bus := h.Open(t), &Recorder{}, newBus(t)
	err := h.Tx(context.Background(), "", func(ctx context.Context) error {
		for n := range 3 {
			if err := bus.Publish(ctx, Numbered{Key: "k", N: n}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rec.Got()); got != 0 {
		t.Fatalf("%d published before any relay ran, want 0", got)
	}
	if d := depth(t, store); d != 3 {
		t.Fatalf("depth %d after a commit of 3, want 3", d)
	}
	startRelay(t, store, rec)
	eventually(t, "3 published", func() bool { return len(rec.Got()) >= 3 })
	got := rec.Got()
	seen := map[string]bool{}
	for i, m := range got {
		n := decode(t, m)
		if n.N != i || m.Topic != (transport.Topic{Kind: transport.KindEvent, Name: "Numbered"}) || m.Envelope.Source != "outboxtest" || m.Envelope.Name != "Numbered" {
			t.Fatalf("published #%d: %+v %+v, want Numbered N=%d from outboxtest", i, m.Topic, n, i)
		}
		if m.Envelope.ID == "" || seen[m.Envelope.ID] {
			t.Fatalf("published #%d has id %q: want the bus's unique id", i, m.Envelope.ID)
		}
		seen[m.Envelope.ID] = true
	}
	eventually(t, "outbox empty after relaying", func() bool { return depth(t, store) == 0 })
	time.Sleep(100 * time.Millisecond)
	if n := len(rec.Got()); n != 3 {
		t.Fatalf("published %d times, want 3", n)
	}
}

func testRollback(t *testing.T, h Harness) {
	store, rec, bus := h.Open(t), &Recorder{}, newBus(t)
	startRelay(t, store, rec)
	boom := errors.New("handler failed after publishing")
	err := h.Tx(context.Background(), "", func(ctx context.Context) error {
		if err := bus.Publish(ctx, Numbered{Key: "k", N: 1}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx: %v, want fn's error", err)
	}
	commit(t, h, bus, "k", 2) // a later commit is relayed: the relay ran past the rollback
	eventually(t, "the later commit published", func() bool { return len(rec.Got()) >= 1 })
	time.Sleep(100 * time.Millisecond)
	got := rec.Got()
	if len(got) != 1 || decode(t, got[0]).N != 2 {
		t.Fatalf("published %d messages (%v), want only N=2: a rolled-back transaction sends nothing", len(got), got)
	}
	if d := depth(t, store); d != 0 {
		t.Fatalf("depth %d, want 0", d)
	}
}

func testCrashAfterCommit(t *testing.T, h Harness) {
	bus := newBus(t)
	for i := range 5 {
		commit(t, h, bus, "k", i)
	}
	// The instance that committed died before relaying: another starts.
	store, rec := h.Open(t), &Recorder{}
	if d := depth(t, store); d != 5 {
		t.Fatalf("depth %d, want 5 committed rows", d)
	}
	startRelay(t, store, rec)
	eventually(t, "5 published", func() bool { return len(rec.Got()) >= 5 })
	for i, m := range rec.Got() {
		if n := decode(t, m); n.N != i {
			t.Fatalf("published #%d is N=%d, want %d", i, n.N, i)
		}
	}
}

func testTwoRelays(t *testing.T, h Harness) {
	bus := newBus(t)
	rec := &Recorder{} // one broker, two relays
	startRelay(t, h.Open(t), rec)
	startRelay(t, h.Open(t), rec)
	const keys, perKey = 8, 40
	var mu sync.Mutex
	next := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, keys*2)
	for w := range keys * 2 { // two writers per key, racing
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key-%d", w%keys)
			for range perKey / 2 {
				err := h.Tx(context.Background(), key, func(ctx context.Context) error {
					mu.Lock()
					n := next[key]
					next[key]++
					mu.Unlock()
					return bus.Publish(ctx, Numbered{Key: key, N: n})
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("commit: %v", err)
	}
	eventually(t, fmt.Sprintf("%d published", keys*perKey), func() bool { return len(rec.Got()) >= keys*perKey })
	time.Sleep(200 * time.Millisecond)
	got := rec.Got()
	ids := map[string]int{}
	last := map[string]int{}
	for _, m := range got {
		ids[m.Envelope.ID]++
		n := decode(t, m)
		if prev, ok := last[n.Key]; ok && n.N <= prev {
			t.Fatalf("key %s: N=%d published after N=%d: a key's commits must be published in commit order", n.Key, n.N, prev)
		}
		last[n.Key] = n.N
	}
	if len(got) != keys*perKey || len(ids) != keys*perKey {
		t.Fatalf("published %d messages with %d distinct ids, want %d of each: every row once", len(got), len(ids), keys*perKey)
	}
}

func testRetry(t *testing.T, h Harness) {
	store, rec, bus := h.Open(t), &Recorder{}, newBus(t)
	var calls atomic.Int32
	rec.FailWith(func(transport.Outgoing) error {
		switch c := calls.Add(1); {
		case c <= 3:
			return fmt.Errorf("broker down: %w", cqrs.ErrUnavailable)
		case c <= 5:
			return fmt.Errorf("ack lost: %w", cqrs.ErrOutcomeUnknown)
		}
		return nil
	})
	commit(t, h, bus, "k", 0, 1)
	startRelay(t, store, rec)
	eventually(t, "outbox empty", func() bool { return depth(t, store) == 0 })
	firsts := map[string]bool{}
	for _, m := range rec.Got() {
		firsts[m.Envelope.ID] = true
	}
	if len(firsts) != 2 {
		t.Fatalf("stored %d distinct messages, want 2: a failed publish is retried until stored", len(firsts))
	}
	if calls.Load() < 6 {
		t.Fatalf("%d publish attempts, want at least 6 (3 refused, 2 unknown, then stored)", calls.Load())
	}
}

func testBury(t *testing.T, h Harness) {
	store, rec, bus := h.Open(t), &Recorder{}, newBus(t)
	rec.FailWith(func(m transport.Outgoing) error {
		var n Numbered
		_ = cqrs.JSON.Unmarshal(m.Envelope.Payload, &n)
		if n.N == 1 {
			return &cqrs.PayloadTooLargeError{Name: m.Topic.Name, Size: 2 << 20, Limit: 1 << 20}
		}
		return nil
	})
	commit(t, h, bus, "k", 0, 1, 2)
	startRelay(t, store, rec)
	eventually(t, "outbox empty", func() bool { return depth(t, store) == 0 })
	got := rec.Got()
	if len(got) != 2 || decode(t, got[0]).N != 0 || decode(t, got[1]).N != 2 {
		t.Fatalf("published %v, want N=0 and N=2: the refused one is not retried and holds nothing up", got)
	}
	if h.Dead != nil {
		if d := h.Dead(t); d != 1 {
			t.Fatalf("%d dead records, want 1", d)
		}
	}
}

func testStopDrains(t *testing.T, h Harness) {
	store, rec, bus := h.Open(t), &Recorder{}, newBus(t)
	r, err := outbox.New(store, rec, outbox.Config{Poll: time.Hour}, nil, nil) // only a wake or the stop looks
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the relay leads", r.Leading)
	for i := range 20 {
		commit(t, h, bus, "k", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Got()); n != 20 {
		t.Fatalf("published %d at stop, want the 20 committed", n)
	}
	if d := depth(t, store); d != 0 {
		t.Fatalf("depth %d after stop, want 0", d)
	}
}

func testHandover(t *testing.T, h Harness) {
	bus, rec := newBus(t), &Recorder{}
	a, err := outbox.New(h.Open(t), rec, outbox.Config{Poll: 20 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first relay leads", a.Leading)
	b := startRelay(t, h.Open(t), rec)
	time.Sleep(100 * time.Millisecond)
	if b.Leading() {
		t.Fatal("two relays lead one outbox at once")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stand-by leads after the leader stopped", b.Leading)
	commit(t, h, bus, "k", 7)
	eventually(t, "published by the new leader", func() bool { return len(rec.Got()) == 1 })
}

// testScheduled: a message scheduled inside a transaction (PublishAt) is
// stored with its time and handed to the transport with it, to be held
// there until then; its id is the one PublishAt returned.
func testScheduled(t *testing.T, h Harness) {
	store, rec, bus := h.Open(t), &Recorder{}, newBus(t)
	at := time.Now().Add(time.Hour).Round(0)
	var id string
	err := h.Tx(context.Background(), "", func(ctx context.Context) error {
		var err error
		id, err = bus.PublishAt(ctx, at, Numbered{Key: "later", N: 1})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	startRelay(t, store, rec)
	eventually(t, "the scheduled message relayed", func() bool { return len(rec.Got()) >= 1 })
	m := rec.Got()[0]
	if !m.Envelope.DeliverAt.Equal(at) {
		t.Fatalf("relayed with DeliverAt %v, want %v", m.Envelope.DeliverAt, at)
	}
	if m.Envelope.ID != id || decode(t, m).Key != "later" {
		t.Fatalf("relayed %s %+v, want %s, the scheduled one", m.Envelope.ID, decode(t, m), id)
	}
}
