package cqrs

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/catga-go/catga/cqrs/transport"
)

// Telemetry: the bus traces and measures through the OpenTelemetry API
// only when Options.TracerProvider or Options.MeterProvider is set (app sets
// them from the OTEL_* variables); without them nothing is added to the
// path of a message, so tracing off costs nothing.
//
// Spans: "handle <Name>" (internal) around a local Send, Ask, Publish or
// Dispatch; "publish <Name>" (producer) around sending an event or durable
// command; "send <Name>" (client) around a remote request; "process
// <Name>" (consumer) around a delivery, and (server) around answering a
// request. Each carries the messaging attributes of OpenTelemetry's
// current semantic conventions: messaging.system,
// messaging.destination.name, messaging.operation.name (the span name's
// first word), messaging.operation.type (send for the producer and client
// spans, process for the others), messaging.message.id and
// messaging.message.conversation_id, and on the consumer's and server's
// spans messaging.consumer.group.name. The
// context crosses processes in the envelope's traceparent and tracestate
// (W3C trace context), whatever the transport.
//
// Metrics (Prometheus names in brackets): catga.messages.handled
// [catga_messages_handled_total] by message, kind, service and outcome (ok or
// error); catga.handler.duration [catga_handler_duration_seconds];
// catga.messages.in_flight; catga.messages.redelivered, the naks
// [catga_messages_redelivered_total]; catga.messages.dead_lettered; and
// catga.consumer.lag by group, message and state (pending, unacked) for a
// transport that reports it.

const instrumentation = "github.com/catga-go/catga/cqrs"

var propagator = propagation.TraceContext{}

// envCarrier reads and writes the trace context of an envelope.
type envCarrier struct{ env *transport.Envelope }

func (c envCarrier) Get(key string) string {
	switch key {
	case transport.HeaderTraceParent:
		return c.env.TraceParent
	case transport.HeaderTraceState:
		return c.env.TraceState
	}
	return ""
}

func (c envCarrier) Set(key, value string) {
	switch key {
	case transport.HeaderTraceParent:
		c.env.TraceParent = value
	case transport.HeaderTraceState:
		c.env.TraceState = value
	}
}

func (c envCarrier) Keys() []string {
	return []string{transport.HeaderTraceParent, transport.HeaderTraceState}
}

// telemetry is the bus's tracer and instruments.
type telemetry struct {
	tracer       trace.Tracer
	system       string
	handled      metric.Int64Counter
	duration     metric.Float64Histogram
	inFlight     metric.Int64UpDownCounter
	redelivered  metric.Int64Counter
	deadLettered metric.Int64Counter
	lag          metric.Int64ObservableGauge
	lagReg       metric.Registration
	metrics      bool
}

