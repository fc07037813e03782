package cqrs_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

type OrderID string

type CreateOrder struct {
	Customer string
	Total    int64
}

func (c CreateOrder) Validate() error {
	if c.Customer == "" {
		return errors.New("customer is required")
	}
	return nil
}

type GetOrder struct{ ID OrderID }

type Order struct {
	ID       OrderID
	Customer string
}

type OrderCreated struct {
	ID    OrderID
	Total int64
}

type renamed struct{}

func (renamed) MessageName() string { return "Renamed" }

type createOrderHandler struct{ calls int }

func (h *createOrderHandler) Handle(_ context.Context, c CreateOrder) (OrderID, error) {
	h.calls++
	return OrderID("o-" + c.Customer), nil
}

func newBus(t *testing.T, o cqrs.Options, regs ...cqrs.Registration) *cqrs.Bus {
	t.Helper()
	b, err := cqrs.New(o, regs...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func TestSend_ReturnsTypedResult(t *testing.T) {
	h := &createOrderHandler{}
	b := newBus(t, cqrs.Options{}, cqrs.HandleCommand(h))
	id, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c1"})
	if err != nil || id != "o-c1" {
		t.Fatalf("Send = %q, %v; want o-c1, nil", id, err)
	}
	if h.calls != 1 {
		t.Fatalf("handler ran %d times, want 1", h.calls)
	}
}

func TestAsk_ReturnsTypedResult(t *testing.T) {
	b := newBus(t, cqrs.Options{}, cqrs.HandleQuery(cqrs.QueryHandlerFunc[GetOrder, Order](
		func(_ context.Context, q GetOrder) (Order, error) { return Order{ID: q.ID, Customer: "c1"}, nil })))
	o, err := cqrs.Ask[Order](context.Background(), b, GetOrder{ID: "o1"})
	if err != nil || o.ID != "o1" || o.Customer != "c1" {
		t.Fatalf("Ask = %+v, %v", o, err)
	}
}

func TestSend_WrongResultTypeNamesBothTypes(t *testing.T) {
	b := newBus(t, cqrs.Options{}, cqrs.HandleCommand(&createOrderHandler{}))
	_, err := cqrs.Send[int](context.Background(), b, CreateOrder{Customer: "c1"})
	if !errors.Is(err, cqrs.ErrResultType) {
		t.Fatalf("err = %v, want ErrResultType", err)
	}
	for _, want := range []string{"cqrs_test.OrderID", "int", "CreateOrder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSend_QueryTypeIsRefused(t *testing.T) {
	b := newBus(t, cqrs.Options{}, cqrs.HandleQuery(cqrs.QueryHandlerFunc[GetOrder, Order](
		func(context.Context, GetOrder) (Order, error) { return Order{}, nil })))
	_, err := cqrs.Send[Order](context.Background(), b, GetOrder{})
	if err == nil || !strings.Contains(err.Error(), "use Ask") {
		t.Fatalf("err = %v, want a hint to use Ask", err)
	}
}

func TestSend_NoHandler(t *testing.T) {
	b := newBus(t, cqrs.Options{})
	_, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{})
	if !errors.Is(err, cqrs.ErrNoHandler) {
		t.Fatalf("err = %v, want ErrNoHandler", err)
	}
	if err := b.Dispatch(context.Background(), CreateOrder{}); !errors.Is(err, cqrs.ErrNoHandler) {
		t.Fatalf("Dispatch err = %v, want ErrNoHandler", err)
	}
	if got := cqrs.CodeOf(err); got != cqrs.CodeUnavailable {
		t.Fatalf("code = %q, want unavailable", got)
	}
}

func TestNew_DuplicateHandlerNamesBoth(t *testing.T) {
	other := cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(context.Context, CreateOrder) (OrderID, error) { return "", nil })
	_, err := cqrs.New(cqrs.Options{}, cqrs.HandleCommand(&createOrderHandler{}), cqrs.HandleCommand(other, cqrs.HandlerName("other")))
	if err == nil {
		t.Fatal("New accepted two handlers for one command")
	}
	for _, want := range []string{"CreateOrder", "createOrderHandler", "other"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// Two Go types with one wire name.
type clash1 struct{}
type clash2 struct{}

func (clash1) MessageName() string { return "Clash" }
func (clash2) MessageName() string { return "Clash" }

func TestNew_DuplicateWireNameNamesBothTypes(t *testing.T) {
	_, err := cqrs.New(cqrs.Options{},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[clash1](func(context.Context, clash1) error { return nil })),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[clash2](func(context.Context, clash2) error { return nil })),
	)
	if err == nil {
		t.Fatal("New accepted two types with one wire name")
	}
	for _, want := range []string{`"Clash"`, "clash1", "clash2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestNameOf(t *testing.T) {
	tests := []struct {
		name    string
		got     func() (string, error)
		want    string
		wantErr string
	}{
		{"type name", cqrs.NameOf[CreateOrder], "CreateOrder", ""},
		{"MessageName", cqrs.NameOf[renamed], "Renamed", ""},
		{"pointer", cqrs.NameOf[*CreateOrder], "", "not a pointer"},
		{"interface", cqrs.NameOf[error], "", "interface"},
		{"unnamed", cqrs.NameOf[struct{ A int }], "", "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	for _, bad := range []string{"", "1abc", "a.b", "a b", "a*", "a>", strings.Repeat("a", 129)} {
		if transport.ValidateName(bad) == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", bad)
		}
	}
	for _, good := range []string{"A", "OrderCreated", "order-created_v2"} {
		if err := transport.ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q) = %v", good, err)
		}
	}
}

