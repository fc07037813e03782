package cqrs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"

	"github.com/catga-go/catga/cqrs/transport"
)

// Registration is one handler, ready to be given to New. Build it with
// HandleCommand, HandleQuery or HandleEvent, or through the fx helpers
// Command, Query and Event.
type Registration interface {
	register(r *registry) error
}

// HandlerOption tunes one registration.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	name     string
	ownInbox bool
}

// OwnInbox says the handler keeps its inbox mark in its own transaction
// (pgmod.DB.Tx or redismod.Outbox.Tx mark the message handled in the
// transaction that holds the handler's state and outgoing messages). The
// claim-based Idempotency behavior then lets its deliveries through: a
// redelivery after a crash runs at once, with no lease to wait out, and the
// transaction's inbox skips it if the first run committed.
func OwnInbox() HandlerOption { return func(o *handlerOptions) { o.ownInbox = true } }

func optionsOf(opts []HandlerOption) handlerOptions {
	var o handlerOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// HandlerName names a handler in logs, dead letters and idempotency keys.
// The default is its Go type (or function) name, which changes when the code
// is renamed; set a name to keep the keys of an idempotency store valid.
func HandlerName(name string) HandlerOption { return func(o *handlerOptions) { o.name = name } }

func handlerNameOf(h any, opts []HandlerOption) string {
	if o := optionsOf(opts); o.name != "" {
		return o.name
	}
	v := reflect.ValueOf(h)
	if v.Kind() == reflect.Func {
		if f := runtime.FuncForPC(v.Pointer()); f != nil {
			return f.Name()
		}
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", h), "*")
}

// HandleCommand registers h as the handler of command C.
func HandleCommand[C, R any](h CommandHandler[C, R], opts ...HandlerOption) Registration {
	return requestReg[C, R]{kind: transport.KindCommand, h: h, name: handlerNameOf(h, opts), ownInbox: optionsOf(opts).ownInbox}
}

// HandleQuery registers h as the handler of query Q.
func HandleQuery[Q, R any](h QueryHandler[Q, R], opts ...HandlerOption) Registration {
	return requestReg[Q, R]{kind: transport.KindQuery, h: h, name: handlerNameOf(h, opts), ownInbox: optionsOf(opts).ownInbox}
}

// HandleEvent registers h as one handler of event E; an event may have many.
func HandleEvent[E any](h EventHandler[E], opts ...HandlerOption) Registration {
	return eventReg[E]{h: h, name: handlerNameOf(h, opts), ownInbox: optionsOf(opts).ownInbox}
}

// route is what the registry keeps per message type.
type route interface {
	topic() transport.Topic
	goType() reflect.Type
}

// registry maps message types to routes. It is written only before the bus
// starts and read without locks after.
type registry struct {
	bus    *Bus
	routes map[typeKey]route // by Go type: the dispatch hot path
	byName map[string]route  // by wire name: startup and errors only
}

func newRegistry(b *Bus) *registry {
	return &registry{bus: b, routes: map[typeKey]route{}, byName: map[string]route{}}
}

// register adds regs, all or none.
func (r *registry) register(regs []Registration) error {
	var errs []error
	trial := &registry{bus: r.bus, routes: maps.Clone(r.routes), byName: maps.Clone(r.byName)}
	for _, reg := range regs {
		if reg == nil {
			errs = append(errs, errors.New("cqrs: nil registration"))
			continue
		}
		if err := reg.register(trial); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.routes, r.byName = trial.routes, trial.byName
	return nil
}

// subscriptions returns the topics to consume (events handled, commands
// owned) and the endpoints to serve (commands and queries owned), by name.
func (r *registry) subscriptions() (durable []transport.TopicHandler, endpoints []transport.Endpoint) {
	names := make([]string, 0, len(r.byName))
	for name := range r.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rt := r.byName[name]
		if th, ok := rt.(interface{ topicHandler() transport.TopicHandler }); ok {
			if h := th.topicHandler(); h.Handler != nil {
				durable = append(durable, h)
			}
		}
		if ep, ok := rt.(interface{ endpoint() transport.Endpoint }); ok {
			endpoints = append(endpoints, ep.endpoint())
		}
	}
	return durable, endpoints
}

// claim reserves the wire name of type t for a route, or explains the clash.
func (r *registry) claim(key typeKey, t reflect.Type, kind transport.Kind, name string) (route, error) {
	if rt, ok := r.routes[key]; ok {
		if rt.topic().Kind != kind {
			return nil, fmt.Errorf("cqrs: %v is registered as a %s and as a %s; a type has one kind", t, rt.topic().Kind, kind)
		}
		return rt, nil
	}
	if rt, ok := r.byName[name]; ok {
		return nil, fmt.Errorf("cqrs: wire name %q is claimed by two Go types: %v and %v; give one a MessageName method", name, rt.goType(), t)
	}
	return nil, nil
}

func (r *registry) add(key typeKey, rt route) {
	r.routes[key] = rt
	r.byName[rt.topic().Name] = rt
}

type requestReg[C, R any] struct {
	kind     transport.Kind
	h        CommandHandler[C, R]
	name     string
	ownInbox bool
}

func (g requestReg[C, R]) register(r *registry) error {
	t := reflect.TypeFor[C]()
	if g.h == nil {
		return fmt.Errorf("cqrs: nil handler for %s %v", g.kind, t)
	}
	name, err := nameOfType(t)
	if err != nil {
		return err
	}
	key := keyFor[C]()
	existing, err := r.claim(key, t, g.kind, name)
	if err != nil {
		return err
	}
	if existing != nil {
		return fmt.Errorf("cqrs: %s %s has two handlers: %s and %s", g.kind, name, existing.(interface{ handlerName() string }).handlerName(), g.name)
	}
	_, validates := any((*C)(nil)).(Validator)
	rt := &requestRoute[C, R]{
		meta: meta{topic: transport.Topic{Kind: g.kind, Name: name}, handler: g.name, validates: validates, ownInbox: g.ownInbox, bus: r.bus,
			tel: r.bus.tel.forRoute(r.bus.service, transport.Topic{Kind: g.kind, Name: name})},
		handler: g.h,
		typ:     t,
	}
	rt.dispatch, rt.deliver = r.bus.pipelines(StepFunc(rt.terminal))
	r.add(key, rt)
	return nil
}

type eventReg[E any] struct {
	h        EventHandler[E]
	name     string
	ownInbox bool
}

func (g eventReg[E]) register(r *registry) error {
	t := reflect.TypeFor[E]()
	if g.h == nil {
		return fmt.Errorf("cqrs: nil handler for event %v", t)
	}
	name, err := nameOfType(t)
	if err != nil {
		return err
	}
	key := keyFor[E]()
	existing, err := r.claim(key, t, transport.KindEvent, name)
	if err != nil {
		return err
	}
	old, _ := existing.(*eventRoute[E])
	rt := &eventRoute[E]{t: transport.Topic{Kind: transport.KindEvent, Name: name}, typ: t, bus: r.bus}
	if old != nil { // copy: the registry being replaced may still be read
		rt.handlers = append(rt.handlers, old.handlers...)
	}
	r.add(key, rt)
	_, validates := any((*E)(nil)).(Validator)
	for _, h := range rt.handlers {
		if h.meta.handler == g.name {
			return fmt.Errorf("cqrs: event %s has two handlers named %s; name one with HandlerName", name, g.name)
		}
	}
	eh := &eventHandler[E]{
		meta: meta{topic: rt.t, handler: g.name, validates: validates, ownInbox: g.ownInbox, bus: r.bus, tel: r.bus.tel.forRoute(r.bus.service, rt.t)},
		h:    g.h,
	}
	eh.dispatch, eh.deliver = r.bus.pipelines(StepFunc(eh.terminal))
	rt.handlers = append(rt.handlers, eh)
	return nil
}

// requestRoute serves one command or query type.
type requestRoute[C, R any] struct {
	meta     meta
	handler  CommandHandler[C, R]
	typ      reflect.Type
	dispatch Step // nil when there are no behaviors: the handler is called directly
	deliver  Step
}

func (rt *requestRoute[C, R]) topic() transport.Topic { return rt.meta.topic }
func (rt *requestRoute[C, R]) goType() reflect.Type   { return rt.typ }
func (rt *requestRoute[C, R]) handlerName() string    { return rt.meta.handler }

func (rt *requestRoute[C, R]) terminal(ctx context.Context, m Message) error {
	c, ok := m.(*call[C, R])
	if !ok {
		return Errorf(CodeInternal, "cqrs: a behavior replaced the message of %s with %T", rt.meta.topic, m)
	}
	res, err := rt.handler.Handle(ctx, c.body)
	c.res = res
	return err
}

// run dispatches cmd through the behaviors, in process.
func (rt *requestRoute[C, R]) run(ctx context.Context, cmd C) (R, error) {
	if rt.dispatch == nil {
		return rt.handler.Handle(ctx, cmd)
	}
	c := newCall[C, R](ctx, &rt.meta, cmd)
	err := rt.dispatch.Handle(c, c)
	return c.res, err
}

func (rt *requestRoute[C, R]) endpoint() transport.Endpoint {
	return transport.Endpoint{Topic: rt.meta.topic, Handler: transport.RequestHandlerFunc(rt.serve)}
}

// serve answers a request from another process. A request whose caller's
// deadline (carried in the envelope by the transport, the context's
// deadline here) has passed is answered with that and never started: its
// caller has given up, and the command must not happen behind its back.
func (rt *requestRoute[C, R]) serve(ctx context.Context, env *transport.Envelope) *transport.Reply {
	b := rt.meta.bus
	if err := ctx.Err(); err != nil {
		return replyError(fmt.Errorf("cqrs: %s %s not started: the caller's deadline has passed: %w", rt.meta.topic, env.ID, err))
	}
	var cmd C
	if env.Name != rt.meta.topic.Name {
		return replyError(Errorf(CodeInvalid, "cqrs: %s endpoint got a %q", rt.meta.topic, env.Name))
	}
	if err := b.decode(env, &cmd); err != nil {
		return replyError(Errorf(CodeInvalid, "%w", err))
	}
	c := newCall[C, R](ctx, &rt.meta, cmd)
	c.env, c.filled, c.delivered, c.answering = *env, true, true, true
	h := rt.dispatch
	if h == nil {
		h = StepFunc(rt.terminal)
	}
	if err := h.Handle(c, c); err != nil {
		return replyError(err)
	}
	p, err := b.encode(transport.Topic{Kind: rt.meta.topic.Kind, Name: rt.meta.topic.Name}, c.res)
	if err != nil {
		return replyError(err)
	}
	return &transport.Reply{ContentType: b.codec.ContentType(), Payload: p}
}

// Commands are also durable work: Dispatch puts them on a queue the owning
// service consumes. Queries are not.
func (rt *requestRoute[C, R]) topicHandler() transport.TopicHandler {
	if rt.meta.topic.Kind != transport.KindCommand {
		return transport.TopicHandler{}
	}
	return transport.TopicHandler{Topic: rt.meta.topic, Handler: transport.DeliveryHandlerFunc(rt.consume)}
}

func (rt *requestRoute[C, R]) consume(ctx context.Context, d transport.Delivery) {
	b := rt.meta.bus
	env := d.Envelope()
	var zero C
	c := newCall[C, R](ctx, &rt.meta, zero)
	if err := b.admit(rt.meta.topic, env, &c.body); err != nil { // decoded in place: no value of its own to allocate
		b.settle(ctx, nil, d, rt.meta.topic, err)
		return
	}
	c.env, c.filled, c.delivered = *env, true, true
	err := b.guard(func() error { return rt.deliver.Handle(c, c) })
	b.settle(ctx, detached[C, R]{c}, d, rt.meta.topic, err)
}

// eventRoute fans one event type out to its handlers.
type eventRoute[E any] struct {
	t        transport.Topic
	typ      reflect.Type
	bus      *Bus
	handlers []*eventHandler[E]
}

type eventHandler[E any] struct {
	meta     meta
	h        EventHandler[E]
	dispatch Step
	deliver  Step
}

func (rt *eventRoute[E]) topic() transport.Topic { return rt.t }
func (rt *eventRoute[E]) goType() reflect.Type   { return rt.typ }

func (eh *eventHandler[E]) terminal(ctx context.Context, m Message) error {
	c, ok := m.(*call[E, struct{}])
	if !ok {
		return Errorf(CodeInternal, "cqrs: a behavior replaced the message of %s with %T", eh.meta.topic, m)
	}
	return eh.h.Handle(ctx, c.body)
}

// publish runs every handler in process, synchronously; it returns their
// errors joined.
func (rt *eventRoute[E]) publish(ctx context.Context, event any) error {
	e := event.(E)
	var errs []error
	for _, eh := range rt.handlers {
		var err error
		if eh.dispatch == nil {
			err = eh.h.Handle(ctx, e)
		} else {
			c := newCall[E, struct{}](ctx, &eh.meta, e)
			err = eh.dispatch.Handle(c, c)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (rt *eventRoute[E]) topicHandler() transport.TopicHandler {
	return transport.TopicHandler{Topic: rt.t, Handler: transport.DeliveryHandlerFunc(rt.consume)}
}

func (rt *eventRoute[E]) consume(ctx context.Context, d transport.Delivery) {
	b := rt.bus
	env := d.Envelope()
	if len(rt.handlers) == 0 {
		b.settle(ctx, nil, d, rt.t, b.admit(rt.t, env, new(E)))
		return
	}
	// Decoded in place into the first handler's call: no value of its own to
	// allocate. The others get a copy of it as decoded.
	var zero E
	first := newCall[E, struct{}](ctx, &rt.handlers[0].meta, zero)
	if err := b.admit(rt.t, env, &first.body); err != nil {
		b.settle(ctx, nil, d, rt.t, err)
		return
	}
	e := first.body
	var errs []error
	var sctx context.Context
	for i, eh := range rt.handlers {
		c := first
		if i > 0 {
			c = newCall[E, struct{}](ctx, &eh.meta, e)
		}
		c.env, c.filled, c.delivered = *env, true, true
		if err := b.guard(func() error { return eh.deliver.Handle(c, c) }); err != nil {
			if len(rt.handlers) > 1 { // say which one failed
				err = fmt.Errorf("%s: %w", eh.meta.handler, err)
			}
			errs = append(errs, err)
		}
		sctx = detached[E, struct{}]{c}
	}
	b.settle(ctx, sctx, d, rt.t, joinErrors(errs))
}

// joinErrors joins errs, keeping a lone error as it is so its code and
// permanence read through unchanged.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
