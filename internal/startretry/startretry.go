// Package startretry is how a transport starts against a broker that is not
// up yet: an attempt (a dial, a ping, creating a consumer) is tried again
// with backoff until it succeeds, fails for good, or the start context
// ends. natsmod and redismod start this way.
package startretry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
)

// Backoff is the wait between start attempts: 250 ms doubling to 2 s,
// ±20 %. The cap is low because an attempt costs the server one dial or
// one request, and a broker that comes up should be used within seconds;
// the jitter keeps a fleet started at once from dialling in step.
func Backoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval: 250 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 2 * time.Second,
	}
}

// Run runs attempt until it succeeds, fails with an error marked
// backoff.Permanent (returned as it is), or ctx ends. Each failed attempt
// is logged at warn (log may be nil) as msg, with fields, its number, the
// wait and the error's text as redact gives it (without the secrets of the
// transport's configuration). When ctx ends first the error is the last
// attempt's, with the number of attempts and ctx's error (so errors.Is(err,
// context.DeadlineExceeded)).
func Run(ctx context.Context, log *zap.Logger, redact func(error) string, msg string, attempt func(ctx context.Context) error, fields ...zap.Field) error {
	if log == nil {
		log = zap.NewNop()
	}
	began := time.Now()
	n := 0
	var last error
	permanent := false
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		n++
		err := attempt(ctx)
		var p *backoff.PermanentError
		permanent = errors.As(err, &p)
		if err != nil && (last == nil || ctx.Err() == nil) {
			last = err // not the attempt that ctx cut short, when there was another
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(Backoff()),
		backoff.WithMaxElapsedTime(0), // until ctx ends
		backoff.WithNotify(func(err error, wait time.Duration) {
			log.Warn(msg+"; retrying", append(slices.Clip(fields),
				zap.Int("attempt", n), zap.Duration("wait", wait), zap.String("error", redact(err)))...)
		}),
	)
	if err == nil || permanent || ctx.Err() == nil || last == nil {
		return err
	}
	took := time.Since(began).Round(100 * time.Millisecond)
	if errors.Is(last, ctx.Err()) {
		return fmt.Errorf("%w (%d attempts in %v)", last, n, took)
	}
	return fmt.Errorf("%w (%d attempts in %v, until the start context ended: %w)", last, n, took, ctx.Err())
}