func TestPublish_NoTransportRunsEveryHandlerNow(t *testing.T) {
	var got []string
	h := func(name string) cqrs.Registration {
		return cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(_ context.Context, e OrderCreated) error {
			got = append(got, name+":"+string(e.ID))
			return nil
		}), cqrs.HandlerName(name))
	}
	b := newBus(t, cqrs.Options{}, h("a"), h("b"), h("c"))
	if err := b.Publish(context.Background(), OrderCreated{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a:o1,b:o1,c:o1" {
		t.Fatalf("handlers saw %v", got)
	}
	if err := b.Publish(context.Background(), renamed{}); err != nil {
		t.Fatalf("event without subscribers: %v", err)
	}
	if err := b.Publish(context.Background(), struct{ A int }{}); err == nil {
		t.Fatal("Publish accepted an unnamed type")
	}
}

func TestPublish_NoTransportJoinsHandlerErrors(t *testing.T) {
	boom := errors.New("boom")
	b := newBus(t, cqrs.Options{},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error { return boom }), cqrs.HandlerName("a")),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error { return nil }), cqrs.HandlerName("b")),
	)
	if err := b.Publish(context.Background(), OrderCreated{}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestMessageFrom_CorrelatesChildMessages(t *testing.T) {
	var parent, child *transport.Envelope
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	done := make(chan struct{})
	var b *cqrs.Bus
	b = newBus(t, cqrs.Options{Service: "svc", Instance: "i1", Transport: tr, Dispatch: cqrs.DefaultDispatch(nil)},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(ctx context.Context, c CreateOrder) (OrderID, error) {
			m, ok := cqrs.MessageFrom(ctx)
			if !ok {
				t.Error("no message in the handler's context")
				return "", nil
			}
			parent = m.Envelope()
			return "o1", b.Publish(ctx, OrderCreated{ID: "o1"})
		})),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(ctx context.Context, e OrderCreated) error {
			m, _ := cqrs.MessageFrom(ctx)
			child = m.Envelope()
			close(done)
			return nil
		})),
	)
	startBus(t, b)
	ctx := cqrs.WithCorrelationID(context.Background(), "req-1")
	if _, err := cqrs.Send[OrderID](ctx, b, CreateOrder{Customer: "c"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, done)
	if parent.CorrelationID != "req-1" {
		t.Errorf("command correlation = %q, want req-1", parent.CorrelationID)
	}
	if child.CausationID != parent.ID || child.CorrelationID != "req-1" {
		t.Errorf("event causation %q correlation %q; want %q, req-1", child.CausationID, child.CorrelationID, parent.ID)
	}
	if child.Source != "svc" || child.Instance != "i1" || child.Attempt != 1 || child.Time.IsZero() {
		t.Errorf("event headers %+v", child)
	}
}

func TestNew_TransportNeedsServiceAndInstance(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	if _, err := cqrs.New(cqrs.Options{Transport: tr}); err == nil {
		t.Fatal("New accepted a transport without a service")
	}
}

func TestSend_RemoteOverTransport(t *testing.T) {
	broker := memory.NewBroker(memory.Options{})
	defer broker.Close()
	owner := newBus(t, cqrs.Options{Service: "orders", Instance: "o1", Transport: memory.NewTransport(broker)},
		cqrs.HandleCommand(&createOrderHandler{}),
		cqrs.HandleQuery(cqrs.QueryHandlerFunc[GetOrder, Order](func(_ context.Context, q GetOrder) (Order, error) {
			return Order{}, cqrs.Errorf(cqrs.CodeNotFound, "order %s not found", q.ID)
		})))
	startBus(t, owner)
	caller := newBus(t, cqrs.Options{Service: "web", Instance: "w1", Transport: memory.NewTransport(broker)})
	startBus(t, caller)

	id, err := cqrs.Send[OrderID](context.Background(), caller, CreateOrder{Customer: "c9"})
	if err != nil || id != "o-c9" {
		t.Fatalf("remote Send = %q, %v", id, err)
	}
	_, err = cqrs.Ask[Order](context.Background(), caller, GetOrder{ID: "x"})
	if cqrs.CodeOf(err) != cqrs.CodeNotFound || !strings.Contains(err.Error(), "order x not found") {
		t.Fatalf("remote error = %v (code %q), want not_found with its message", err, cqrs.CodeOf(err))
	}
	if _, err := cqrs.Send[string](context.Background(), caller, renamed{}); !errors.Is(err, cqrs.ErrNoHandler) {
		t.Fatalf("err = %v, want ErrNoHandler", err)
	}
}

