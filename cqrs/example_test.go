package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

type PlaceOrder struct {
	Customer string
	Cents    int64
}

func (p PlaceOrder) Validate() error {
	if p.Customer == "" {
		return errors.New("customer is required")
	}
	return nil
}

type FindOrder struct{ ID string }

type OrderPlaced struct {
	ID    string
	Cents int64
}

// Example is the tour: a bus on the memory transport with a command, a
// query and an event handler; Send and Ask return typed results, Publish
// reaches the event handler through the envelope and codec, and a
// validation failure carries its code.
func Example() {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())

	placed := make(chan OrderPlaced, 1)
	var bus *cqrs.Bus
	bus, err := cqrs.New(cqrs.Options{
		Service: "orders", Instance: "pod-1", Transport: tr,
		Dispatch: cqrs.DefaultDispatch(nil),
		Delivery: cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Service: "orders", Retry: cqrs.RetryPolicy{Attempts: 3, Initial: 20 * time.Millisecond, Max: time.Second}, Idempotency: &inbox.Memory{}}),
	},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[PlaceOrder, string](func(ctx context.Context, p PlaceOrder) (string, error) {
			return "o-1", bus.Publish(ctx, OrderPlaced{ID: "o-1", Cents: p.Cents})
		})),
		cqrs.HandleQuery(cqrs.QueryHandlerFunc[FindOrder, string](func(_ context.Context, q FindOrder) (string, error) {
			return "", cqrs.Errorf(cqrs.CodeNotFound, "order %s not found", q.ID)
		})),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			placed <- e
			return nil
		})),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = bus.Start(ctx)
	defer bus.Stop(ctx)

	id, err := cqrs.Send[string](ctx, bus, PlaceOrder{Customer: "c1", Cents: 1200})
	fmt.Println("sent:", id, err)
	fmt.Println("event:", <-placed)

	_, err = cqrs.Ask[string](ctx, bus, FindOrder{ID: "o-9"})
	fmt.Println("ask:", cqrs.CodeOf(err), err)

	_, err = cqrs.Send[string](ctx, bus, PlaceOrder{})
	fmt.Println("invalid:", cqrs.CodeOf(err))

	_, err = cqrs.Send[int](ctx, bus, PlaceOrder{Customer: "c1"})
	fmt.Println("wrong result type:", errors.Is(err, cqrs.ErrResultType))
	// Output:
	// sent: o-1 <nil>
	// event: {o-1 1200}
	// ask: not_found order o-9 not found
	// invalid: invalid
	// wrong result type: true
}

// ExampleNewSender resolves a command's route once.
func ExampleNewSender() {
	bus, _ := cqrs.New(cqrs.Options{}, cqrs.HandleCommand(cqrs.CommandHandlerFunc[PlaceOrder, string](
		func(_ context.Context, p PlaceOrder) (string, error) { return "for " + p.Customer, nil })))
	place := cqrs.NewSender[PlaceOrder, string](bus)
	res, err := place.Send(context.Background(), PlaceOrder{Customer: "c7"})
	fmt.Println(res, err)
	// Output: for c7 <nil>
}

// ExampleBus_Publish: without a transport, Publish runs the handlers now.
func ExampleBus_Publish() {
	bus, _ := cqrs.New(cqrs.Options{},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			fmt.Println("billing saw", e.ID)
			return nil
		}), cqrs.HandlerName("billing")),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			fmt.Println("mailer saw", e.ID)
			return nil
		}), cqrs.HandlerName("mailer")),
	)
	_ = bus.Publish(context.Background(), OrderPlaced{ID: "o-2"})
	// Output:
	// billing saw o-2
	// mailer saw o-2
}

// ExampleBus_PublishBatch publishes many events with one outcome each; on
// NATS or Redis their broker acks overlap in a bounded window.
func ExampleBus_PublishBatch() {
	bus, _ := cqrs.New(cqrs.Options{},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			fmt.Println("saw", e.ID)
			return nil
		})))
	for i, err := range bus.PublishBatch(context.Background(), OrderPlaced{ID: "o-1"}, OrderPlaced{ID: "o-2"}) {
		if err != nil {
			fmt.Println("event", i, "not published:", err)
		}
	}
	// Output:
	// saw o-1
	// saw o-2
}

// ExampleBehavior writes a behavior on the http-middleware model.
func ExampleBehavior() {
	timing := cqrs.Behavior(func(next cqrs.Step) cqrs.Step {
		return cqrs.StepFunc(func(ctx context.Context, m cqrs.Message) error {
			start := time.Now()
			err := next.Handle(ctx, m)
			_ = time.Since(start) // record it
			fmt.Println("handled", m.Topic())
			return err
		})
	})
	bus, _ := cqrs.New(cqrs.Options{Dispatch: []cqrs.Behavior{timing}}, cqrs.HandleCommand(cqrs.CommandHandlerFunc[PlaceOrder, string](
		func(context.Context, PlaceOrder) (string, error) { return "", nil })))
	_, _ = cqrs.Send[string](context.Background(), bus, PlaceOrder{Customer: "c"})
	// Output: handled command PlaceOrder
}

// ExampleBus_DeadLetters lists what a group gave up on.
func ExampleBus_DeadLetters() {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	bus, _ := cqrs.New(cqrs.Options{Service: "billing", Instance: "b1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(context.Context, OrderPlaced) error {
			return cqrs.Permanent(errors.New("card refused"))
		})))
	ctx := context.Background()
	_ = bus.Start(ctx)
	defer bus.Stop(ctx)
	_ = bus.Publish(ctx, OrderPlaced{ID: "o-3"})

	dls, _ := bus.DeadLetters()
	var list []transport.DeadLetter
	if catgatest.Poll(5*time.Second, func() bool {
		list, _ = dls.ListDeadLetters(ctx, "billing", 10)
		return len(list) > 0
	}) {
		fmt.Println(list[0].Envelope.Name, list[0].Attempts, list[0].Error)
	}
	// Output: OrderPlaced 1 card refused
}

type PaymentDue struct{ OrderID string }

// ExampleBus_PublishAt schedules an event for later and cancels another:
// the memory transport holds them in a timer heap; natsmod and redismod in
// the broker, so they survive a restart.
func ExampleBus_PublishAt() {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	done := make(chan string, 2)
	bus, _ := cqrs.New(cqrs.Options{Service: "orders", Instance: "orders-1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[PaymentDue](func(_ context.Context, e PaymentDue) error {
			done <- e.OrderID
			return nil
		})))
	ctx := context.Background()
	_ = bus.Start(ctx)
	defer bus.Stop(ctx)
	_, _ = bus.PublishAt(ctx, time.Now().Add(50*time.Millisecond), PaymentDue{OrderID: "o-1"})
	id, _ := bus.PublishAt(ctx, time.Now().Add(20*time.Millisecond), PaymentDue{OrderID: "o-2"})
	if err := bus.Cancel(ctx, id); err != nil {
		fmt.Println("cancel:", err)
	}
	fmt.Println("due:", <-done)
	err := bus.Cancel(ctx, id)
	fmt.Println("cancel again:", errors.Is(err, cqrs.ErrNotScheduled))
	// Output:
	// due: o-1
	// cancel again: true
}
