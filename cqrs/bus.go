package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/catga-go/catga/cqrs/transport"
)

// Defaults of Options and Config, read from Config's envDefault tags (see
// Config): 5 deliveries, 1 MiB, 32 handlers in flight, 30s per delivery.
var (
	defaultMaxDeliver     = defaults.MaxDeliver
	defaultMaxPayload     = defaults.MaxPayload
	defaultHandlerTimeout = defaults.HandlerTimeout
)

// Backoff is an exponential delay with jitter: attempt n waits
// Initial*Multiplier^(n-1), capped at Max, then varied by ±Jitter. It is
// the bus's one backoff: the broker's redelivery delay and Retry's waits.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64 // 0..1
}

// defaultRedelivery is the broker redelivery delay after a failed delivery:
// from 1s (CATGA_REDELIVERY_INITIAL), doubling, up to 1m
// (CATGA_REDELIVERY_MAX), ±20%.
var defaultRedelivery = Backoff{Initial: defaults.RedeliveryInitial, Max: defaults.RedeliveryMax, Multiplier: backoffMultiplier, Jitter: 0.2}

// backoffMultiplier is how every wait of the bus grows: it doubles.
const backoffMultiplier = 2

// Delay returns the wait before attempt+1, after attempt failed.
func (b Backoff) Delay(attempt int) time.Duration {
	if b.Initial <= 0 {
		return 0
	}
	m := b.Multiplier
	if m < 1 {
		m = 1
	}
	d := float64(b.Initial) * math.Pow(m, float64(max(attempt-1, 0)))
	if b.Max > 0 && d > float64(b.Max) {
		d = float64(b.Max)
	}
	if b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// Options configure a Bus. The zero value is the mediator alone: no
// transport, no behaviors, in-process and synchronous.
type Options struct {
	Service   string              // consumer group; required with a transport
	Instance  string              // this instance's id; required with a transport
	Transport transport.Transport // nil: dispatch in process only
	Codec     Codec               // encodes what this bus sends; default JSON
	Codecs    []Codec             // more content types this bus decodes
	Logger    *slog.Logger

	// Dispatch wraps Send, Ask and a transport-less Publish or Dispatch, and
	// the answering of remote requests. Delivery wraps messages from the
	// transport. See DefaultDispatch and DefaultDelivery.
	Dispatch []Behavior
	Delivery []Behavior

	MaxDeliver  int     // deliveries before a dead letter; default 5
	MaxPayload  int     // encoded bytes; default 1 MiB
	Redelivery  Backoff // delay of a broker redelivery; default from 1s, doubling, up to 1m, ±20%
	Concurrency int     // handlers in flight per subscription; default 32

	Handlers []Registration

	// TracerProvider and MeterProvider turn on tracing and metrics (see
	// telemetry.go); nil leaves them off, at no cost.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Bus is the mediator: it dispatches commands, queries and events to their
// handlers in process, or over its transport to the service that owns them.
// Routes are fixed by New; a Bus is safe for concurrent use.
type Bus struct {
	service, instance string
	transport         transport.Transport
	codec             Codec
	codecs            []Codec
	log               *slog.Logger
	maxDeliver        int
	maxPayload        int
	redelivery        Backoff
	concurrency       int

	dispatch []Behavior
	delivery []Behavior
	tel      *telemetry

	reg   *registry
	names sync.Map // typeKey -> string: wire names of types sent but not handled here

	mu      sync.Mutex
	running bool
	stopped bool
	subs    []transport.Closer
	sealed  atomic.Bool // set at Start: the routes are final, Register refuses
	// phase is what Check reads, without mu: Start holds mu while it
	// subscribes, which can take a while.
	phase atomic.Int32
}

// The phases of a bus, for Check.
const (
	phaseNew int32 = iota
	phaseStarting
	phaseRunning
	phaseStopped
)

// New builds a bus from o and the handlers registered in o.Handlers and regs.
// It fails if two handlers claim one command or query, if two Go types claim
// one wire name, or if a transport is set without a service and instance.
func New(o Options, regs ...Registration) (*Bus, error) {
	b := &Bus{
		service:     o.Service,
		instance:    o.Instance,
		transport:   o.Transport,
		codec:       o.Codec,
		log:         o.Logger,
		maxDeliver:  o.MaxDeliver,
		maxPayload:  o.MaxPayload,
		redelivery:  o.Redelivery,
		concurrency: o.Concurrency,
		dispatch:    o.Dispatch,
		delivery:    o.Delivery,
	}
	if b.codec == nil {
		b.codec = JSON
	}
	b.codecs = append([]Codec{b.codec}, o.Codecs...)
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.maxDeliver <= 0 {
		b.maxDeliver = defaultMaxDeliver
	}
	if b.maxPayload <= 0 {
		b.maxPayload = defaultMaxPayload
	}
	if b.redelivery == (Backoff{}) {
		b.redelivery = defaultRedelivery
	}
	if b.concurrency <= 0 {
		b.concurrency = transport.DefaultConcurrency
	}
	if b.transport != nil && (b.service == "" || b.instance == "") {
		return nil, fmt.Errorf("cqrs: a bus with a transport needs a service (got %q) and an instance (got %q)", b.service, b.instance)
	}
	tel, err := newTelemetry(b, o.TracerProvider, o.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("cqrs: telemetry: %w", err)
	}
	b.tel = tel
	b.reg = newRegistry(b)
	if err := b.reg.register(append(append([]Registration(nil), o.Handlers...), regs...)); err != nil {
		return nil, err
	}
	return b, nil
}

// Register adds handlers before the bus starts: all of regs, or none and an
// error. Routes are fixed once the bus starts, so dispatch reads them
// without locks; Register after Start fails.
func (b *Bus) Register(regs ...Registration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running || b.stopped {
		return errors.New("cqrs: Register after Start; register every handler before the bus starts")
	}
	return b.reg.register(regs)
}

// pipelines wraps a route's last step in the bus's behaviors. With no
// dispatch behaviors the dispatch pipeline is nil: the handler is called
// directly.
func (b *Bus) pipelines(term Step) (dispatch, deliver Step) {
	dispatchChain, deliveryChain := b.dispatch, b.delivery
	if b.tel != nil { // telemetry is outermost: it sees the whole run
		dispatchChain = append([]Behavior{b.telemetryBehavior}, dispatchChain...)
		deliveryChain = append([]Behavior{b.telemetryBehavior}, deliveryChain...)
	}
	if len(dispatchChain) > 0 {
		dispatch = chain(term, dispatchChain)
	}
	return dispatch, chain(term, deliveryChain)
}

// Service returns the bus's service name (its consumer group).
func (b *Bus) Service() string { return b.service }

// Instance returns the bus's instance id.
func (b *Bus) Instance() string { return b.instance }

// Transport returns the bus's transport, or nil.
func (b *Bus) Transport() transport.Transport { return b.transport }

// DeadLetters returns the transport's dead letters, or transport.ErrNoDeadLetters.
func (b *Bus) DeadLetters() (transport.DeadLetters, error) {
	if dl, ok := b.transport.(transport.DeadLetters); ok {
		return dl, nil
	}
	return nil, transport.ErrNoDeadLetters
}

// Start subscribes to the events this bus handles and serves the commands
// and queries it owns. Without a transport it does nothing.
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return ErrClosed
	}
	if b.running || b.transport == nil {
		b.running = true
		b.sealed.Store(true)
		b.phase.Store(phaseRunning)
		return nil
	}
	b.phase.Store(phaseStarting)
	defer func() {
		if !b.running { // Start failed: not started
			b.phase.Store(phaseNew)
		}
	}()
	topics, eps := b.reg.subscriptions()
	if len(topics) > 0 {
		s, err := b.transport.Subscribe(ctx, transport.Subscription{Group: b.service, Instance: b.instance, Concurrency: b.concurrency, Topics: topics})
		if err != nil {
			return fmt.Errorf("cqrs: subscribe %s: %w", b.service, err)
		}
		b.subs = append(b.subs, s)
	}
	if len(eps) > 0 {
		s, err := b.transport.Serve(ctx, transport.Responder{Group: b.service, Instance: b.instance, Concurrency: b.concurrency, Endpoints: eps})
		if err != nil {
			err = fmt.Errorf("cqrs: serve %s: %w", b.service, err)
			subs := b.subs
			b.subs = nil
			return errors.Join(err, closeAll(ctx, subs))
		}
		b.subs = append(b.subs, s)
	}
	b.running = true
	b.sealed.Store(true)
	b.phase.Store(phaseRunning)
	return nil
}

