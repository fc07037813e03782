package cqrs

import (
	"context"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/lazyctx"
)

// Step is one step of the pipeline every dispatch and delivery runs
// through. The last step calls the typed handler.
type Step interface {
	Handle(ctx context.Context, m Message) error
}

// StepFunc adapts a function to a Step.
type StepFunc func(ctx context.Context, m Message) error

// Handle calls f.
func (f StepFunc) Handle(ctx context.Context, m Message) error { return f(ctx, m) }

// Behavior wraps a Step, on the model of HTTP middleware. A behavior
// passes on the Message it was given (it may not substitute its own).
type Behavior func(next Step) Step

// chain wraps h in behaviors, the first outermost. No behaviors, no chain.
func chain(h Step, behaviors []Behavior) Step {
	for i := len(behaviors) - 1; i >= 0; i-- {
		h = behaviors[i](h)
	}
	return h
}

// Message is what behaviors see of the message in flight.
type Message interface {
	// ID is the message id; a local dispatch gets one on first use.
	ID() string
	Topic() transport.Topic
	// HandlerName names the handler this run is for (one event may have several).
	HandlerName() string
	// Envelope returns the headers (and, for a delivery, the payload).
	Envelope() *transport.Envelope
	// Body returns the message value.
	Body() any
	// Delivered reports whether the message came through a transport.
	Delivered() bool

	validate() error
	routeMeta() *meta
	served() bool
	bind(at time.Time) bool // DefaultDelivery's Timeout's bound on the call itself
	end()                   // ends the bound call: it is done from then on
	detach(ctx context.Context) context.Context
}

// MessageFrom returns the message whose handler is running in ctx.
func MessageFrom(ctx context.Context) (Message, bool) {
	m, ok := ctx.Value(messageKey).(Message)
	return m, ok
}

// EnvelopeFrom returns the envelope of the message whose handler is running
// in ctx: its id, name, time, attempt and headers. Without one (a handler
// called directly, as in a unit test) it is an empty envelope, never nil,
// so a handler may read it unchecked.
func EnvelopeFrom(ctx context.Context) *transport.Envelope {
	if m, ok := MessageFrom(ctx); ok && m != nil {
		if env := m.Envelope(); env != nil {
			return env
		}
	}
	return &transport.Envelope{}
}

type ctxKey struct{}

var messageKey any = ctxKey{}

// meta is what a call needs to know about its route.
type meta struct {
	topic     transport.Topic
	handler   string
	validates bool
	ownInbox  bool // the handler marks its inbox in its own transaction (OwnInbox)
	bus       *Bus
	tel       *routeTelemetry // nil with telemetry off
}

// call is one message in flight through the pipeline. It is also the
// handler's context (it embeds its parent, and the deadline a Timeout
// behavior puts on it, its timer made lazily), which puts the message in
// the context without another allocation.
type call[M, R any] struct {
	lazyctx.Ctx
	meta      *meta
	env       transport.Envelope
	filled    bool
	delivered bool
	answering bool // a request from another process
	body      M
	res       R
}

func newCall[M, R any](ctx context.Context, m *meta, body M) *call[M, R] {
	return &call[M, R]{Ctx: lazyctx.Ctx{Parent: ctx}, meta: m, body: body}
}

// Value answers the message itself for messageKey, the other keys as its
// context does.
func (c *call[M, R]) Value(key any) any {
	if key == messageKey {
		return c
	}
	return c.Ctx.Value(key)
}

func (c *call[M, R]) bind(at time.Time) bool { return c.Bound.Set(at) }
func (c *call[M, R]) end()                   { c.Bound.Cancel() }

// detach is ctx without its cancellation: without an allocation when ctx
// is the call itself.
func (c *call[M, R]) detach(ctx context.Context) context.Context {
	if any(ctx) == any(c) {
		return detached[M, R]{c}
	}
	return context.WithoutCancel(ctx)
}

func (c *call[M, R]) ID() string             { return c.Envelope().ID }
func (c *call[M, R]) Topic() transport.Topic { return c.meta.topic }
func (c *call[M, R]) HandlerName() string    { return c.meta.handler }
func (c *call[M, R]) Body() any              { return c.body }
func (c *call[M, R]) Delivered() bool        { return c.delivered }

// Envelope fills the headers of a local dispatch on first use, so a
// dispatch that nobody asks about pays for no id.
func (c *call[M, R]) Envelope() *transport.Envelope {
	if !c.filled {
		c.filled = true
		c.meta.bus.stamp(c.Parent, &c.env, c.meta.topic)
	}
	return &c.env
}

func (c *call[M, R]) routeMeta() *meta { return c.meta }
func (c *call[M, R]) served() bool     { return c.answering }

func (c *call[M, R]) validate() error {
	if !c.meta.validates {
		return nil
	}
	return any(&c.body).(Validator).Validate()
}
