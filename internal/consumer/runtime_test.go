package consumer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// fakeBroker records what the runtime asked of it.
type fakeBroker struct {
	mu       sync.Mutex
	acks     []int
	naks     []int
	dead     []*transport.DeadLetter
	extended []int
}

func (b *fakeBroker) Ack(_ context.Context, m int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acks = append(b.acks, m)
	return nil
}

func (b *fakeBroker) Nak(_ context.Context, m int, _ time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.naks = append(b.naks, m)
	return nil
}

func (b *fakeBroker) DeadLetter(_ context.Context, _ int, dl *transport.DeadLetter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dead = append(b.dead, dl)
	return nil
}

func (b *fakeBroker) Extend(ms []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extended = append(b.extended, ms...)
}

func (b *fakeBroker) count(f func(*fakeBroker) int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return f(b)
}

// chanSource hands on what comes on its channel; a nil error fails the round.
type chanSource struct {
	r       *Runtime[int]
	msgs    chan int
	fail    atomic.Pointer[error]
	refused atomic.Int64 // Start said no: taken but not started
}

func (s *chanSource) Name() string { return "test-source" }

func (s *chanSource) Fetch(ctx context.Context) error {
	if err := s.fail.Load(); err != nil {
		return *err
	}
	select {
	case <-ctx.Done():
	case m := <-s.msgs:
		if !s.r.Start(m) {
			s.refused.Add(1)
		}
	case <-time.After(10 * time.Millisecond):
	}
	return nil
}

func newTest(t *testing.T, conc int, lease time.Duration, handle func(ctx context.Context, r *Runtime[int], m int)) (*Runtime[int], *fakeBroker, *chanSource) {
	t.Helper()
	b := &fakeBroker{}
	src := &chanSource{msgs: make(chan int, 100)}
	var r *Runtime[int]
	r = New(Options[int]{Name: "test", Group: "g", Instance: "i", Concurrency: conc, Lease: lease, Broker: b,
		Handle: func(ctx context.Context, m int) { handle(ctx, r, m) }})
	src.r = r
	return r, b, src
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ackHandler(ctx context.Context, d transport.Delivery) { _ = d.Ack(ctx) }

// At most Concurrency handlers run at once, and each message is settled.
func TestRuntime_BoundsConcurrency(t *testing.T) {
	var running, most atomic.Int64
	r, b, src := newTest(t, 3, 0, func(_ context.Context, r *Runtime[int], m int) {
		n := running.Add(1)
		for {
			if old := most.Load(); n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		r.Deliver(transport.DeliveryHandlerFunc(ackHandler), m, &transport.Envelope{}, nil)
	})
	r.Run(src)
	for i := range 30 {
		src.msgs <- i
	}
	waitFor(t, "30 acks", func() bool { return b.count(func(b *fakeBroker) int { return len(b.acks) }) == 30 })
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if most.Load() > 3 || most.Load() < 2 {
		t.Fatalf("%d handlers at once, want at most 3 (and more than 1)", most.Load())
	}
}

// A second settle fails with ErrSettled; a delivery left unsettled is
// given back (Nak) once.
func TestDeliver_SettlesOnce(t *testing.T) {
	var second error
	r, b, _ := newTest(t, 1, 0, nil)
	r.Deliver(transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
		_ = d.Ack(ctx)
		second = d.Nak(ctx, time.Second)
	}), 1, &transport.Envelope{}, nil)
	r.Deliver(transport.DeliveryHandlerFunc(func(context.Context, transport.Delivery) {}), 2, &transport.Envelope{}, nil)
	if !errors.Is(second, ErrSettled) || !strings.HasPrefix(second.Error(), "test: ") {
		t.Fatalf("second settle: %v, want test: ErrSettled", second)
	}
	if len(b.acks) != 1 || len(b.naks) != 1 || b.naks[0] != 2 {
		t.Fatalf("acks %v naks %v, want [1] and [2]", b.acks, b.naks)
	}
	_ = r.Close(context.Background())
}

