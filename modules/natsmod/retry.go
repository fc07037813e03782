package natsmod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// startBackoff is the wait between start attempts: 250 ms doubling to 2 s,
// ±20 %. The cap is low because an attempt costs the server one dial or
// one API request, and a broker that comes up should be used within
// seconds; the jitter keeps a fleet started at once from dialling in step.
func startBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval: 250 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 2 * time.Second,
	}
}

// attemptTimeout bounds one attempt's JetStream requests, so a server that
// takes them and does not answer (a cluster without a leader yet) is asked
// again rather than waited for until the start deadline.
const attemptTimeout = 5 * time.Second

// retryStart runs attempt until it succeeds, fails with an error marked
// backoff.Permanent (returned as it is), or ctx ends. Each failed attempt is
// logged at warn as msg, with its number, the wait and the error. When ctx
// ends first the error is the last attempt's, with the number of attempts
// and ctx's error (so errors.Is(err, context.DeadlineExceeded)).
func (t *Transport) retryStart(ctx context.Context, msg string, attempt func(ctx context.Context) error, fields ...zap.Field) error {
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
			t.log.Warn(msg+"; retrying", append(slices.Clip(fields),
				zap.Int("attempt", n), zap.Duration("wait", wait), zap.String("error", errText(err, t.cfg)))...)
		}),
	)
	if err == nil || permanent {
		return err
	}
	if ctx.Err() == nil || last == nil {
		return err
	}
	if errors.Is(last, ctx.Err()) {
		return fmt.Errorf("%w (%d attempts in %v)", last, n, time.Since(began).Round(100*time.Millisecond))
	}
	return fmt.Errorf("%w (%d attempts in %v, until the start context ended: %w)", last, n, time.Since(began).Round(100*time.Millisecond), ctx.Err())
}

// refusedConnect reports whether err, from nats.Connect, is the server
// refusing this client (its credentials, its TLS) or a client setting
// nats.go rejects: waiting does not change those. Anything else (refused
// or timed-out dials, a name that does not resolve yet, a connection
// closed during the handshake, a server at its connection limit) may pass
// once the server is up.
func refusedConnect(err error) bool {
	for _, e := range []error{
		nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired,
		nats.ErrPermissionViolation, nats.ErrSecureConnRequired, nats.ErrSecureConnWanted, nats.ErrTLS,
		nats.ErrNkeysNotSupported, nats.ErrNoUserCB, nats.ErrNkeyButNoSigCB, nats.ErrUserButNoSigCB,
		nats.ErrHeadersNotSupported, nats.ErrMixingWebsocketSchemes,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var (
		verify *tls.CertificateVerificationError
		ua     x509.UnknownAuthorityError
		host   x509.HostnameError
		inval  x509.CertificateInvalidError
		path   *fs.PathError
	)
	if errors.As(err, &verify) || errors.As(err, &ua) || errors.As(err, &host) || errors.As(err, &inval) || errors.As(err, &path) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "authorization violation") || strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ")
}

// jetStreamNotReady reports whether err, from a JetStream API request at
// start, may pass by asking again: the connection is down or reconnecting,
// the request timed out or had no responder (JetStream not up yet), or the
// server said so (503, or no peers to place a replica on while a cluster
// forms). Anything else (a conflicting stream, a bad config, a limit) is
// the answer.
func jetStreamNotReady(err error) bool {
	for _, e := range []error{
		context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrReconnectBufExceeded,
		jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.Code == 503 || api.ErrorCode == jsErrCodeNoPeers)
}

// jsErrCodeNoPeers is the server's "no suitable peers for placement": a
// replicated stream or consumer asked for before the cluster has formed.
const jsErrCodeNoPeers jetstream.ErrorCode = 10005
