package natsmod_test

import (
	"context"
	"fmt"
	"sync"
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

// The benchmarks compare natsmod with the raw nats.go client doing the
// same work on the same embedded server in the same run, and report
// catga/raw as the metric "x-raw" (time per message; below 1.11 meets the
// 0.9x-throughput target in BENCHMARKS.md).

const benchPublishers = 16

type benchTick struct {
	N int `json:"n"`
}

// ratios holds each side's time per op, by comparison.
var ratios sync.Map

func record(b *testing.B, cmp, side string, perOp time.Duration) {
	ratios.Store(cmp+"/"+side, perOp)
	if side != "catga" {
		return
	}
	raw, ok := ratios.Load(cmp + "/raw")
	if ok && raw.(time.Duration) > 0 {
		b.ReportMetric(float64(perOp)/float64(raw.(time.Duration)), "x-raw")
	}
}

// publishParallel runs publish b.N times from benchPublishers goroutines.
func publishParallel(b *testing.B, publish func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := publish(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func waitCount(b *testing.B, n *atomic.Int64, want int) {
	deadline := time.Now().Add(2 * time.Minute)
	for n.Load() < int64(want) {
		if time.Now().After(deadline) {
			b.Fatalf("consumed %d of %d", n.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkEvents: publish, consume, ack; 16 publishers, one consumer
// instance. raw is nats.go jetstream on the same stream settings (explicit
// ack, same max ack pending and pull batch), catga is bus.Publish and an
// event handler through natsmod.
func BenchmarkEvents(b *testing.B) {
	srv := natstest.Start(b)
	cfg := natsmod.Config{URL: srv.URL()}.WithDefaults()
	ctx := context.Background()

	b.Run("raw", func(b *testing.B) {
		tr := startBench(b, cfg) // creates the streams with natsmod's settings
		_ = tr
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		subject := cfg.Prefix + ".events.RawTick"
		cons, err := js.CreateOrUpdateConsumer(ctx, cfg.StreamPrefix+"_EVENTS", jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("raw%d", b.N), FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		cc, err := cons.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			got.Add(1)
		}, jetstream.PullMaxMessages(min(cfg.FetchBatch, transport.DefaultConcurrency)))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		payload := []byte(`{"n":1}`)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		publishParallel(b, func(i int) error {
			_, err := js.Publish(ctx, subject, payload, jetstream.WithMsgID(fmt.Sprintf("r%d-%d", b.N, i)))
			return err
		})
		waitCount(b, &got, b.N)
		record(b, "events", "raw", time.Since(start)/time.Duration(b.N))
	})

	b.Run("catga", func(b *testing.B) {
		var got atomic.Int64
		tr := startBench(b, cfg)
		bus, err := cqrs.New(cqrs.Options{Service: fmt.Sprintf("bench%d", b.N), Instance: "b1", Transport: tr},
			cqrs.HandleEvent(cqrs.EventHandlerFunc[benchTick](func(context.Context, benchTick) error { got.Add(1); return nil })))
		if err != nil {
			b.Fatal(err)
		}
		if err := bus.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer bus.Stop(ctx)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		publishParallel(b, func(i int) error { return bus.Publish(ctx, benchTick{N: i}) })
		waitCount(b, &got, b.N)
		record(b, "events", "catga", time.Since(start)/time.Duration(b.N))
	})
}

// BenchmarkRequest: a round trip to a responder in another connection, by
// 1 and 16 concurrent callers. raw is nc.Request to a queue subscriber that
// echoes; catga is cqrs.Send to a command handler over natsmod.
func BenchmarkRequest(b *testing.B) {
	srv := natstest.Start(b)
	cfg := natsmod.Config{URL: srv.URL()}.WithDefaults()
	ctx := context.Background()
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d/raw", callers), func(b *testing.B) {
			resp, _ := nats.Connect(srv.URL())
			defer resp.Close()
			_, _ = resp.QueueSubscribe("raw.echo", "svc", func(m *nats.Msg) { _ = m.Respond(m.Data) })
			_ = resp.Flush()
			nc, _ := nats.Connect(srv.URL())
			defer nc.Close()
			b.ReportAllocs()
			b.SetParallelism(callers)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := nc.Request("raw.echo", []byte(`{"n":1}`), 5*time.Second); err != nil {
						b.Error(err)
						return
					}
				}
			})
			record(b, fmt.Sprintf("request%d", callers), "raw", time.Since(start)/time.Duration(b.N))
		})
		b.Run(fmt.Sprintf("callers=%d/catga", callers), func(b *testing.B) {
			owner, err := cqrs.New(cqrs.Options{Service: "echo", Instance: "o1", Transport: startBench(b, cfg)},
				cqrs.HandleCommand(cqrs.CommandHandlerFunc[benchTick, int](func(_ context.Context, t benchTick) (int, error) { return t.N, nil })))
			if err != nil {
				b.Fatal(err)
			}
			if err := owner.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer owner.Stop(ctx)
			caller, _ := cqrs.New(cqrs.Options{Service: "caller", Instance: "c1", Transport: startBench(b, cfg)})
			b.ReportAllocs()
			b.SetParallelism(callers)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cqrs.Send[int](ctx, caller, benchTick{N: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			record(b, fmt.Sprintf("request%d", callers), "catga", time.Since(start)/time.Duration(b.N))
		})
	}
}

func startBench(b *testing.B, cfg natsmod.Config) *natsmod.Transport {
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

// BenchmarkPublishBatch: an outbox relay's work, b.N events published in
// order from one goroutine and each outcome known. one-by-one is Publish
// per message (a round trip each); batch is PublishBatch in batches of 256
// with the default window. The batch side reports "x-one-by-one", its time
// per message over one-by-one's (below 1 is faster).
func BenchmarkPublishBatch(b *testing.B) {
	srv := natstest.Start(b)
	cfg := natsmod.Config{URL: srv.URL()}.WithDefaults()
	ctx := context.Background()
	topic := transport.Topic{Kind: transport.KindEvent, Name: "benchTick"}
	env := func(i int) *transport.Envelope {
		return &transport.Envelope{ID: cqrs.NewID(), Name: topic.Name, Kind: transport.KindEvent, ContentType: "application/json",
			Time: time.Now(), Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	b.Run("one-by-one", func(b *testing.B) {
		tr := startBench(b, cfg)
		b.ReportAllocs()
		start := time.Now()
		for i := range b.N {
			if err := tr.Publish(ctx, topic, env(i)); err != nil {
				b.Fatal(err)
			}
		}
		record(b, "publishbatch", "one-by-one", time.Since(start)/time.Duration(b.N))
	})
	b.Run("batch", func(b *testing.B) {
		tr := startBench(b, cfg)
		const size = 256
		msgs, errs := make([]transport.Outgoing, 0, size), make([]error, size)
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i += size {
			msgs = msgs[:0]
			for j := i; j < min(i+size, b.N); j++ {
				msgs = append(msgs, transport.Outgoing{Topic: topic, Envelope: env(j)})
			}
			tr.PublishBatch(ctx, msgs, errs[:len(msgs)])
			for _, err := range errs[:len(msgs)] {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		perOp := time.Since(start) / time.Duration(b.N)
		ratios.Store("publishbatch/batch", perOp)
		if one, ok := ratios.Load("publishbatch/one-by-one"); ok && one.(time.Duration) > 0 {
			b.ReportMetric(float64(perOp)/float64(one.(time.Duration)), "x-one-by-one")
		}
	})
}
