package outboxtest

import (
	"context"
	"errors"
	"sync"

	"github.com/catga-go/catga/cqrs"
)

// Recorder is a transport that records what is published, in order, and
// can be told to fail. Only Publish works; the rest say so.
type Recorder struct {
	mu   sync.Mutex
	got  []cqrs.Outgoing
	fail func(cqrs.Outgoing) error // nil: store it
}

var _ cqrs.Transport = (*Recorder)(nil)

// FailWith makes Publish call fn first: a nil result stores the message,
// cqrs.ErrOutcomeUnknown stores it and returns the error (a lost ack),
// anything else stores nothing.
func (r *Recorder) FailWith(fn func(cqrs.Outgoing) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = fn
}

// Publish implements cqrs.Transport.
func (r *Recorder) Publish(ctx context.Context, topic cqrs.Topic, env *cqrs.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := cqrs.Outgoing{Topic: topic, Envelope: env.Clone()}
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
func (r *Recorder) Got() []cqrs.Outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cqrs.Outgoing(nil), r.got...)
}

var errOnlyPublish = errors.New("outboxtest: the recorder only publishes")

// Subscribe implements cqrs.Transport; it fails.
func (r *Recorder) Subscribe(context.Context, cqrs.Subscription) (cqrs.Subscriber, error) {
	return nil, errOnlyPublish
}

// Request implements cqrs.Transport; it fails.
func (r *Recorder) Request(context.Context, cqrs.Topic, *cqrs.Envelope) (*cqrs.Reply, error) {
	return nil, errOnlyPublish
}

// Serve implements cqrs.Transport; it fails.
func (r *Recorder) Serve(context.Context, cqrs.Service) (cqrs.Subscriber, error) {
	return nil, errOnlyPublish
}
