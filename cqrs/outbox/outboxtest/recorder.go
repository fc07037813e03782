package outboxtest

import (
	"context"
	"errors"
	"sync"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Recorder is a transport that records what is published, in order, and
// can be told to fail. Only Publish works; the rest say so.
type Recorder struct {
	mu   sync.Mutex
	got  []transport.Outgoing
	fail func(transport.Outgoing) error // nil: store it
}

var (
	_ transport.Transport = (*Recorder)(nil)
	_ transport.Scheduler = (*Recorder)(nil)
)

// FailWith makes Publish call fn first: a nil result stores the message,
// cqrs.ErrOutcomeUnknown stores it and returns the error (a lost ack),
// anything else stores nothing.
func (r *Recorder) FailWith(fn func(transport.Outgoing) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = fn
}

// Publish implements transport.Transport.
func (r *Recorder) Publish(ctx context.Context, topic transport.Topic, env *transport.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := transport.Outgoing{Topic: topic, Envelope: env.Clone()}
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			if errors.Is(err, cqrs.ErrOutcomeUnknown) {
				r.got = append(r.got, m)
			}
			return err
		}
	}
	r.got = append(r.got, m)
	return nil
}

// Got returns what was stored, in order.
func (r *Recorder) Got() []transport.Outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transport.Outgoing(nil), r.got...)
}

// Cancel implements transport.Scheduler: a scheduled message is recorded
// as published (its Envelope.DeliverAt says when it is due); none is ever
// waiting to be cancelled.
func (r *Recorder) Cancel(context.Context, string) (bool, error) { return false, nil }

var errOnlyPublish = errors.New("outboxtest: the recorder only publishes")

// Subscribe implements transport.Transport; it fails.
func (r *Recorder) Subscribe(context.Context, transport.Subscription) (transport.Closer, error) {
	return nil, errOnlyPublish
}

// Request implements transport.Transport; it fails.
func (r *Recorder) Request(context.Context, transport.Topic, *transport.Envelope) (*transport.Reply, error) {
	return nil, errOnlyPublish
}

// Serve implements transport.Transport; it fails.
func (r *Recorder) Serve(context.Context, transport.Responder) (transport.Closer, error) {
	return nil, errOnlyPublish
}