// Headers no handler can trust: the message is dead-lettered, the handler
// not run.
func TestDeliver_UnreadableIsDeadLettered(t *testing.T) {
	r, b, _ := newTest(t, 1, 0, nil)
	r.Deliver(transport.DeliveryHandlerFunc(func(context.Context, transport.Delivery) { t.Error("handler ran") }),
		1, &transport.Envelope{Attempt: 3}, errors.New("bad header"))
	if len(b.dead) != 1 || b.dead[0].Code != string(cqrs.CodeInvalid) || b.dead[0].Attempts != 3 || b.dead[0].Instance != "i" {
		t.Fatalf("dead letters %+v", b.dead)
	}
	_ = r.Close(context.Background())
}

// A replay of a topic the group does not subscribe to is dead-lettered
// again, saying so.
func TestReplay_UnknownTopic(t *testing.T) {
	r, b, _ := newTest(t, 1, 0, nil)
	topic := transport.Topic{Kind: transport.KindEvent, Name: "Gone"}
	r.Deliver(r.Replay(Routes{}, topic), 1, &transport.Envelope{}, nil)
	if len(b.dead) != 1 || b.dead[0].Error != "test: replay of event Gone: group g does not subscribe to it" {
		t.Fatalf("dead letters %+v", b.dead)
	}
	_ = r.Close(context.Background())
}

// A handler that runs past a third of the lease has its message extended;
// one settled is not.
func TestRuntime_ExtendsLongHandlers(t *testing.T) {
	r, b, src := newTest(t, 2, 30*time.Millisecond, func(_ context.Context, r *Runtime[int], m int) {
		r.Deliver(transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
			if m == 1 {
				_ = d.Ack(ctx)
			}
			time.Sleep(80 * time.Millisecond)
		}), m, &transport.Envelope{}, nil)
	})
	r.Run(src)
	src.msgs <- 1
	src.msgs <- 2
	waitFor(t, "an extension", func() bool { return b.count(func(b *fakeBroker) int { return len(b.extended) }) > 0 })
	_ = r.Close(context.Background())
	for _, m := range b.extended {
		if m != 2 {
			t.Fatalf("extended %v: a settled delivery was extended", b.extended)
		}
	}
}

// A failing source is reported, told once, and clears when a round succeeds.
func TestRuntime_FailingSource(t *testing.T) {
	var told atomic.Int64
	b := &fakeBroker{}
	src := &chanSource{msgs: make(chan int)}
	r := New(Options[int]{Name: "test", Broker: b, Handle: func(context.Context, int) {},
		Failing: func(Source, error) { told.Add(1) }})
	src.r = r
	boom := errors.New("boom")
	src.fail.Store(&boom)
	r.Run(src)
	waitFor(t, "failing", func() bool { _, err := r.Failing(); return err != nil })
	time.Sleep(350 * time.Millisecond) // a few rounds of backoff
	if s, err := r.Failing(); s != src || !errors.Is(err, boom) || told.Load() != 1 {
		t.Fatalf("Failing() = %v, %v; told %d times, want once", s, err, told.Load())
	}
	src.fail.Store(nil)
	waitFor(t, "recovery", func() bool { _, err := r.Failing(); return err == nil })
	_ = r.Close(context.Background())
}

// Close drains the handlers' context, refuses to start what the source
// still takes, and cancels a handler that outlives Close's context.
func TestRuntime_CloseDrainsAndCancels(t *testing.T) {
	started := make(chan struct{})
	var drained, cancelled atomic.Bool
	r, _, src := newTest(t, 1, 0, func(ctx context.Context, _ *Runtime[int], _ int) {
		close(started)
		select {
		case <-transport.Draining(ctx):
			drained.Store(true)
		case <-time.After(5 * time.Second):
		}
		<-ctx.Done()
		cancelled.Store(true)
	})
	r.Run(src)
	src.msgs <- 1
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the deadline", err)
	}
	if !drained.Load() || !cancelled.Load() {
		t.Fatalf("drained %v, cancelled %v: want both", drained.Load(), cancelled.Load())
	}
	if r.Start(2) {
		t.Fatal("Start after Close handed a message over")
	}
}
