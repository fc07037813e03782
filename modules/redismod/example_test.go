package redismod_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/redismod"
)

type Shipped struct{ OrderID string }

// Example runs a service over Redis Streams: redismod.Module and REDIS_URL.
// It needs a Redis server, so it only compiles here.
func Example() {
	fx.New(
		catga.Module,
		redismod.Module,
		cqrs.Event[Shipped](func(_ context.Context, e Shipped) error {
			fmt.Println("shipped", e.OrderID)
			return nil
		}),
	).Run()
}

// ExampleNewInbox shares the idempotency inbox of Redis with a service on
// another transport.
func ExampleNewInbox() {
	rdb, err := redismod.NewClient(redismod.Config{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rdb.Close()
	inbox := redismod.NewInbox(rdb, redismod.Config{})
	_ = cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: inbox, Service: "billing"})
}
