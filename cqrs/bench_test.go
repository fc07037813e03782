package cqrs_test

import (
	"context"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
)

type benchCmd struct{ N int }

type benchHandler struct{ sum int }

func (h *benchHandler) Handle(_ context.Context, c benchCmd) (int, error) {
	h.sum += c.N
	return h.sum, nil
}

type benchEvent struct {
	ID    string
	Total int64
}

// directHandler is a package variable so the compiler cannot devirtualize
// the call: the limit is a real call through the interface.
var directHandler cqrs.CommandHandler[benchCmd, int] = &benchHandler{}

// BenchmarkDirect is the limit: the handler's method called through its interface.
func BenchmarkDirect(b *testing.B) {
	h := directHandler
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, benchCmd{N: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSend(b *testing.B) {
	bus, _ := cqrs.New(cqrs.Options{}, cqrs.HandleCommand(&benchHandler{}))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cqrs.Send[int](ctx, bus, benchCmd{N: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSender(b *testing.B) {
	bus, _ := cqrs.New(cqrs.Options{}, cqrs.HandleCommand(&benchHandler{}))
	s := cqrs.NewSender[benchCmd, int](bus)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Send(ctx, benchCmd{N: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSend_DefaultBehaviors(b *testing.B) {
	bus, _ := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)}, cqrs.HandleCommand(&benchHandler{}))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cqrs.Send[int](ctx, bus, benchCmd{N: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublish_ThreeHandlers(b *testing.B) {
	var n int
	h := cqrs.EventHandlerFunc[benchEvent](func(_ context.Context, e benchEvent) error { n += int(e.Total); return nil })
	bus, _ := cqrs.New(cqrs.Options{},
		cqrs.HandleEvent(h, cqrs.HandlerName("a")), cqrs.HandleEvent(h, cqrs.HandlerName("b")), cqrs.HandleEvent(h, cqrs.HandlerName("c")))
	ctx := context.Background()
	ev := benchEvent{ID: "o1", Total: 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryTransport_Event: publish, encode, deliver, decode, handle, ack.
func BenchmarkMemoryTransport_Event(b *testing.B) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	var wg sync.WaitGroup
	bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "b1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[benchEvent](func(context.Context, benchEvent) error { wg.Done(); return nil })))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer bus.Stop(ctx)
	ev := benchEvent{ID: "o1", Total: 42}
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		if err := bus.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}

// BenchmarkSend_TracingOn is BenchmarkSend_DefaultBehaviors with a tracer
// that samples every span (and exports none): the cost of tracing on.
// With it off (BenchmarkSend, BenchmarkSend_DefaultBehaviors) the bus adds
// no telemetry step at all.
func BenchmarkSend_TracingOn(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	bus, _ := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil), TracerProvider: tp}, cqrs.HandleCommand(&benchHandler{}))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cqrs.Send[int](ctx, bus, benchCmd{N: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryTransport_Event_TracingOn is BenchmarkMemoryTransport_Event
// with every span sampled: a producer and a consumer span per event.
func BenchmarkMemoryTransport_Event_TracingOn(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	var wg sync.WaitGroup
	bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "b1", Transport: tr, TracerProvider: tp},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[benchEvent](func(context.Context, benchEvent) error { wg.Done(); return nil })))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer bus.Stop(ctx)
	ev := benchEvent{ID: "o1", Total: 42}
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		if err := bus.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}
