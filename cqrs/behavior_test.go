package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

// record returns a behavior that appends name to log before and after.
func record(mu *sync.Mutex, log *[]string, name string) cqrs.Behavior {
	return func(next cqrs.Step) cqrs.Step {
		return cqrs.StepFunc(func(ctx context.Context, m cqrs.Message) error {
			mu.Lock()
			*log = append(*log, name+">")
			mu.Unlock()
			err := next.Handle(ctx, m)
			mu.Lock()
			*log = append(*log, "<"+name)
			mu.Unlock()
			return err
		})
	}
}

func TestBehaviors_RunFirstOutermost(t *testing.T) {
	var mu sync.Mutex
	var log []string
	b := newBus(t, cqrs.Options{Dispatch: []cqrs.Behavior{record(&mu, &log, "a"), record(&mu, &log, "b")}},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(context.Context, CreateOrder) (OrderID, error) {
			mu.Lock()
			log = append(log, "handler")
			mu.Unlock()
			return "", nil
		})))
	if _, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(log, " "), "a> b> handler <b <a"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}

func TestValidation_InvalidMessageNeverReachesHandler(t *testing.T) {
	h := &createOrderHandler{}
	b := newBus(t, cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)}, cqrs.HandleCommand(h))
	_, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{})
	if cqrs.CodeOf(err) != cqrs.CodeInvalid || !strings.Contains(err.Error(), "customer is required") {
		t.Fatalf("err = %v (code %q), want invalid naming the field", err, cqrs.CodeOf(err))
	}
	if !cqrs.IsPermanent(err) {
		t.Error("an invalid message should not be retried")
	}
	if h.calls != 0 {
		t.Fatalf("handler ran %d times", h.calls)
	}
}

func TestRecover_PanicBecomesInternalError(t *testing.T) {
	b := newBus(t, cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(context.Context, CreateOrder) (OrderID, error) {
			panic("kaboom")
		})))
	_, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"})
	var pe *cqrs.PanicError
	if cqrs.CodeOf(err) != cqrs.CodeInternal || !errors.As(err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 {
		t.Fatalf("err = %#v, want an internal error carrying the panic and its stack", err)
	}
}

func TestTimeout_OverrunGetsTimeoutCode(t *testing.T) {
	b := newBus(t, cqrs.Options{Dispatch: []cqrs.Behavior{cqrs.Timeout(20 * time.Millisecond)}},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(ctx context.Context, _ CreateOrder) (OrderID, error) {
			<-ctx.Done()
			return "", ctx.Err()
		})))
	_, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"})
	if cqrs.CodeOf(err) != cqrs.CodeTimeout {
		t.Fatalf("err = %v (code %q), want timeout", err, cqrs.CodeOf(err))
	}
}

// waitDone is a handler that waits on a context derived from its own, as
// a database call does, and returns why it ended.
func waitDone(ctx context.Context, _ CreateOrder) (OrderID, error) {
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-child.Done():
		return "", child.Err()
	case <-time.After(10 * time.Second):
		return "", errors.New("the deadline never came")
	}
}

func TestTimeout_ADerivedContextEndsAtTheDeadline(t *testing.T) {
	for _, bs := range [][]cqrs.Behavior{
		{cqrs.Timeout(20 * time.Millisecond)},
		{cqrs.Timeout(time.Hour), cqrs.Timeout(20 * time.Millisecond)}, // nested: the shorter wins
		{cqrs.Timeout(20 * time.Millisecond), cqrs.Timeout(time.Hour)},
	} {
		b := newBus(t, cqrs.Options{Dispatch: bs}, cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](waitDone)))
		start := time.Now()
		_, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"})
		if cqrs.CodeOf(err) != cqrs.CodeTimeout || time.Since(start) > 5*time.Second {
			t.Errorf("%d behaviors: err = %v (code %q) after %v, want timeout after 20ms", len(bs), err, cqrs.CodeOf(err), time.Since(start))
		}
	}
}

func TestTimeout_BoundsTheRunOnly(t *testing.T) {
	var outside, inside []string
	look := func(into *[]string) cqrs.Behavior {
		return func(next cqrs.Step) cqrs.Step {
			return cqrs.StepFunc(func(ctx context.Context, m cqrs.Message) error {
				err := next.Handle(ctx, m)
				dl, ok := ctx.Deadline()
				*into = append(*into, fmt.Sprintf("deadline %v in %v, err %v", ok, time.Until(dl).Round(time.Hour), ctx.Err()))
				return err
			})
		}
	}
	b := newBus(t, cqrs.Options{Dispatch: []cqrs.Behavior{look(&outside), cqrs.Timeout(time.Hour), look(&inside)}},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(ctx context.Context, _ CreateOrder) (OrderID, error) {
			<-time.After(time.Millisecond)
			_ = ctx.Done() // made: its timer must stop when the run ends
			return "o", nil
		})))
	if _, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"}); err != nil {
		t.Fatal(err)
	}
	if want := "deadline true in 1h0m0s, err <nil>"; len(inside) != 1 || inside[0] != want {
		t.Errorf("inside the Timeout: %q, want %q", inside, want)
	}
	if len(outside) != 1 || !strings.HasPrefix(outside[0], "deadline false") || !strings.HasSuffix(outside[0], "err <nil>") {
		t.Errorf("outside the Timeout, after it returned: %q, want no deadline and no error", outside)
	}
}

