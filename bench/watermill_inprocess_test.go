package bench

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// The Watermill contenders: Watermill v1.5.1 with its documented defaults
// (gochannel.Config{}, message.RouterConfig{}, cqrs.JSONMarshaler{}, no
// middleware) and watermill.NopLogger{}. Watermill's command bus and event
// bus are asynchronous, so one op is a message sent and its handler run:
// b.N messages are sent and the op ends when b.N were handled.

func init() {
	register("InProcessSend", "watermill", wmInProcessSend)
	register("MemoryEvent", "watermill", wmMemoryEvent)
}

// wmInProcessSend: PlaceOrder through the CQRS CommandBus over gochannel to
// a command processor calling placeOrderHandler; b.N commands sent from one
// goroutine.
func wmInProcessSend(b *testing.B, _ Env) {
	defer wmSettle(runtime.NumGoroutine())
	logger := watermill.NopLogger{}
	marshaler := cqrs.JSONMarshaler{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	defer pubSub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	bus, err := cqrs.NewCommandBusWithConfig(pubSub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return "commands." + p.CommandName, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	processor, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return "commands." + p.CommandName, nil
		},
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return pubSub, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	// The router runs each message's handler in a goroutine of its own,
	// so the handler, which is not safe for concurrent use, is called
	// under a lock.
	var (
		mu      sync.Mutex
		h       placeOrderHandler
		handled atomic.Int64
	)
	err = processor.AddHandlers(cqrs.NewCommandHandler("PlaceOrder", func(ctx context.Context, c *PlaceOrder) error {
		mu.Lock()
		_, err := h.Handle(ctx, *c)
		mu.Unlock()
		if err != nil {
			return err
		}
		handled.Add(1)
		return nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	defer wmRunRouter(b, router)()

	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := bus.Send(ctx, &PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
			b.Fatal(err)
		}
	}
	WaitCount(b, &handled, b.N)
	b.StopTimer()
}

// wmMemoryEvent: OrderPlaced through the CQRS EventBus over gochannel to an
// event processor's handler; 16 publishers.
func wmMemoryEvent(b *testing.B, _ Env) {
	defer wmSettle(runtime.NumGoroutine())
	logger := watermill.NopLogger{}
	marshaler := cqrs.JSONMarshaler{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	defer pubSub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	bus, err := cqrs.NewEventBusWithConfig(pubSub, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
			return "events." + p.EventName, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	processor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return "events." + p.EventName, nil
		},
		SubscriberConstructor: func(cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return pubSub, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	err = processor.AddHandlers(cqrs.NewEventHandler("OrderPlaced", func(context.Context, *OrderPlaced) error {
		handled.Add(1)
		return nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	defer wmRunRouter(b, router)()

	ctx := context.Background()
	b.ResetTimer()
	PublishParallel(b, func(int) error { return bus.Publish(ctx, &OrderPlaced{OrderID: "o", Cents: 1}) })
	WaitCount(b, &handled, b.N)
	b.StopTimer()
}

// wmRunRouter runs router and returns once it is running (its handlers
// subscribed); the returned func closes it and waits for Run to return.
func wmRunRouter(b *testing.B, router *message.Router) (stop func()) {
	b.Helper()
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-done:
		b.Fatalf("watermill router stopped before running: %v", err)
	}
	return func() {
		if err := router.Close(); err != nil {
			b.Errorf("watermill router close: %v", err)
		}
		if err := <-done; err != nil {
			b.Errorf("watermill router: %v", err)
		}
	}
}

// wmSettle waits, at most 5s, until the process is back to the goroutines
// it had before a contender started. A few of Watermill's goroutines end
// on their own just after Close returns (gochannel's senders of acked
// messages, the NATS server's side of a closed connection, redisstream's
// reader); waiting for them keeps them out of the next contender's run.
func wmSettle(before int) {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// wmEvents is the run both broker comparisons share: subscribe to topic,
// decode, ack and count every message in one consumer, publish b.N JSON
// events from 16 publishers, and wait until all were handled. closeSub
// closes sub, which ends the consumer loop; it may be called twice.
func wmEvents(b *testing.B, pub message.Publisher, sub message.Subscriber, topic string, closeSub func()) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for msg := range msgs {
			var e OrderPlaced
			if err := json.Unmarshal(msg.Payload, &e); err != nil {
				b.Error(err)
			}
			msg.Ack()
			handled.Add(1)
		}
	}()
	// The consumer loop ends when the subscriber closes its output.
	defer func() { <-consumed }()
	defer closeSub()

	b.ResetTimer()
	PublishParallel(b, func(int) error {
		payload, err := json.Marshal(OrderPlaced{OrderID: "o", Cents: 1})
		if err != nil {
			return err
		}
		return pub.Publish(topic, message.NewMessage(watermill.NewUUID(), payload))
	})
	WaitCount(b, &handled, b.N)
	b.StopTimer()
}
