package bench

import (
	"context"
	"testing"

	"github.com/asaskevich/EventBus"

	"github.com/catga-go/catga/cqrs"
)

// directHandler is a package variable so the compiler cannot devirtualize
// the call: the limit is a real call through the interface.
var directHandler cqrs.CommandHandler[PlaceOrder, int64] = &placeOrderHandler{}

func direct(b *testing.B, _ Env) {
	h, ctx := directHandler, context.Background()
	for b.Loop() {
		if _, err := h.Handle(ctx, PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func init() {
	register("InProcessSend", "catga", func(b *testing.B, _ Env) {
		bus, _ := cqrs.New(cqrs.Options{}, cqrs.HandleCommand(&placeOrderHandler{}))
		ctx := context.Background()
		for b.Loop() {
			if _, err := cqrs.Send[int64](ctx, bus, PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	register("InProcessSend", "direct", direct)

	register("InProcessSender", "catga", func(b *testing.B, _ Env) {
		bus, _ := cqrs.New(cqrs.Options{}, cqrs.HandleCommand(&placeOrderHandler{}))
		send, ctx := cqrs.NewSender[PlaceOrder, int64](bus), context.Background()
		for b.Loop() {
			if _, err := send.Send(ctx, PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	register("InProcessSender", "direct", direct)

	register("InProcessSendDefaults", "catga", func(b *testing.B, _ Env) {
		bus, _ := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)}, cqrs.HandleCommand(&placeOrderHandler{}))
		ctx := context.Background()
		for b.Loop() {
			if _, err := cqrs.Send[int64](ctx, bus, PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	register("InProcessSendDefaults", "direct", direct)

	register("InProcessAsk", "catga", func(b *testing.B, _ Env) {
		h := &placeOrderHandler{}
		bus, _ := cqrs.New(cqrs.Options{}, cqrs.HandleQuery(cqrs.QueryHandler[PlaceOrder, int64](h)))
		ctx := context.Background()
		for b.Loop() {
			if _, err := cqrs.Ask[int64](ctx, bus, PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	register("InProcessAsk", "direct", direct)

	for _, n := range []int{1, 3} {
		name := map[int]string{1: "InProcessPublish1", 3: "InProcessPublish3"}[n]
		register(name, "catga", func(b *testing.B, _ Env) {
			var sum int64
			var regs []cqrs.Registration
			for i := range n {
				regs = append(regs, cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
					sum += e.Cents
					return nil
				}), cqrs.HandlerName(string(rune('a'+i)))))
			}
			bus, _ := cqrs.New(cqrs.Options{}, regs...)
			ctx := context.Background()
			ev := OrderPlaced{OrderID: "o", Cents: 1}
			for b.Loop() {
				if err := bus.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		register(name, "eventbus", func(b *testing.B, _ Env) {
			var sum int64
			bus := EventBus.New()
			for range n {
				if err := bus.Subscribe("OrderPlaced", func(e OrderPlaced) { sum += e.Cents }); err != nil {
					b.Fatal(err)
				}
			}
			ev := OrderPlaced{OrderID: "o", Cents: 1}
			for b.Loop() {
				bus.Publish("OrderPlaced", ev)
			}
		})
	}
}

func BenchmarkInProcessSend(b *testing.B)         { compare(b, "InProcessSend", Env{}) }
func BenchmarkInProcessSender(b *testing.B)       { compare(b, "InProcessSender", Env{}) }
func BenchmarkInProcessSendDefaults(b *testing.B) { compare(b, "InProcessSendDefaults", Env{}) }
func BenchmarkInProcessAsk(b *testing.B)          { compare(b, "InProcessAsk", Env{}) }
func BenchmarkInProcessPublish1(b *testing.B)     { compare(b, "InProcessPublish1", Env{}) }
func BenchmarkInProcessPublish3(b *testing.B)     { compare(b, "InProcessPublish3", Env{}) }
