package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// natsConfig is natsmod's default configuration with subjects and streams
// of its own; the raw contender uses the same stream settings.
func natsConfig(url string) natsmod.Config {
	id := fmt.Sprintf("%06x", rand.IntN(1<<24))
	return natsmod.Config{URL: url, Prefix: "b" + id, StreamPrefix: "B" + id}.WithDefaults()
}

func natsTransport(b *testing.B, cfg natsmod.Config) *natsmod.Transport {
	b.Helper()
	tr, err := natsmod.New(cfg, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close(context.Background()) })
	return tr
}

func init() {
	register("NATSEvents", "catga", func(b *testing.B, env Env) {
		cfg := natsConfig(env.NATS)
		var handled atomic.Int64
		ctx := context.Background()
		consumer, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "c1", Transport: natsTransport(b, cfg)},
			cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(context.Context, OrderPlaced) error { handled.Add(1); return nil })))
		if err != nil {
			b.Fatal(err)
		}
		if err := consumer.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer consumer.Stop(ctx)
		pub, _ := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: natsTransport(b, cfg)})
		b.ResetTimer()
		PublishParallel(b, func(int) error { return pub.Publish(ctx, OrderPlaced{OrderID: "o", Cents: 1}) })
		WaitCount(b, &handled, b.N)
		b.StopTimer() // teardown is not the work
	})

	// raw: nats.go jetstream doing the same: a publish with Nats-Msg-Id
	// waiting for the stream's ack, a durable pull consumer with natsmod's
	// settings (explicit ack, ack wait, max ack pending, pull batch), an ack
	// per message; the JSON payload decoded.
	register("NATSEvents", "raw", func(b *testing.B, env Env) {
		cfg := natsConfig(env.NATS)
		natsTransport(b, cfg) // creates the streams with natsmod's settings
		nc, err := nats.Connect(env.NATS)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx := context.Background()
		subject := cfg.Prefix + ".events.OrderPlaced"
		cons, err := js.CreateOrUpdateConsumer(ctx, cfg.StreamPrefix+"_EVENTS", jetstream.ConsumerConfig{
			Durable: "raw", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending, DeliverPolicy: jetstream.DeliverNewPolicy, MaxDeliver: -1,
		})
		if err != nil {
			b.Fatal(err)
		}
		var handled atomic.Int64
		cc, err := cons.Consume(func(m jetstream.Msg) {
			var e OrderPlaced
			_ = jsonUnmarshal(m.Data(), &e)
			_ = m.Ack()
			handled.Add(1)
		}, jetstream.PullMaxMessages(min(cfg.FetchBatch, transport.DefaultConcurrency)))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		b.ResetTimer()
		PublishParallel(b, func(i int) error {
			payload, _ := jsonMarshal(OrderPlaced{OrderID: "o", Cents: 1})
			_, err := js.Publish(ctx, subject, payload, jetstream.WithMsgID(cqrs.NewID()))
			return err
		})
		WaitCount(b, &handled, b.N)
		b.StopTimer() // teardown is not the work
	})

	for _, callers := range []int{1, 16} {
		name := fmt.Sprintf("NATSRequest%d", callers)
		register(name, "catga", func(b *testing.B, env Env) {
			cfg := natsConfig(env.NATS)
			ctx := context.Background()
			owner, _ := cqrs.New(cqrs.Options{Service: "owner", Instance: "o1", Transport: natsTransport(b, cfg)},
				cqrs.HandleCommand(&placeOrderHandler{}))
			if err := owner.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer owner.Stop(ctx)
			caller, _ := cqrs.New(cqrs.Options{Service: "caller", Instance: "c1", Transport: natsTransport(b, cfg)})
			b.SetParallelism(callers)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cqrs.Send[int64](ctx, caller, PlaceOrder{OrderID: "o", Cents: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
		})
		register(name, "raw", func(b *testing.B, env Env) {
			resp, err := nats.Connect(env.NATS)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Close()
			h := &placeOrderHandler{}
			_, _ = resp.QueueSubscribe("raw.PlaceOrder", "owner", func(m *nats.Msg) {
				var c PlaceOrder
				_ = jsonUnmarshal(m.Data, &c)
				r, _ := h.Handle(context.Background(), c)
				out, _ := jsonMarshal(r)
				_ = m.Respond(out)
			})
			_ = resp.Flush()
			nc, _ := nats.Connect(env.NATS)
			defer nc.Close()
			b.SetParallelism(callers)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					payload, _ := jsonMarshal(PlaceOrder{OrderID: "o", Cents: 1})
					m, err := nc.Request("raw.PlaceOrder", payload, 5*time.Second)
					if err != nil {
						b.Error(err)
						return
					}
					var r int64
					_ = jsonUnmarshal(m.Data, &r)
				}
			})
			b.StopTimer()
		})
	}
}

func BenchmarkNATSEvents(b *testing.B) {
	compare(b, "NATSEvents", Env{NATS: natstest.Start(b).URL()})
}

func BenchmarkNATSRequest1(b *testing.B) {
	compare(b, "NATSRequest1", Env{NATS: natstest.Start(b).URL()})
}

func BenchmarkNATSRequest16(b *testing.B) {
	compare(b, "NATSRequest16", Env{NATS: natstest.Start(b).URL()})
}
