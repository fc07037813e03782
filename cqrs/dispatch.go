package cqrs

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/catga-go/catga/cqrs/transport"
)

// Send sends command cmd and returns its handler's result as an R. The
// handler runs in process when it is registered on b, otherwise in the
// service that owns it, over the transport. With neither, Send fails with
// ErrNoHandler. An R other than the handler's result type is an error naming
// both types.
func Send[R, C any](ctx context.Context, b *Bus, cmd C) (R, error) {
	if rt, ok := b.reg.routes[keyFor[C]()].(*requestRoute[C, R]); ok && rt.meta.topic.Kind == transport.KindCommand {
		return rt.run(ctx, cmd)
	}
	return request[R](ctx, b, transport.KindCommand, cmd)
}

// Ask sends query q and returns its handler's result as an R, as Send does.
func Ask[R, Q any](ctx context.Context, b *Bus, q Q) (R, error) {
	if rt, ok := b.reg.routes[keyFor[Q]()].(*requestRoute[Q, R]); ok && rt.meta.topic.Kind == transport.KindQuery {
		return rt.run(ctx, q)
	}
	return request[R](ctx, b, transport.KindQuery, q)
}

// request is the path of a request not answered by a matching local route:
// a mismatch to explain, or a remote call.
func request[R, C any](ctx context.Context, b *Bus, kind transport.Kind, msg C) (R, error) {
	var zero R
	key := keyFor[C]()
	if key == 0 { // C is an interface type: look at the value inside
		key = keyOf(msg)
	}
	if rt, ok := b.reg.routes[key]; ok {
		if k := rt.topic().Kind; k != kind {
			verb := map[transport.Kind]string{transport.KindCommand: "Send", transport.KindQuery: "Ask", transport.KindEvent: "Publish"}[k]
			return zero, fmt.Errorf("cqrs: %v is a %s, not a %s: use %s", rt.goType(), k, kind, verb)
		}
		if rr, ok := rt.(interface{ resultType() reflect.Type }); ok {
			return zero, fmt.Errorf("%w: %s %v returns %v, not %v", ErrResultType, kind, rt.goType(), rr.resultType(), reflect.TypeFor[R]())
		}
		return zero, fmt.Errorf("%w: %s %v", ErrResultType, kind, rt.goType())
	}
	name, err := b.nameOf(key, msg)
	if err != nil {
		return zero, err
	}
	t := transport.Topic{Kind: kind, Name: name}
	if b.transport == nil {
		return zero, fmt.Errorf("%w for %s", ErrNoHandler, t)
	}
	payload, err := b.encode(t, msg)
	if err != nil {
		return zero, err
	}
	env := &transport.Envelope{Payload: payload}
	ctx, span := b.startSend(ctx, t, true)
	b.stamp(ctx, env, t)
	rep, err := b.transport.Request(ctx, t, env)
	if err == nil && rep.Err != nil {
		err = &Error{Code: ParseCode(rep.Err.Code), Message: rep.Err.Message}
	}
	if span != nil {
		endSpan(span, err)
	}
	if err != nil {
		return zero, err
	}
	var res R
	c, err := b.codecFor(rep.ContentType)
	if err == nil {
		err = c.Unmarshal(rep.Payload, &res)
	}
	if err != nil {
		return zero, fmt.Errorf("%w: decode %s reply as %v: %v", ErrResultType, t, reflect.TypeFor[R](), err)
	}
	return res, nil
}

func (rt *requestRoute[C, R]) resultType() reflect.Type { return reflect.TypeFor[R]() }

// Publish publishes event to every subscribing service. With a transport it
// returns once the broker has stored it; every subscribing service (this one
// too) gets it once. Without one, the handlers on b run now, in process, and
// their errors are returned.
//
// Inside a store's transaction (ctx from pgmod.DB.Tx or redismod's
// Outbox.Tx, see transport.WithOutbox) the event is written to the transaction's
// outbox instead, and published by its relay after commit.
//
// A failed Publish says what happened: an error wrapping ErrOutcomeUnknown
// (an ack lost) means the event may be stored: do not compensate; a retry
// of the same envelope is dropped by the broker's dedup window or the
// receivers' inbox. Any other error (ErrUnavailable: the broker was not
// reachable) means nothing was stored and nothing will be sent later: a
// caller may compensate.
func (b *Bus) Publish(ctx context.Context, event any) error {
	key := keyOf(event)
	if b.transport == nil {
		if rt, ok := b.reg.routes[key].(interface {
			publish(context.Context, any) error
		}); ok {
			return rt.publish(ctx, event)
		}
		if rt, ok := b.reg.routes[key]; ok {
			return fmt.Errorf("cqrs: %v is a %s, not an event", rt.goType(), rt.topic().Kind)
		}
		_, err := b.nameOf(key, event) // no subscriber is fine; a bad type is not
		return err
	}
	_, err := b.enqueue(ctx, transport.KindEvent, key, event, time.Time{})
	return err
}