// Stop closes the subscriptions: it stops taking messages and waits for the
// handlers in flight until ctx ends.
func (b *Bus) Stop(ctx context.Context) error {
	b.mu.Lock()
	b.running = false
	b.stopped = true
	b.phase.Store(phaseStopped)
	b.sealed.Store(true)
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	if b.tel != nil && b.tel.lagReg != nil {
		_ = b.tel.lagReg.Unregister()
	}
	// Drain without the lock: Check must answer (not ready) meanwhile.
	return closeAll(ctx, subs)
}

func closeAll(ctx context.Context, subs []transport.Closer) error {
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close(ctx))
	}
	return errors.Join(errs...)
}

// Check is a readiness check: it fails unless the bus is started and not
// stopping.
// It answers at once, also while Start subscribes.
func (b *Bus) Check(context.Context) error {
	switch b.phase.Load() {
	case phaseStopped:
		return errors.New("cqrs: bus stopped")
	case phaseStarting:
		return errors.New("cqrs: bus starting: subscribing")
	case phaseNew:
		return errors.New("cqrs: bus not started")
	}
	return nil
}

// stamp fills the headers of a message this bus sends from ctx: a new id,
// and the correlation and causation of the message being handled, if any.
func (b *Bus) stamp(ctx context.Context, env *transport.Envelope, t transport.Topic) {
	env.ID = NewID()
	env.Name = t.Name
	env.Kind = t.Kind
	env.Source = b.service
	env.Instance = b.instance
	env.ContentType = b.codec.ContentType()
	env.Time = time.Now()
	if parent, ok := MessageFrom(ctx); ok {
		pe := parent.Envelope()
		env.CausationID = pe.ID
		env.CorrelationID = pe.CorrelationID
		env.TraceParent, env.TraceState = pe.TraceParent, pe.TraceState
	} else if id, ok := ctx.Value(correlationKey{}).(string); ok {
		env.CorrelationID = id
	}
	if b.tel != nil && b.tel.tracer != nil && trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, envCarrier{env}) // the current span is the parent over there
	}
	if env.CorrelationID == "" {
		env.CorrelationID = env.ID
	}
}

