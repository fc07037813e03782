package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
)

func init() {
	// An event through the memory transport: encoded, queued, delivered,
	// decoded, handled and settled; 16 publishers.
	register("MemoryEvent", "catga", func(b *testing.B, _ Env) {
		tr := memory.New(memory.Options{})
		defer tr.Close(context.Background())
		var handled atomic.Int64
		bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "b1", Transport: tr},
			cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(context.Context, OrderPlaced) error { handled.Add(1); return nil })))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := bus.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer bus.Stop(ctx)
		b.ResetTimer()
		PublishParallel(b, func(int) error { return bus.Publish(ctx, OrderPlaced{OrderID: "o", Cents: 1}) })
		WaitCount(b, &handled, b.N)
		b.StopTimer() // teardown is not the work
	})
}

func BenchmarkMemoryEvent(b *testing.B) { compare(b, "MemoryEvent", Env{}) }