// Dispatch sends command cmd as durable, asynchronous work: with a transport
// it returns once the broker has stored it, and one instance of the owning
// service handles it, at least once. Without one it runs the handler on b
// now and returns its error (ErrNoHandler when there is none).
func (b *Bus) Dispatch(ctx context.Context, cmd any) error {
	key := keyOf(cmd)
	if b.transport == nil {
		rt, ok := b.reg.routes[key].(interface {
			dispatchAny(context.Context, any) error
		})
		if !ok {
			name, err := b.nameOf(key, cmd)
			if err != nil {
				return err
			}
			return fmt.Errorf("%w for command %s", ErrNoHandler, name)
		}
		return rt.dispatchAny(ctx, cmd)
	}
	if rt, ok := b.reg.routes[key]; ok && rt.topic().Kind != transport.KindCommand {
		return fmt.Errorf("cqrs: %v is a %s, not a command", rt.goType(), rt.topic().Kind)
	}
	_, err := b.enqueue(ctx, transport.KindCommand, key, cmd, time.Time{})
	return err
}

func (rt *requestRoute[C, R]) dispatchAny(ctx context.Context, cmd any) error {
	if rt.meta.topic.Kind != transport.KindCommand {
		return fmt.Errorf("cqrs: %v is a %s, not a command", rt.typ, rt.meta.topic.Kind)
	}
	_, err := rt.run(ctx, cmd.(C))
	return err
}

// PublishBatch publishes events, in order, as Publish publishes one, but
// with a bounded window of broker acknowledgements pending at once instead
// of a round trip each (NATS: asynchronous publishes, NATS_PUBLISH_WINDOW;
// Redis: pipelines; the memory transport: one by one, which costs no round
// trip). errs[i] is the outcome of events[i], with Publish's meaning: nil
// stored; ErrOutcomeUnknown perhaps stored; anything else not stored (an
// event that cannot be encoded is refused alone, the others go on). Inside
// a transaction's outbox the events are written to it, as by Publish;
// without a transport each runs its handlers in process.
func (b *Bus) PublishBatch(ctx context.Context, events ...any) (errs []error) {
	errs = make([]error, len(events))
	if b.transport == nil {
		for i, e := range events {
			errs[i] = b.Publish(ctx, e)
		}
		return errs
	}
	msgs := make([]transport.Outgoing, 0, len(events))
	at := make([]int, 0, len(events)) // msgs[j] is events[at[j]]
	spans := make([]trace.Span, 0, len(events))
	for i, e := range events {
		key := keyOf(e)
		if rt, ok := b.reg.routes[key]; ok && rt.topic().Kind != transport.KindEvent {
			errs[i] = fmt.Errorf("cqrs: %v is a %s, not an event", rt.goType(), rt.topic().Kind)
			continue
		}
		t, env, err := b.outgoing(transport.KindEvent, key, e)
		if err != nil {
			errs[i] = err
			continue
		}
		sctx, span := b.startSend(ctx, t, false)
		b.stamp(sctx, env, t)
		msgs, at, spans = append(msgs, transport.Outgoing{Topic: t, Envelope: env}), append(at, i), append(spans, span)
	}
	out := make([]error, len(msgs))
	if o, ok := transport.OutboxFrom(ctx); ok {
		for j, m := range msgs {
			out[j] = o.Add(ctx, m.Topic, m.Envelope)
		}
	} else {
		transport.PublishBatch(ctx, b.transport, msgs, out)
	}
	for j, err := range out {
		errs[at[j]] = err
		if spans[j] != nil {
			endSpan(spans[j], err)
		}
	}
	return errs
}

// outgoing encodes v as a message of kind, not yet stamped.
func (b *Bus) outgoing(kind transport.Kind, key typeKey, v any) (transport.Topic, *transport.Envelope, error) {
	name, err := b.nameOf(key, v)
	if err != nil {
		return transport.Topic{}, nil, err
	}
	t := transport.Topic{Kind: kind, Name: name}
	payload, err := b.encode(t, v)
	if err != nil {
		return t, nil, err
	}
	env := envelopes.Get().(*transport.Envelope)
	env.Payload = payload
	return t, env, nil
}

