package natsmod_test

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
)

type OrderPlaced struct{ ID string }

// Example adds NATS to a service: natsmod.Module and NATS_URL, nothing else.
// It needs a NATS server with JetStream, so it only compiles here.
func Example() {
	os.Setenv("NATS_URL", "nats://127.0.0.1:4222")
	app := fx.New(
		catga.Module,
		natsmod.Module,
		cqrs.Event[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			fmt.Println("placed", e.ID)
			return nil
		}),
	)
	app.Run()
}

// ExampleNew uses the transport without fx.
func ExampleNew() {
	tr, err := natsmod.New(natsmod.Config{URL: "nats://127.0.0.1:4222"}, "orders/pod-1", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := tr.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close(ctx)
	bus, _ := cqrs.New(cqrs.Options{Service: "orders", Instance: "pod-1", Transport: tr})
	_ = bus.Publish(ctx, OrderPlaced{ID: "o-1"})
}