// A handler's context ends when its run ends, for whatever kept it: the
// channel it took during the run is closed, Err says why, and Done asked
// later is that same channel. With Timeout and with DefaultDelivery's
// behaviors (which bound the call in place).
func TestTimeout_TheKeptContextEndsWithTheRun(t *testing.T) {
	for name, bs := range map[string][]cqrs.Behavior{
		"Timeout":         {cqrs.Timeout(time.Hour)},
		"DefaultDelivery": cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Timeout: time.Hour}),
	} {
		var kept context.Context
		var during <-chan struct{}
		b := newBus(t, cqrs.Options{Dispatch: bs},
			cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(ctx context.Context, _ CreateOrder) (OrderID, error) {
				kept, during = ctx, ctx.Done()
				if ctx.Err() != nil {
					return "", ctx.Err()
				}
				return "o", nil
			})))
		if _, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		select {
		case <-during:
		default:
			t.Errorf("%s: the Done taken during the run is open after it", name)
		}
		if kept.Err() == nil {
			t.Errorf("%s: Err nil after the run, with its Done closed", name)
		}
		if kept.Done() != during {
			t.Errorf("%s: Done after the run is another channel", name)
		}
		if _, ok := kept.Deadline(); !ok {
			t.Errorf("%s: the deadline went away after the run", name)
		}
	}
}

func TestRetry_RetriesTransientNotPermanent(t *testing.T) {
	var calls atomic.Int32
	fail := errors.New("transient")
	b := newBus(t, cqrs.Options{Dispatch: []cqrs.Behavior{cqrs.Retry(cqrs.RetryPolicy{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond})}},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(_ context.Context, c CreateOrder) (OrderID, error) {
			n := calls.Add(1)
			switch c.Customer {
			case "perm":
				return "", cqrs.Permanent(fail)
			case "drain":
				return "", transport.ErrDraining
			}
			if n < 3 {
				return "", fail
			}
			return "ok", nil
		})))
	id, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"})
	if err != nil || id != "ok" || calls.Load() != 3 {
		t.Fatalf("got %q, %v after %d calls; want ok after 3", id, err, calls.Load())
	}
	calls.Store(0)
	_, err = cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "perm"})
	if !errors.Is(err, fail) || calls.Load() != 1 {
		t.Fatalf("permanent: %v after %d calls; want the error after 1", err, calls.Load())
	}
	calls.Store(0)
	_, err = cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "drain"})
	if !errors.Is(err, transport.ErrDraining) || calls.Load() != 1 {
		t.Fatalf("draining: %v after %d calls; want ErrDraining after 1", err, calls.Load())
	}
}

// deliveryBus is a bus on its own memory broker with fast redelivery.
func deliveryBus(t *testing.T, delivery []cqrs.Behavior, regs ...cqrs.Registration) (*cqrs.Bus, *memory.Transport) {
	t.Helper()
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	b := newBus(t, cqrs.Options{
		Service: "svc", Instance: "i1", Transport: tr, Delivery: delivery, MaxDeliver: 3,
		Redelivery: cqrs.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2},
	}, regs...)
	startBus(t, b)
	return b, tr
}

func TestDefaultDelivery_PanicIsRetriedInProcess(t *testing.T) {
	var calls atomic.Int32
	done := make(chan struct{})
	b, _ := deliveryBus(t, cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{
		Retry: cqrs.RetryPolicy{Attempts: 3, Initial: time.Millisecond}, Service: "svc",
	}), cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(ctx context.Context, e OrderCreated) error {
		if calls.Add(1) < 3 {
			panic("flaky")
		}
		m, _ := cqrs.MessageFrom(ctx)
		if m.Envelope().Attempt != 1 {
			t.Errorf("attempt %d, want 1: the retries were in process", m.Envelope().Attempt)
		}
		close(done)
		return nil
	})))
	if err := b.Publish(context.Background(), OrderCreated{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, done)
	if calls.Load() != 3 {
		t.Fatalf("handler ran %d times, want 3", calls.Load())
	}
}

func TestDelivery_RedeliversThenDeadLetters(t *testing.T) {
	var mu sync.Mutex
	var attempts []int
	b, tr := deliveryBus(t, cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Service: "svc"}),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(ctx context.Context, e OrderCreated) error {
			m, _ := cqrs.MessageFrom(ctx)
			mu.Lock()
			attempts = append(attempts, m.Envelope().Attempt)
			mu.Unlock()
			return fmt.Errorf("always fails for %s", e.ID)
		})))
	if err := b.Publish(context.Background(), OrderCreated{ID: "o7"}); err != nil {
		t.Fatal(err)
	}
	dls := waitDeadLetters(t, tr, 1)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts %v, want [1 2 3] (MaxDeliver 3)", attempts)
	}
	dl := dls[0]
	if dl.Attempts != 3 || dl.Service != "svc" || dl.Instance != "i1" || !strings.Contains(dl.Error, "always fails for o7") ||
		dl.Envelope.Name != "OrderCreated" || dl.Time.IsZero() || !strings.Contains(string(dl.Envelope.Payload), "o7") {
		t.Fatalf("dead letter %+v", dl)
	}
}

