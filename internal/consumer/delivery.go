package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// ErrSettled is a second settle of one delivery (wrapped with the
// transport's name).
var ErrSettled = errors.New("delivery already settled")

// Delivery is one message handed to a handler: transport.Delivery, settled once,
// through the Broker.
type Delivery[M any] struct {
	r       *Runtime[M]
	msg     M
	env     *transport.Envelope
	settled atomic.Bool
}

// Envelope implements transport.Delivery.
func (d *Delivery[M]) Envelope() *transport.Envelope { return d.env }

// Ack implements transport.Delivery.
func (d *Delivery[M]) Ack(ctx context.Context) error {
	if !d.settle() {
		return d.r.errSettled
	}
	return d.r.opt.Broker.Ack(ctx, d.msg)
}

// Nak implements transport.Delivery.
func (d *Delivery[M]) Nak(ctx context.Context, delay time.Duration) error {
	if !d.settle() {
		return d.r.errSettled
	}
	return d.r.opt.Broker.Nak(ctx, d.msg, delay)
}

// DeadLetter implements transport.Delivery.
func (d *Delivery[M]) DeadLetter(ctx context.Context, dl *transport.DeadLetter) error {
	if !d.settle() {
		return d.r.errSettled
	}
	return d.r.opt.Broker.DeadLetter(ctx, d.msg, dl)
}

// settle reports whether this is the delivery's first settle.
func (d *Delivery[M]) settle() bool { return d.settled.CompareAndSwap(false, true) }

// Deliver runs h on m, whose envelope env was read with err. A message whose
// headers no handler can trust (err) is dead-lettered as it is. One the
// handler leaves unsettled is given back at once (Nak without delay), as the
// broker would after its lease, only sooner. While h runs, m's lease is
// extended.
func (r *Runtime[M]) Deliver(h transport.DeliveryHandler, m M, env *transport.Envelope, err error) {
	d := &Delivery[M]{r: r, msg: m, env: env}
	if err != nil {
		_ = d.DeadLetter(context.Background(), &transport.DeadLetter{Envelope: *env, Error: err.Error(), Code: string(cqrs.CodeInvalid),
			Attempts: env.Attempt, Service: r.opt.Group, Instance: r.opt.Instance, Time: time.Now()})
		return
	}
	r.track(d, true)
	defer r.track(d, false)
	h.HandleDelivery(r.h.Context(), d)
	if d.settle() {
		_ = r.opt.Broker.Nak(context.Background(), m, 0)
	}
}

// Routes is a subscription's handlers by topic.
type Routes map[transport.Topic]transport.DeliveryHandler

// Replay returns the handler of a message replayed from the dead letters to
// the group, by its topic. A topic the group does not subscribe to (any
// more) gets one that dead-letters the message again, saying so, rather
// than dropping it.
func (r *Runtime[M]) Replay(routes Routes, topic transport.Topic) transport.DeliveryHandler {
	if h, ok := routes[topic]; ok {
		return h
	}
	return transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
		_ = d.DeadLetter(ctx, &transport.DeadLetter{Envelope: *d.Envelope(),
			Error: fmt.Sprintf("%s: replay of %s: group %s does not subscribe to it", r.opt.Name, topic, r.opt.Group),
			Code:  string(cqrs.CodeInvalid), Attempts: d.Envelope().Attempt, Service: r.opt.Group, Time: time.Now()})
	})
}
