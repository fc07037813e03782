package natsmod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/internal/startretry"
)

// attemptTimeout bounds one attempt's JetStream requests, so a server that
// takes them and does not answer (a cluster without a leader yet) is asked
// again rather than waited for until the start deadline.
const attemptTimeout = 5 * time.Second

// retryStart runs attempt with startretry.Run, its errors logged without
// the configuration's secrets.
func (t *Transport) retryStart(ctx context.Context, msg string, attempt func(ctx context.Context) error, fields ...zap.Field) error {
	return startretry.Run(ctx, t.log, func(err error) string { return errText(err, t.cfg) }, msg, attempt, fields...)
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