func TestDispatch_DurableCommandRunsOnOwner(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	var mu sync.Mutex
	got := map[string]int{}
	done := make(chan struct{}, 10)
	b := newBus(t, cqrs.Options{Service: "s", Instance: "i", Transport: tr},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(_ context.Context, c CreateOrder) (OrderID, error) {
			mu.Lock()
			got[c.Customer]++
			mu.Unlock()
			done <- struct{}{}
			return "", nil
		})))
	startBus(t, b)
	for _, c := range []string{"a", "b", "c"} {
		if err := b.Dispatch(context.Background(), CreateOrder{Customer: c}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		waitFor(t, done)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("handled %v, want each once", got)
	}
}

func TestPayloadLimit(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	b := newBus(t, cqrs.Options{Service: "s", Instance: "i", Transport: tr, MaxPayload: 64})
	err := b.Publish(context.Background(), OrderCreated{ID: OrderID(strings.Repeat("x", 100))})
	var tooLarge *cqrs.PayloadTooLargeError
	if !errors.As(err, &tooLarge) || !errors.Is(err, cqrs.ErrPayloadTooLarge) || tooLarge.Limit != 64 {
		t.Fatalf("err = %v, want a PayloadTooLargeError with limit 64", err)
	}
}

func startBus(t *testing.T, b *cqrs.Bus) {
	t.Helper()
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func waitFor(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
}

// slowSubscribe is a transport whose Subscribe waits until release closes,
// as a broker does while it creates many consumers.
type slowSubscribe struct {
	transport.Transport
	entered, release chan struct{}
}

func (s slowSubscribe) Subscribe(ctx context.Context, sub transport.Subscription) (transport.Closer, error) {
	close(s.entered)
	<-s.release
	return s.Transport.Subscribe(ctx, sub)
}

// Seen: /ready blocked about 2 s while the service started, then said 503:
// Check waited on the lock Start holds while it subscribes. Check answers
// at once, not ready, while Start runs, and ready after.
func TestCheck_AnswersWhileStartSubscribes(t *testing.T) {
	mem := memory.New(memory.Options{})
	tr := slowSubscribe{Transport: mem, entered: make(chan struct{}), release: make(chan struct{})}
	bus, err := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(context.Context, OrderPlaced) error { return nil })))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- bus.Start(context.Background()) }()
	<-tr.entered
	checked := make(chan error, 1)
	go func() { checked <- bus.Check(context.Background()) }()
	select {
	case err := <-checked:
		if err == nil {
			t.Error("Check is ready while Start is still subscribing")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Check did not answer while Start was subscribing")
	}
	close(tr.release)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := bus.Check(context.Background()); err != nil {
		t.Errorf("Check after Start: %v", err)
	}
	if err := bus.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := bus.Check(context.Background()); err == nil {
		t.Error("Check is ready after Stop")
	}
	_ = mem.Close(context.Background())
}

// unencodable cannot be JSON-encoded: its field is a channel.
type unencodable struct{ C chan int }

// PublishBatch publishes each event with its own outcome: an event that
// cannot be encoded, or a command given as an event, is refused alone and
// the others are delivered, once each.
func TestPublishBatch_EachEventItsOutcome(t *testing.T) {
	mem := memory.New(memory.Options{})
	defer mem.Close(context.Background())
	var mu sync.Mutex
	got := map[string]int{}
	bus, err := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: mem},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			mu.Lock()
			got[e.ID]++
			mu.Unlock()
			return nil
		})),
		cqrs.HandleCommand(&createOrderHandler{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer bus.Stop(context.Background())
	errs := bus.PublishBatch(context.Background(), OrderPlaced{ID: "a"}, unencodable{}, OrderPlaced{ID: "b"}, CreateOrder{}, OrderPlaced{ID: "c"})
	if len(errs) != 5 || errs[0] != nil || errs[2] != nil || errs[4] != nil {
		t.Fatalf("errs %v: want nil for the three OrderPlaced", errs)
	}
	if errs[1] == nil || !strings.Contains(errs[3].Error(), "not an event") {
		t.Fatalf("errs %v: want the unencodable refused and the command named as not an event", errs)
	}
	catgatest.Eventually(t, 5*time.Second, "a, b and c handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["a"] == 1 && got["b"] == 1 && got["c"] == 1
	})
}

// Without a transport, PublishBatch runs each event's handlers now, as
// Publish does, and reports each one's errors.
func TestPublishBatch_NoTransportRunsHandlersNow(t *testing.T) {
	boom := errors.New("boom")
	bus, err := cqrs.New(cqrs.Options{}, cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
		if e.ID == "bad" {
			return boom
		}
		return nil
	})))
	if err != nil {
		t.Fatal(err)
	}
	errs := bus.PublishBatch(context.Background(), OrderPlaced{ID: "ok"}, OrderPlaced{ID: "bad"})
	if errs[0] != nil || !errors.Is(errs[1], boom) {
		t.Fatalf("errs %v: want nil, then the handler's error", errs)
	}
}
