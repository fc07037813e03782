package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// errUnknownType: a delivery whose type header names no type handled on its topic.
type unknownTypeError struct {
	topic transport.Topic
	name  string
}

func (e *unknownTypeError) Error() string {
	return fmt.Sprintf("cqrs: %s delivery carries unknown type %q", e.topic, e.name)
}

// admit checks a delivery before any handler sees it: its type must be the
// topic's, its attempt within MaxDeliver (a message that crashed its handler
// comes back with a higher count and no chance to report), and its payload
// must decode into v. A failure here is permanent.
func (b *Bus) admit(t transport.Topic, env *transport.Envelope, v any) error {
	switch {
	case env.Name != t.Name:
		return Permanent(&unknownTypeError{topic: t, name: env.Name})
	case env.Attempt > b.maxDeliver:
		return Permanent(fmt.Errorf("cqrs: %s delivered %d times, over MaxDeliver %d", t, env.Attempt, b.maxDeliver))
	}
	if err := b.decode(env, v); err != nil {
		return Permanent(Errorf(CodeInvalid, "%w", err))
	}
	return nil
}

// guard runs fn and turns a panic that escaped every behavior into an error,
// so one message never takes its consumer down.
func (b *Bus) guard(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// settle applies the redelivery policy to a handled delivery: ack on
// success; dead-letter a permanent error or the last allowed attempt; nak
// with backoff otherwise. It settles in sctx, ctx without its
// cancellation (nil: settle makes it), so a shutdown does not cut an ack.
func (b *Bus) settle(ctx, sctx context.Context, d transport.Delivery, t transport.Topic, err error) {
	env := d.Envelope()
	if sctx == nil {
		sctx = context.WithoutCancel(ctx)
	}
	var serr error
	switch {
	case err == nil:
		serr = d.Ack(sctx)
	case errors.Is(err, transport.ErrDraining):
		serr = d.Nak(sctx, 0) // not handled here: give it back, not an attempt that failed
	case IsPermanent(err) || env.Attempt >= b.maxDeliver:
		tid, sid := traceIDsOf(ctx, env)
		b.log.LogAttrs(ctx, slog.LevelError, "cqrs: dead-lettering message",
			slog.String("message_id", env.ID), slog.String("message", t.Name), slog.String("kind", t.Kind.String()),
			slog.String("service", b.service), slog.Int("attempt", env.Attempt), slog.String("code", string(CodeOf(err))),
			slog.String("error", err.Error()), slog.String("trace_id", tid), slog.String("span_id", sid))
		if b.tel != nil {
			b.count(b.tel.deadLettered, t)
		}
		serr = d.DeadLetter(sctx, &transport.DeadLetter{
			Envelope: *env,
			Error:    err.Error(),
			Code:     string(CodeOf(err)),
			Attempts: env.Attempt,
			Service:  b.service,
			Instance: b.instance,
			Time:     time.Now(),
		})
	default:
		delay := b.redelivery.Delay(env.Attempt)
		tid, sid := traceIDsOf(ctx, env)
		b.log.LogAttrs(ctx, slog.LevelWarn, "cqrs: handler failed, redelivering",
			slog.String("message_id", env.ID), slog.String("message", t.Name), slog.String("kind", t.Kind.String()),
			slog.String("service", b.service), slog.Int("attempt", env.Attempt), slog.Duration("delay", delay),
			slog.String("code", string(CodeOf(err))), slog.String("error", err.Error()),
			slog.String("trace_id", tid), slog.String("span_id", sid))
		if b.tel != nil {
			b.count(b.tel.redelivered, t)
		}
		serr = d.Nak(sctx, delay)
	}
	if serr != nil {
		// The broker redelivers an unsettled message; say so and go on.
		b.log.LogAttrs(ctx, slog.LevelWarn, "cqrs: settling delivery failed; the broker will redeliver it",
			slog.String("message_id", env.ID), slog.String("message", t.Name), slog.String("error", serr.Error()))
	}
}