type correlationKey struct{}

// WithCorrelationID returns a context whose outgoing messages, when not sent
// from a handler, carry id as their correlation id (an HTTP request id, say).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// codecFor returns the codec of a content type; empty means this bus's own.
func (b *Bus) codecFor(contentType string) (Codec, error) {
	if contentType == "" {
		return b.codec, nil
	}
	for _, c := range b.codecs {
		if c.ContentType() == contentType {
			return c, nil
		}
	}
	return nil, fmt.Errorf("cqrs: no codec for content type %q", contentType)
}

// encode marshals v for topic t and enforces the payload limit.
func (b *Bus) encode(t transport.Topic, v any) ([]byte, error) {
	p, err := b.codec.Marshal(v)
	if err != nil {
		return nil, Errorf(CodeInvalid, "cqrs: encode %s: %w", t, err)
	}
	if limit := b.payloadLimit(); len(p) > limit {
		return nil, &PayloadTooLargeError{Name: t.Name, Size: len(p), Limit: limit}
	}
	return p, nil
}

// payloadLimit is the bus's limit, or the transport's when that is smaller.
func (b *Bus) payloadLimit() int {
	if pl, ok := b.transport.(transport.PayloadLimiter); ok {
		if m := pl.MaxPayload(); m > 0 && m < b.maxPayload {
			return m
		}
	}
	return b.maxPayload
}

// decode unmarshals env's payload into v.
func (b *Bus) decode(env *transport.Envelope, v any) error {
	c, err := b.codecFor(env.ContentType)
	if err != nil {
		return err
	}
	if err := c.Unmarshal(env.Payload, v); err != nil {
		return fmt.Errorf("cqrs: decode %s %s: %w", env.Kind, env.Name, err)
	}
	return nil
}