func TestIdempotency_RedeliveredMessageSkipsSucceededHandler(t *testing.T) {
	var calls atomic.Int32
	inbox := &inbox.Memory{}
	_, tr := deliveryBus(t, cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: inbox, Service: "svc"}),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error {
			calls.Add(1)
			return nil
		})))
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "OrderCreated", Kind: transport.KindEvent, ContentType: "application/json", Payload: []byte(`{"ID":"o1"}`)}
	topic := transport.Topic{Kind: transport.KindEvent, Name: "OrderCreated"}
	for range 2 {
		if err := tr.Publish(context.Background(), topic, env); err != nil {
			t.Fatal(err)
		}
	}
	catgatest.Poll(5*time.Second, func() bool { return inbox.Len() != 0 })
	time.Sleep(50 * time.Millisecond) // room for a wrong second run
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times for one message id, want 1", calls.Load())
	}
}

func TestLogging_DebugLineNamesMessage(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := newBus(t, cqrs.Options{Dispatch: cqrs.DefaultDispatch(log)}, cqrs.HandleCommand(&createOrderHandler{}))
	if _, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"cqrs: handled", "message=CreateOrder", "kind=command", "message_id="} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func waitDeadLetters(t *testing.T, dl transport.DeadLetters, n int) []transport.DeadLetter {
	t.Helper()
	var got []transport.DeadLetter
	if !catgatest.Poll(5*time.Second, func() bool {
		var err error
		if got, err = dl.ListDeadLetters(context.Background(), "", 0); err != nil {
			t.Fatal(err)
		}
		return len(got) >= n
	}) {
		t.Fatalf("%d dead letters, want %d", len(got), n)
	}
	return got
}

// busyInbox is an inbox.Store whose every key is held by another run.
// It counts claims, and those made once the subscription was draining.
type busyInbox struct{ claims, late atomic.Int32 }

func (s *busyInbox) Claim(ctx context.Context, _ string, _ time.Duration) (inbox.State, error) {
	s.claims.Add(1)
	select {
	case <-transport.Draining(ctx):
		s.late.Add(1)
	default:
	}
	return inbox.StateBusy, nil
}
func (s *busyInbox) MarkDone(context.Context, string, time.Duration) error { return nil }
func (s *busyInbox) Release(context.Context, string) error                 { return nil }

// A delivery waiting for another instance's claim does not hold a shutdown:
// Stop returns within its deadline, the message is given back (no dead
// letter, no in-process retry) and the next instance of the group runs it.
func TestIdempotency_WaitingDeliveryGivenBackAtStop(t *testing.T) {
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	busy := &busyInbox{}
	var ran atomic.Int32
	handler := cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error {
		ran.Add(1)
		return nil
	}))
	opts := func(instance string, store inbox.Store, maxDeliver int) cqrs.Options {
		return cqrs.Options{Service: "svc", Instance: instance, Transport: tr, MaxDeliver: maxDeliver,
			Delivery: cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: store, Service: "svc", Retry: cqrs.RetryPolicy{Attempts: 3, Initial: 20 * time.Millisecond, Max: time.Second}})}
	}
	first := newBus(t, opts("i1", busy, 1), handler) // its only attempt: given back, still not a dead letter
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := first.Publish(context.Background(), OrderCreated{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second) // for this wait and the next instance's run
	// The delivery is waiting, polling the claim.
	catgatest.Poll(time.Until(deadline), func() bool { return busy.claims.Load() >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := first.Stop(ctx); err != nil {
		t.Fatalf("Stop with a delivery waiting on another run's claim: %v after %v", err, time.Since(start))
	}
	if ran.Load() != 0 {
		t.Fatalf("handler ran %d times while the claim was held", ran.Load())
	}
	if n := busy.late.Load(); n > 1 {
		t.Fatalf("%d claims after the drain began, want at most 1: ErrDraining was retried", n)
	}
	if transport.Draining(context.Background()) != nil {
		t.Fatal("a context without WithDrain reports draining")
	}
	if dls, err := tr.ListDeadLetters(context.Background(), "", 0); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %v (%v), want none: the message was given back", dls, err)
	}
	second := newBus(t, opts("i2", &inbox.Memory{}, 3), handler)
	startBus(t, second)
	catgatest.Poll(time.Until(deadline), func() bool { return ran.Load() != 0 })
	if ran.Load() != 1 {
		t.Fatalf("the next instance ran the given-back message %d times, want 1", ran.Load())
	}
}
