package cqrs_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
)

func tracing(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func spanNamed(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

// A Send whose handler publishes, over the memory transport: one trace,
// handle -> publish -> process, each the parent of the next.
func TestTracing_SpansLinkAcrossTheTransport(t *testing.T) {
	tp, exp := tracing(t)
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	done := make(chan struct{})
	var bus *cqrs.Bus
	bus = newBus(t, cqrs.Options{Service: "svc", Instance: "i1", Transport: tr, TracerProvider: tp},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(ctx context.Context, c CreateOrder) (OrderID, error) {
			return "o1", bus.Publish(ctx, OrderCreated{ID: "o1"})
		})),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error { close(done); return nil })))
	startBus(t, bus)
	root, span := tp.Tracer("test").Start(context.Background(), "request")
	if _, err := cqrs.Send[OrderID](root, bus, CreateOrder{Customer: "c"}); err != nil {
		t.Fatal(err)
	}
	span.End()
	waitFor(t, done)
	catgatest.Poll(5*time.Second, func() bool { return spanNamed(exp.GetSpans(), "process OrderCreated") != nil })
	spans := exp.GetSpans()
	req, handle, publish, process := spanNamed(spans, "request"), spanNamed(spans, "handle CreateOrder"), spanNamed(spans, "publish OrderCreated"), spanNamed(spans, "process OrderCreated")
	if req == nil || handle == nil || publish == nil || process == nil {
		t.Fatalf("spans %v, want request, handle CreateOrder, publish OrderCreated, process OrderCreated", names(spans))
	}
	tid := req.SpanContext.TraceID()
	for _, s := range []*tracetest.SpanStub{handle, publish, process} {
		if s.SpanContext.TraceID() != tid {
			t.Errorf("%s is in trace %s, want %s", s.Name, s.SpanContext.TraceID(), tid)
		}
	}
	links := []struct{ child, parent *tracetest.SpanStub }{{handle, req}, {publish, handle}, {process, publish}}
	for _, l := range links {
		if l.child.Parent.SpanID() != l.parent.SpanContext.SpanID() {
			t.Errorf("%s's parent is %s, want %s", l.child.Name, l.child.Parent.SpanID(), l.parent.Name)
		}
	}
	if publish.SpanKind != trace.SpanKindProducer || process.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kinds: publish %v, process %v; want producer, consumer", publish.SpanKind, process.SpanKind)
	}
	attrs := map[string]string{}
	for _, a := range process.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, want := range map[string]string{"messaging.system": "memory", "messaging.destination.name": "OrderCreated",
		"messaging.operation.type": "process", "messaging.consumer.group.name": "svc"} {
		if attrs[k] != want {
			t.Errorf("process span %s = %q, want %q", k, attrs[k], want)
		}
	}
	if attrs["messaging.message.id"] == "" {
		t.Error("process span has no messaging.message.id")
	}
	// The producer's span uses semconv's current operation type, send, and
	// names no consumer group: it has none.
	pub := map[string]string{}
	for _, a := range publish.Attributes {
		pub[string(a.Key)] = a.Value.Emit()
	}
	if pub["messaging.operation.type"] != "send" || pub["messaging.operation.name"] != "publish" {
		t.Errorf("publish span operation type %q name %q, want send and publish", pub["messaging.operation.type"], pub["messaging.operation.name"])
	}
	if g, ok := pub["messaging.consumer.group.name"]; ok {
		t.Errorf("publish span names consumer group %q, want none", g)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// The log line of a failed handler carries its trace id.
func TestTracing_FailedHandlerLogHasTraceID(t *testing.T) {
	tp, exp := tracing(t)
	var mu sync.Mutex
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
	b, _ := deliveryBusWith(t, cqrs.Options{TracerProvider: tp, Logger: log, MaxDeliver: 1},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error { return errors.New("no stock") })))
	if err := b.Publish(context.Background(), OrderCreated{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	var logged string
	if !catgatest.Poll(5*time.Second, func() bool {
		mu.Lock()
		logged = buf.String()
		mu.Unlock()
		p := spanNamed(exp.GetSpans(), "process OrderCreated")
		if p == nil || !strings.Contains(logged, "dead-lettering") {
			return false
		}
		if tid := p.SpanContext.TraceID().String(); !strings.Contains(logged, `"trace_id":"`+tid+`"`) {
			t.Fatalf("log %s lacks the trace id %s", logged, tid)
		}
		return true
	}) {
		t.Fatalf("no dead-letter log line with a span; log: %s", logged)
	}
}

// Metrics count each handler run by outcome.
func TestMetrics_HandledCountedByOutcome(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b := newBus(t, cqrs.Options{Service: "svc", MeterProvider: mp},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(_ context.Context, c CreateOrder) (OrderID, error) {
			if c.Customer == "bad" {
				return "", errors.New("refused")
			}
			return "o", nil
		})))
	for _, c := range []string{"a", "b", "bad"} {
		_, _ = cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: c})
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "catga.messages.handled" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				o, _ := dp.Attributes.Value("outcome")
				got[o.AsString()] = dp.Value
			}
		}
	}
	if got["ok"] != 2 || got["error"] != 1 {
		t.Fatalf("handled %v, want ok 2, error 1", got)
	}
}

// deliveryBusWith is a started bus on its own memory broker, o completed.
func deliveryBusWith(t *testing.T, o cqrs.Options, regs ...cqrs.Registration) (*cqrs.Bus, *memory.Transport) {
	t.Helper()
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	o.Service, o.Instance, o.Transport = "svc", "i1", tr
	o.Redelivery = cqrs.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}
	b := newBus(t, o, regs...)
	startBus(t, b)
	return b, tr
}
