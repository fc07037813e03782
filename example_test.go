package catga_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
	httpmod "github.com/catga-go/catga/modules/http"
)

type Greet struct{ Name string }

// ExampleModule composes a service: catga.Module and one command handler.
// A real main calls app.Run(catga.Module, yours.Module) or fx.New(...).Run().
func ExampleModule() {
	var bus *cqrs.Bus
	app := fx.New(
		catga.Module,
		fx.NopLogger,
		fx.Replace(httpmod.Config{Addr: "127.0.0.1:0"}),
		cqrs.Command[Greet, string](func(_ context.Context, g Greet) (string, error) { return "hello, " + g.Name, nil }),
		fx.Populate(&bus),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(ctx)
	msg, err := cqrs.Send[string](ctx, bus, Greet{Name: "Catga"})
	fmt.Println(msg, err)
	// Output: hello, Catga <nil>
}

// OrderPlaced is the orders service's event, as its contracts package
// declares it.
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Cents   int64  `json:"cents"`
}

// Placed is billing's own type for it: another name in Go, the same wire
// name and JSON.
type Placed struct {
	OrderID string `json:"order_id"`
	Cents   int64  `json:"cents"`
}

func (Placed) MessageName() string { return "OrderPlaced" }

// Two services agree on a message by its wire name (the Go type's name
// without its package, or its MessageName) and its JSON: orders publishes
// an OrderPlaced and billing, another consumer group on the same broker,
// receives it as its own Placed.
func Example_contracts() {
	name, _ := cqrs.NameOf[OrderPlaced]()
	fmt.Println(name, transport.Topic{Kind: transport.KindEvent, Name: name}.Subject("catga"))

	broker := memory.NewBroker(memory.Options{})
	defer broker.Close()
	ctx := context.Background()
	got := make(chan Placed, 1)
	billingTr := memory.NewTransport(broker)
	defer billingTr.Close(ctx)
	billing, err := cqrs.New(cqrs.Options{Service: "billing", Instance: "billing-1", Transport: billingTr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Placed](func(_ context.Context, e Placed) error {
			got <- e
			return nil
		})))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = billing.Start(ctx)
	defer billing.Stop(ctx)

	ordersTr := memory.NewTransport(broker)
	defer ordersTr.Close(ctx)
	orders, _ := cqrs.New(cqrs.Options{Service: "orders", Instance: "orders-1", Transport: ordersTr})
	fmt.Println(orders.Publish(ctx, OrderPlaced{OrderID: "o-1", Cents: 500}))
	fmt.Printf("%+v\n", <-got)
	// Output:
	// OrderPlaced catga.events.OrderPlaced
	// <nil>
	// {OrderID:o-1 Cents:500}
}
