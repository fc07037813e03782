package transport

import "context"

// Outbox stores the messages a transaction sends, in that transaction, so
// they exist exactly when its state change does. A store's transaction
// helper (pgmod.DB.Tx, redismod.Outbox.Tx) binds one to the handler's
// context with WithOutbox; inside it Bus.Publish and Bus.Dispatch write the
// stamped envelope here instead of to the broker, and a relay publishes it
// after commit, with the envelope id as the broker's dedup id.
type Outbox interface {
	Add(ctx context.Context, topic Topic, env *Envelope) error
}

// OutboxFunc adapts a function to an Outbox.
type OutboxFunc func(ctx context.Context, topic Topic, env *Envelope) error

// Add calls f.
func (f OutboxFunc) Add(ctx context.Context, topic Topic, env *Envelope) error {
	return f(ctx, topic, env)
}

type outboxKey struct{}

// WithOutbox returns a context whose Publish and Dispatch calls write to o
// instead of the transport. A bus with no transport (the mediator alone)
// ignores it and runs the handlers in process, as without it.
func WithOutbox(ctx context.Context, o Outbox) context.Context {
	return context.WithValue(ctx, outboxKey{}, o)
}

// OutboxFrom returns the outbox bound to ctx, if any.
func OutboxFrom(ctx context.Context) (Outbox, bool) {
	o, ok := ctx.Value(outboxKey{}).(Outbox)
	return o, ok && o != nil
}

// Outgoing is one message of a batch publish.
type Outgoing struct {
	Topic    Topic
	Envelope *Envelope
}

// BatchPublisher is implemented by a transport that publishes many messages
// with a bounded window of pending acknowledgements instead of one round
// trip each (NATS asynchronous publishes, a Redis pipeline). The messages
// are sent in order; errs[i] (len(errs) == len(msgs)) receives the outcome
// of msgs[i] with the meaning Publish gives it: nil stored, cqrs.ErrOutcomeUnknown
// perhaps stored, anything else not stored.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, msgs []Outgoing, errs []error)
}

// PublishBatch publishes msgs on t, through its BatchPublisher when it has
// one and one by one otherwise, and writes each outcome to errs.
func PublishBatch(ctx context.Context, t Transport, msgs []Outgoing, errs []error) {
	if bp, ok := t.(BatchPublisher); ok {
		bp.PublishBatch(ctx, msgs, errs)
		return
	}
	for i, m := range msgs {
		errs[i] = t.Publish(ctx, m.Topic, m.Envelope)
	}
}
