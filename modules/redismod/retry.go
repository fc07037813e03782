package redismod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// startBackoff is the wait between start attempts: 250 ms doubling to 2 s,
// ±20 %. The cap is low because an attempt costs Redis one dial or one
// command, and a server that comes up should be used within seconds; the
// jitter keeps a fleet started at once from dialling in step.
func startBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval: 250 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 2 * time.Second,
	}
}

// retryStart runs attempt until it succeeds, fails with an error marked
// backoff.Permanent (returned as it is), or ctx ends. Each failed attempt is
// logged at warn as msg, with its number, the wait and the error (c's
// secrets removed). When ctx ends first the error is the last attempt's,
// with the number of attempts and ctx's error (so errors.Is(err,
// context.DeadlineExceeded)).
func retryStart(ctx context.Context, log *zap.Logger, c Config, msg string, attempt func(ctx context.Context) error, fields ...zap.Field) error {
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
		backoff.WithBackOff(startBackoff()),
		backoff.WithMaxElapsedTime(0), // until ctx ends
		backoff.WithNotify(func(err error, wait time.Duration) {
			log.Warn(msg+"; retrying", append(slices.Clip(fields),
				zap.Int("attempt", n), zap.Duration("wait", wait), zap.String("error", scrubText(err.Error(), c)))...)
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

// where names c's server for errors and logs, without its password.
func where(c Config) string {
	if c.Connection != "" {
		return c.Connection
	}
	return redactURL(c.URL)
}

// waitForServer pings rdb until it answers, with retryStart: an
// unreachable or loading server is waited for until ctx ends, one that
// refuses the credentials or the TLS handshake fails at once.
func waitForServer(ctx context.Context, rdb redis.UniversalClient, c Config, log *zap.Logger) error {
	return retryStart(ctx, log, c, "Redis not reachable", func(ctx context.Context) error {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		werr := fmt.Errorf("redismod: connect to %s: %w", where(c), scrub(err, c))
		if !notYet(err) {
			return backoff.Permanent(werr)
		}
		return werr
	}, zap.String("server", where(c)))
}

// notYet reports whether err, from a command at start, may pass by trying
// again: no connection (refused, timed out, reset, a name that does not
// resolve yet), or Redis saying it is not ready (LOADING, BUSY,
// MASTERDOWN, CLUSTERDOWN, TRYAGAIN, its client limit). A TLS failure, a
// closed client and any other error reply (WRONGPASS, NOAUTH, NOPERM,
// WRONGTYPE, ...) are the answer.
func notYet(err error) bool {
	if tlsFailure(err) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return strings.Contains(msg, "max number of clients")
	}
	return true
}

// tlsFailure reports whether err is a TLS handshake failing: a
// certificate this side cannot verify, or the server's alert (no or a
// foreign client certificate), or TLS spoken to a server that does not.
func tlsFailure(err error) bool {
	var (
		verify *tls.CertificateVerificationError
		ua     x509.UnknownAuthorityError
		host   x509.HostnameError
		inval  x509.CertificateInvalidError
		op     *net.OpError
	)
	if errors.As(err, &verify) || errors.As(err, &ua) || errors.As(err, &host) || errors.As(err, &inval) ||
		(errors.As(err, &op) && op.Op == "remote error") {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ")
}