// envelopes are the envelopes of outgoing messages, reused once a
// transport's Publish returns (it keeps nothing of them); an outbox's Add
// may keep its envelope, so that one is not put back.
var envelopes = sync.Pool{New: func() any { return new(transport.Envelope) }}

// enqueue encodes v and publishes it on the transport, or writes it to the
// outbox bound to ctx (transport.WithOutbox), to be delivered at at (now
// when zero). It returns the message's id.
func (b *Bus) enqueue(ctx context.Context, kind transport.Kind, key typeKey, v any, at time.Time) (string, error) {
	t, env, err := b.outgoing(kind, key, v)
	if err != nil {
		return "", err
	}
	ctx, span := b.startSend(ctx, t, false)
	b.stamp(ctx, env, t)
	env.DeliverAt = at
	id := env.ID
	if o, ok := transport.OutboxFrom(ctx); ok {
		err = o.Add(ctx, t, env) // published by the outbox's relay after commit
	} else {
		err = b.transport.Publish(ctx, t, env)
		*env = transport.Envelope{} // Publish kept nothing of it: reused
		envelopes.Put(env)
	}
	if span != nil {
		endSpan(span, err)
	}
	return id, err
}

// nameOf returns the wire name of the type with key, from the routes or, for
// a type this bus only sends, from a cache filled on first use.
func (b *Bus) nameOf(key typeKey, v any) (string, error) {
	if rt, ok := b.reg.routes[key]; ok {
		return rt.topic().Name, nil
	}
	if name, ok := b.names.Load(key); ok {
		return name.(string), nil
	}
	t := reflect.TypeOf(v)
	name, err := nameOfType(t)
	if err != nil {
		return "", err
	}
	if rt, ok := b.reg.byName[name]; ok {
		return "", fmt.Errorf("cqrs: wire name %q is claimed by two Go types: %v and %v; give one a MessageName method", name, rt.goType(), t)
	}
	b.names.Store(key, name)
	return name, nil
}

// Sender sends one command type, its route resolved once: the fastest way to
// send the same command many times. A Sender made before the handlers are
// registered (in a constructor fx runs before the bus's invoke) resolves
// the route at each Send until the bus starts, and then keeps it: a route
// looked up too early is never kept.
type Sender[C, R any] struct {
	senderRoute[C, R] // found by NewSender: fixed, read without a barrier
	bus               *Bus
	late              atomic.Pointer[senderRoute[C, R]] // found later; nil until final
}

// senderRoute is how a Sender sends: to the handler itself (no behavior
// wraps it), through the route's pipeline, or, with neither, over the
// transport.
type senderRoute[C, R any] struct {
	direct CommandHandler[C, R]
	rt     *requestRoute[C, R]
}

// NewSender makes a Sender of command C on b. A command handled elsewhere
// is sent over the transport, as Send does.
func NewSender[C, R any](b *Bus) *Sender[C, R] {
	s := &Sender[C, R]{bus: b}
	if r, final := s.lookup(); r.rt != nil {
		s.senderRoute = r
	} else if final {
		s.late.Store(&r)
	}
	return s
}

// lookup finds the route, and says whether the answer is final: a route,
// or none once the bus has started (its routes are fixed then).
func (s *Sender[C, R]) lookup() (r senderRoute[C, R], final bool) {
	sealed := s.bus.sealed.Load() // before the lookup: a route seen after Start is final
	rt, _ := s.bus.reg.routes[keyFor[C]()].(*requestRoute[C, R])
	if rt != nil && rt.meta.topic.Kind != transport.KindCommand {
		rt = nil
	}
	r.rt = rt
	if rt != nil && rt.dispatch == nil {
		r.direct = rt.handler
	}
	return r, sealed || rt != nil
}

// Send sends cmd, as [Send] does.
func (s *Sender[C, R]) Send(ctx context.Context, cmd C) (R, error) {
	if s.direct != nil {
		return s.direct.Handle(ctx, cmd)
	}
	if s.rt != nil {
		return s.rt.run(ctx, cmd)
	}
	return s.sendLate(ctx, cmd)
}

// sendLate sends for a Sender made before its route was known.
func (s *Sender[C, R]) sendLate(ctx context.Context, cmd C) (R, error) {
	r := s.late.Load()
	if r == nil {
		found, final := s.lookup()
		if final {
			s.late.Store(&found)
		}
		r = &found
	}
	if r.direct != nil {
		return r.direct.Handle(ctx, cmd)
	}
	if r.rt != nil {
		return r.rt.run(ctx, cmd)
	}
	return request[R](ctx, s.bus, transport.KindCommand, cmd)
}
