package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

type (
	OrderPlaced     struct{ ID string }
	PaymentDone     struct{ ID string }
	PaymentTimedOut struct{ ID string }
	OrderCancelled  struct{ ID string }
)

type checkout struct {
	Status  string `json:"status"`
	Timeout string `json:"timeout"`
}

// newCheckout declares the test's flow: paid in time, or cancelled by its
// timeout.
func newCheckout(timeout time.Duration) *flow.Flow[checkout] {
	f := flow.New[checkout]("checkout")
	flow.Start(f, func(e OrderPlaced) string { return e.ID }, func(c *flow.Context, s *checkout, e OrderPlaced) error {
		s.Status = "awaiting_payment"
		id, err := c.PublishAfter(timeout, PaymentTimedOut{ID: e.ID})
		s.Timeout = id
		return err
	})
	flow.On(f, func(e PaymentDone) string { return e.ID }, func(c *flow.Context, s *checkout, e PaymentDone) error {
		if s.Status != "awaiting_payment" {
			c.Note("payment after %s: refused", s.Status)
			return nil
		}
		s.Status = "paid"
		return nil
	})
	flow.On(f, func(e PaymentTimedOut) string { return e.ID }, func(c *flow.Context, s *checkout, e PaymentTimedOut) error {
		if s.Status != "awaiting_payment" {
			return nil // paid in time: the timeout does nothing
		}
		s.Status = "cancelled"
		return c.Publish(OrderCancelled(e))
	})
	return f
}

func startBus(t *testing.T, f *flow.Flow[checkout]) (*cqrs.Bus, flow.Store, *memory.Transport, chan string) {
	t.Helper()
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	bus, err := cqrs.New(cqrs.Options{Service: "shop", Instance: "i1", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	store := flow.NewMemoryStore(tr)
	cancelled := make(chan string, 10)
	regs := append(f.Registrations(bus, store), cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCancelled](func(_ context.Context, e OrderCancelled) error {
		cancelled <- e.ID
		return nil
	})))
	if err := bus.Register(regs...); err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })
	return bus, store, tr, cancelled
}

func status(t *testing.T, store flow.Store, key string) string {
	t.Helper()
	in, err := store.Get(context.Background(), "checkout", key)
	if err != nil {
		return err.Error()
	}
	var s checkout
	_ = json.Unmarshal(in.State, &s)
	return s.Status
}

func TestFlow_PaidInTimeOrCancelledByItsTimeout(t *testing.T) {
	bus, store, _, cancelled := startBus(t, newCheckout(300*time.Millisecond))
	ctx := context.Background()
	for _, e := range []any{OrderPlaced{ID: "paid"}, OrderPlaced{ID: "late"}} {
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Events of different types travel apart, so the payment goes once its
	// order's flow exists (in the example, the step that sends the charge
	// comes first by cause).
	catgatest.Eventually(t, 5*time.Second, "the order placed", func() bool { return status(t, store, "paid") == "awaiting_payment" })
	for _, e := range []any{PaymentDone{ID: "paid"}, PaymentDone{ID: "never-placed"}} {
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	catgatest.Eventually(t, 5*time.Second, "the paid order paid", func() bool { return status(t, store, "paid") == "paid" })
	select {
	case id := <-cancelled:
		if id != "late" {
			t.Fatalf("cancelled %s, want late", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unpaid order was not cancelled by its timeout")
	}
	if got := status(t, store, "late"); got != "cancelled" {
		t.Fatalf("late: %s, want cancelled", got)
	}
	// A payment after the cancellation is refused, and noted.
	if err := bus.Publish(ctx, PaymentDone{ID: "late"}); err != nil {
		t.Fatal(err)
	}
	catgatest.Eventually(t, 5*time.Second, "the late payment noted", func() bool {
		in, _ := store.Get(ctx, "checkout", "late")
		return in != nil && len(in.History) == 3 && in.History[2].Note == "payment after cancelled: refused"
	})
	if _, err := store.Get(ctx, "checkout", "never-placed"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("a payment for an order never placed made an instance: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the paid order's timeout has come and done nothing
	in, _ := store.Get(ctx, "checkout", "paid")
	if status(t, store, "paid") != "paid" || len(in.History) != 3 {
		t.Fatalf("paid: %s with %d steps, want paid after 3 (placed, paid, its timeout)", status(t, store, "paid"), len(in.History))
	}
	if len(cancelled) != 0 {
		t.Fatalf("%d more cancelled", len(cancelled))
	}
}

// The same event delivered twice (a redelivery: the same message id)
// advances the instance once.
func TestFlow_RedeliveredEventAdvancesOnce(t *testing.T) {
	_, store, tr, _ := startBus(t, newCheckout(time.Hour))
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "OrderPlaced", Kind: transport.KindEvent, ContentType: "application/json",
		Time: time.Now(), Payload: []byte(`{"ID":"o1"}`)}
	topic := transport.Topic{Kind: transport.KindEvent, Name: "OrderPlaced"}
	for range 2 {
		if err := tr.Publish(context.Background(), topic, env); err != nil {
			t.Fatal(err)
		}
	}
	catgatest.Eventually(t, 5*time.Second, "the order placed", func() bool { return status(t, store, "o1") == "awaiting_payment" })
	time.Sleep(200 * time.Millisecond)
	in, _ := store.Get(context.Background(), "checkout", "o1")
	if in.Version != 1 || len(in.History) != 1 || in.History[0].MessageID != env.ID {
		t.Fatalf("after the event twice: version %d, history %+v; want one step of %s", in.Version, in.History, env.ID)
	}
}

func TestHandler_ServesStateAndHistory(t *testing.T) {
	bus, store, _, _ := startBus(t, newCheckout(time.Hour))
	if err := bus.Publish(context.Background(), OrderPlaced{ID: "o7"}); err != nil {
		t.Fatal(err)
	}
	catgatest.Eventually(t, 5*time.Second, "the order placed", func() bool { return status(t, store, "o7") == "awaiting_payment" })
	srv := httptest.NewServer(flow.Handler(store))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/checkout/o7")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var in flow.Instance
	if err := json.NewDecoder(res.Body).Decode(&in); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET: %d, %v", res.StatusCode, err)
	}
	if in.Flow != "checkout" || in.Key != "o7" || in.Version != 1 || len(in.History) != 1 || in.History[0].Step != "OrderPlaced" {
		t.Fatalf("GET answered %+v", in)
	}
	res2, err := http.Get(srv.URL + "/checkout/nope")
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of an unknown instance: %d, want 404", res2.StatusCode)
	}
}

func TestNew_RefusesABadNameAndASecondStepForOneEvent(t *testing.T) {
	for name, fn := range map[string]func(){
		"bad name": func() { flow.New[checkout]("no spaces") },
		"second step": func() {
			f := flow.New[checkout]("twice")
			flow.On(f, func(e PaymentDone) string { return e.ID }, func(*flow.Context, *checkout, PaymentDone) error { return nil })
			flow.On(f, func(e PaymentDone) string { return e.ID }, func(*flow.Context, *checkout, PaymentDone) error { return nil })
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
