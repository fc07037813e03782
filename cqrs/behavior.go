package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/lazyctx"
)

// The shipped behaviors. Their order in the default chains, outermost first:
//
//	dispatch: Logging, Validation, Recover, then the user's behaviors
//	delivery: Logging, Timeout, Validation, Idempotency, Retry, Recover, then the user's
//
// Logging sees the final outcome. Validation runs once, before any retry:
// an invalid message stays invalid. Idempotency wraps Retry, so a message
// counts as handled only when an attempt succeeded. Recover sits inside Retry
// so a panic is retried like any error, and outside the user's behaviors so
// their panics are caught too.

// DefaultDispatch returns the behaviors around Send, Ask and an in-process
// Publish or Dispatch, followed by user.
func DefaultDispatch(log *slog.Logger, user ...Behavior) []Behavior {
	return append([]Behavior{Logging(log), Validation(), Recover()}, user...)
}

// DeliveryConfig tunes DefaultDelivery.
type DeliveryConfig struct {
	Timeout        time.Duration // per delivery, 0 for none
	Retry          RetryPolicy   // in-process attempts before the broker redelivers
	Idempotency    inbox.Store   // nil: no inbox
	IdempotencyTTL time.Duration
	Service        string
}

// DefaultDelivery returns the behaviors around a message from the transport,
// followed by user.
func DefaultDelivery(log *slog.Logger, c DeliveryConfig, user ...Behavior) []Behavior {
	bs := []Behavior{Logging(log), timeout(c.Timeout, true), Validation()}
	if c.Idempotency != nil {
		bs = append(bs, Idempotency(c.Idempotency, c.Service, c.IdempotencyTTL))
	}
	bs = append(bs, Retry(c.Retry), Recover())
	return append(bs, user...)
}

// Recover turns a panic in the handler (or in behaviors inside it) into an
// error with CodeInternal that carries the value and the stack.
func Recover() Behavior {
	return func(next Step) Step {
		return StepFunc(func(ctx context.Context, m Message) (err error) {
			defer func() {
				if v := recover(); v != nil {
					p := &PanicError{Value: v, Stack: debug.Stack()}
					err = &Error{Code: CodeInternal, Message: fmt.Sprintf("%s: handler %s panicked: %v", m.Topic(), m.HandlerName(), v), Err: p}
				}
			}()
			return next.Handle(ctx, m)
		})
	}
}

// Logging logs every run at debug level with its outcome and duration. It
// does not log failures louder: the caller or the consumer that settles the
// delivery reports them once. It costs nothing when debug is off.
func Logging(log *slog.Logger) Behavior {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next Step) Step {
		return StepFunc(func(ctx context.Context, m Message) error {
			if !log.Enabled(ctx, slog.LevelDebug) {
				return next.Handle(ctx, m)
			}
			start := time.Now()
			err := next.Handle(ctx, m)
			env := m.Envelope()
			tid, sid := traceIDsOf(ctx, env)
			attrs := []slog.Attr{
				slog.String("message_id", env.ID), slog.String("message", m.Topic().Name),
				slog.String("kind", m.Topic().Kind.String()), slog.String("handler", m.HandlerName()),
				slog.Int("attempt", env.Attempt), slog.Duration("duration", time.Since(start)),
				slog.String("trace_id", tid), slog.String("span_id", sid),
			}
			if err != nil {
				attrs = append(attrs, slog.String("code", string(CodeOf(err))), slog.String("error", err.Error()))
				log.LogAttrs(ctx, slog.LevelDebug, "cqrs: handler failed", attrs...)
				return err
			}
			log.LogAttrs(ctx, slog.LevelDebug, "cqrs: handled", attrs...)
			return nil
		})
	}
}

// Timeout bounds the run with d; 0 or less leaves it unbounded. A handler
// that overruns sees its context end and its error gets CodeTimeout. The
// handler's context is a context of its own, ended when the run ends, as
// context.WithTimeout's is; its timer is made only if something waits on
// it (internal/lazyctx).
func Timeout(d time.Duration) Behavior {
	return timeout(d, false)
}

// timeout is Timeout; inPlace bounds the call itself (no allocation) when
// the context is the call, and ends it when the run ends: the call is
// then a context that is done, for whatever kept it. Only for a chain
// whose behaviors outside it read no more than the context's values after
// the run, as DefaultDelivery's Logging does.
func timeout(d time.Duration, inPlace bool) Behavior {
	return func(next Step) Step {
		if d <= 0 {
			return next
		}
		return StepFunc(func(ctx context.Context, m Message) error {
			at := time.Now().Add(d)
			run := ctx
			if inPlace && any(ctx) == any(m) && m.bind(at) {
				defer m.end()
			} else {
				lc := lazyctx.WithDeadline(ctx, at)
				defer lc.Cancel()
				run = lc
			}
			err := next.Handle(run, m)
			if err != nil && errors.Is(run.Err(), context.DeadlineExceeded) && CodeOf(err) != CodeTimeout {
				return &Error{Code: CodeTimeout, Message: fmt.Sprintf("%s: handler %s overran %v: %v", m.Topic(), m.HandlerName(), d, err), Err: err}
			}
			return err
		})
	}
}

