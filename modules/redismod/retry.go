package redismod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/catga-go/catga/internal/startretry"
)

// retryStart runs attempt with startretry.Run, its errors logged without
// c's secrets.
func retryStart(ctx context.Context, log *zap.Logger, c Config, msg string, attempt func(ctx context.Context) error, fields ...zap.Field) error {
	return startretry.Run(ctx, log, func(err error) string { return scrubText(err.Error(), c) }, msg, attempt, fields...)
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