func newTelemetry(b *Bus, tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil && mp == nil {
		return nil, nil
	}
	t := &telemetry{system: "catga"}
	if s, ok := b.transport.(interface{ System() string }); ok {
		t.system = s.System()
	}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentation)
	}
	if mp == nil {
		return t, nil
	}
	m := mp.Meter(instrumentation)
	var err error
	if t.handled, err = m.Int64Counter("catga.messages.handled", metric.WithDescription("Messages handled, by outcome"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if t.duration, err = m.Float64Histogram("catga.handler.duration", metric.WithDescription("Step duration"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	if t.inFlight, err = m.Int64UpDownCounter("catga.messages.in_flight", metric.WithDescription("Handlers running now"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if t.redelivered, err = m.Int64Counter("catga.messages.redelivered", metric.WithDescription("Deliveries handed back to the broker for redelivery"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if t.deadLettered, err = m.Int64Counter("catga.messages.dead_lettered", metric.WithDescription("Messages moved to the dead-letter queue"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	t.metrics = true
	if lr, ok := b.transport.(transport.LagReporter); ok {
		if t.lag, err = m.Int64ObservableGauge("catga.consumer.lag", metric.WithDescription("Messages a consumer group has not handled yet"), metric.WithUnit("{message}")); err != nil {
			return nil, err
		}
		t.lagReg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			lags, err := lr.Lag(ctx)
			if err != nil {
				return nil // a scrape during an outage shows no lag, not an error page
			}
			for _, l := range lags {
				name := l.Topic.Name
				if name == "" {
					name = "*" // one consumer for every topic of the kind
				}
				base := []attribute.KeyValue{attribute.String("group", l.Group), attribute.String("message", name), attribute.String("kind", l.Topic.Kind.String())}
				o.ObserveInt64(t.lag, l.Pending, metric.WithAttributes(append(base, attribute.String("state", "pending"))...))
				o.ObserveInt64(t.lag, l.Unacked, metric.WithAttributes(append(base, attribute.String("state", "unacked"))...))
			}
			return nil
		}, t.lag)
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// routeTelemetry is what a route precomputes, so a measurement allocates
// nothing and looks nothing up.
type routeTelemetry struct {
	spanHandle, spanProcess, spanPublish, spanSend string
	attrs                                          []attribute.KeyValue
	group                                          attribute.KeyValue // on the spans of a consumer only
	ok, failed                                     []metric.AddOption
	record                                         []metric.RecordOption
	plain                                          []metric.AddOption
}

func (t *telemetry) forRoute(service string, topic transport.Topic) *routeTelemetry {
	if t == nil {
		return nil
	}
	base := []attribute.KeyValue{attribute.String("message", topic.Name), attribute.String("kind", topic.Kind.String()), attribute.String("service", service)}
	withOutcome := func(o string) attribute.Set {
		return attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), attribute.String("outcome", o))...)
	}
	set := attribute.NewSet(base...)
	return &routeTelemetry{
		spanHandle: "handle " + topic.Name, spanProcess: "process " + topic.Name,
		spanPublish: "publish " + topic.Name, spanSend: "send " + topic.Name,
		attrs: []attribute.KeyValue{
			attribute.String("messaging.system", t.system),
			attribute.String("messaging.destination.name", topic.Name),
			attribute.String("catga.message.kind", topic.Kind.String()),
		},
		group:  attribute.String("messaging.consumer.group.name", service),
		ok:     []metric.AddOption{metric.WithAttributeSet(withOutcome("ok"))},
		failed: []metric.AddOption{metric.WithAttributeSet(withOutcome("error"))},
		record: []metric.RecordOption{metric.WithAttributeSet(set)},
		plain:  []metric.AddOption{metric.WithAttributeSet(set)},
	}
}

// spanAttrs returns a span's attributes for env and operation: op is
// messaging.operation.name, typ its messaging.operation.type (semconv's
// send, process); the consumer group is named on the spans that consume.
func (rt *routeTelemetry) spanAttrs(env *transport.Envelope, op, typ string) trace.SpanStartOption {
	attrs := append(append(make([]attribute.KeyValue, 0, len(rt.attrs)+5), rt.attrs...),
		attribute.String("messaging.operation.name", op), attribute.String("messaging.operation.type", typ))
	if typ == "process" {
		attrs = append(attrs, rt.group)
	}
	if env != nil {
		attrs = append(attrs, attribute.String("messaging.message.id", env.ID), attribute.String("messaging.message.conversation_id", env.CorrelationID))
	}
	return trace.WithAttributes(attrs...)
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, string(CodeOf(err)))
	}
	span.End()
}

// telemetryBehavior traces and measures each run of a handler: the
// outermost step of every pipeline when telemetry is on. A delivered
// message gets a consumer (or, answering a request, a server) span whose
// parent is the sender's, read from the envelope.
func (b *Bus) telemetryBehavior(next Step) Step {
	t := b.tel
	return StepFunc(func(ctx context.Context, m Message) error {
		mt := m.routeMeta()
		rt := mt.tel
		var span trace.Span
		if t.tracer != nil {
			if m.Delivered() {
				env := m.Envelope()
				parent := propagator.Extract(ctx, envCarrier{env})
				kind := trace.SpanKindConsumer
				if m.served() {
					kind = trace.SpanKindServer
				}
				ctx, span = t.tracer.Start(parent, rt.spanProcess, trace.WithSpanKind(kind), rt.spanAttrs(env, "process", "process"))
			} else {
				ctx, span = t.tracer.Start(ctx, rt.spanHandle, trace.WithSpanKind(trace.SpanKindInternal), rt.spanAttrs(nil, "handle", "process"))
			}
		}
		var start time.Time
		if t.metrics {
			start = time.Now()
			t.inFlight.Add(ctx, 1, rt.plain...)
		}
		err := next.Handle(ctx, m)
		if t.metrics {
			t.inFlight.Add(ctx, -1, rt.plain...)
			t.duration.Record(ctx, time.Since(start).Seconds(), rt.record...)
			if err != nil {
				t.handled.Add(ctx, 1, rt.failed...)
			} else {
				t.handled.Add(ctx, 1, rt.ok...)
			}
		}
		if span != nil {
			endSpan(span, err)
		}
		return err
	})
}

// startSend starts the span of sending a message (producer, or client for
// a request) when tracing is on; the envelope stamped in the returned
// context carries it.
func (b *Bus) startSend(ctx context.Context, t transport.Topic, request bool) (context.Context, trace.Span) {
	if b.tel == nil || b.tel.tracer == nil {
		return ctx, nil
	}
	rt := b.tel.forRoute(b.service, t)
	name, kind, op := rt.spanPublish, trace.SpanKindProducer, "publish"
	if request {
		name, kind, op = rt.spanSend, trace.SpanKindClient, "send"
	}
	return b.tel.tracer.Start(ctx, name, trace.WithSpanKind(kind), rt.spanAttrs(nil, op, "send"))
}

func (b *Bus) count(c metric.Int64Counter, t transport.Topic) {
	if b.tel == nil || !b.tel.metrics {
		return
	}
	c.Add(context.Background(), 1, b.tel.forTopic(b.service, t)...)
}

// forTopic is the plain attribute option of a topic, for the settle counters.
func (t *telemetry) forTopic(service string, topic transport.Topic) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributes(attribute.String("message", topic.Name), attribute.String("kind", topic.Kind.String()), attribute.String("service", service))}
}

// traceIDs returns the trace and span ids of ctx's span, for log lines.
func traceIDs(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// traceIDsOf returns the trace id of an envelope's traceparent, and its
// parent span id, when ctx carries no span.
func traceIDsOf(ctx context.Context, env *transport.Envelope) (string, string) {
	if tid, sid := traceIDs(ctx); tid != "" {
		return tid, sid
	}
	sc := trace.SpanContextFromContext(propagator.Extract(context.Background(), envCarrier{env}))
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}