// Validation calls the message's Validate method, when it has one, before
// the handler; a failure has CodeInvalid and the handler does not run.
func Validation() Behavior {
	return func(next Step) Step {
		return StepFunc(func(ctx context.Context, m Message) error {
			if err := m.validate(); err != nil {
				var e *Error
				if errors.As(err, &e) {
					return err
				}
				return &Error{Code: CodeInvalid, Message: fmt.Sprintf("invalid %s: %v", m.Topic().Name, err), Err: err}
			}
			return next.Handle(ctx, m)
		})
	}
}

// RetryPolicy is in-process retrying with exponential backoff and jitter.
type RetryPolicy struct {
	Attempts int           // total runs; 1 or less: no retry
	Initial  time.Duration // first wait; 0: 20ms (CATGA_RETRY_INITIAL)
	Max      time.Duration // longest wait; 0: 1s (CATGA_RETRY_MAX)
}

// defaultRetry runs a failed handler up to 3 times (CATGA_RETRY_ATTEMPTS)
// before the broker's redelivery, waiting from 20ms (CATGA_RETRY_INITIAL)
// up to 1s (CATGA_RETRY_MAX).
var defaultRetry = RetryPolicy{Attempts: defaults.RetryAttempts, Initial: defaults.RetryInitial, Max: defaults.RetryMax}

// retryJitter varies Retry's waits by ±50%, more than the redelivery's: the
// retries of one failure in many handlers at once should not line up.
const retryJitter = 0.5

// Retry runs the handler again after a failure that is not permanent (nor
// transport.ErrDraining, a message given back at shutdown), up to
// p.Attempts runs, waiting as a Backoff from p.Initial doubling up to p.Max,
// ±50%. It returns the last error; a context that ends stops the retrying.
func Retry(p RetryPolicy) Behavior {
	return func(next Step) Step {
		if p.Attempts <= 1 {
			return next
		}
		wait := Backoff{Initial: p.Initial, Max: p.Max, Multiplier: backoffMultiplier, Jitter: retryJitter}
		if wait.Initial <= 0 {
			wait.Initial = defaultRetry.Initial
		}
		if wait.Max <= 0 {
			wait.Max = defaultRetry.Max
		}
		return StepFunc(func(ctx context.Context, m Message) error {
			for attempt := 1; ; attempt++ {
				err := next.Handle(ctx, m)
				if err == nil || attempt >= p.Attempts || IsPermanent(err) || errors.Is(err, transport.ErrDraining) || ctx.Err() != nil {
					return err // the handler's error, not the context's
				}
				t := time.NewTimer(wait.Delay(attempt))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return err
				}
			}
		})
	}
}

// Idempotency skips a delivered message whose handler already succeeded:
// an inbox keyed by (service, handler, message id) in store. A run claims
// the key for as long as its context allows (5 minutes
// without a deadline); a second delivery of the same message that finds it
// claimed waits, polling, until the first succeeds (then skips) or lets go
// (then runs): it does not fail, so a message whose first run crashed is
// run again once the lease ends rather than dead-lettered meanwhile. If the
// subscription starts closing while it waits, it returns transport.ErrDraining and the
// message goes back to the broker: a shutdown does not wait for a lease. Local
// dispatches carry no id worth keeping and pass through, and so do the
// deliveries of a handler registered with OwnInbox.
func Idempotency(store inbox.Store, service string, ttl time.Duration) Behavior {
	if ttl <= 0 {
		ttl = defaultIdempotencyTTL
	}
	return func(next Step) Step {
		return StepFunc(func(ctx context.Context, m Message) error {
			if !m.Delivered() || m.routeMeta().ownInbox {
				return next.Handle(ctx, m)
			}
			key := service + "/" + m.HandlerName() + "/" + m.ID()
			lease := defaultIdempotencyLease
			if dl, ok := ctx.Deadline(); ok {
				lease = time.Until(dl) + time.Second
			}
			wait := 5 * time.Millisecond
			for {
				state, err := store.Claim(ctx, key, lease)
				if err != nil {
					return Errorf(CodeUnavailable, "cqrs: idempotency store: %w", err)
				}
				switch state {
				case inbox.StateDone:
					return nil
				case inbox.StateNew:
					if err := next.Handle(ctx, m); err != nil {
						if rerr := store.Release(m.detach(ctx), key); rerr != nil {
							return errors.Join(err, Errorf(CodeUnavailable, "cqrs: idempotency release: %w", rerr))
						}
						return err
					}
					if err := store.MarkDone(m.detach(ctx), key, ttl); err != nil {
						// The handler succeeded; a redelivery will run it again. Say so.
						return Errorf(CodeUnavailable, "cqrs: idempotency commit after success: %w", err)
					}
					return nil
				}
				t := time.NewTimer(wait) // inbox.StateBusy: another run holds it
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return Errorf(CodeUnavailable, "cqrs: %s %s: still being handled elsewhere: %w", m.Topic(), m.ID(), ctx.Err())
				case <-transport.Draining(ctx):
					t.Stop()
					return Errorf(CodeUnavailable, "cqrs: %s %s: still being handled elsewhere: %w", m.Topic(), m.ID(), transport.ErrDraining)
				}
				wait = min(2*wait, 500*time.Millisecond)
			}
		})
	}
}
