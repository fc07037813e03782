package natsmod

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// headerDeadline carries the caller's deadline to the responder.
const headerDeadline = "Catga-Deadline"

// Request implements transport.Transport over NATS request/reply: one instance
// of the owning service's queue group answers; no responder fails at once
// with cqrs.ErrNoHandler; ctx (or NATS_REQUEST_TIMEOUT) bounds the wait.
// While the connection is down it fails at once with cqrs.ErrUnavailable:
// nothing was sent, so no handler runs it later.
func (t *Transport) Request(ctx context.Context, topic transport.Topic, env *transport.Envelope) (*transport.Reply, error) {
	nc, _, err := t.conn()
	if err != nil {
		return nil, err
	}
	dl, bounded := ctx.Deadline()
	if !bounded {
		dl = time.Now().Add(t.cfg.RequestTimeout)
	}
	subject := t.requestSubject(topic)
	if st := t.status(); st != nats.CONNECTED {
		return nil, notConnected("request", subject, st)
	}
	rh := requestHeaders.Get().(*requestHeader)
	defer rh.release() // nats.go has written the headers out when the request returns
	msg := &nats.Msg{Subject: subject, Header: rh.fill(env, strconv.FormatInt(dl.UnixNano(), 10)), Data: env.Payload}
	var resp *nats.Msg
	switch {
	case ctx.Done() == nil:
		// Nothing can cancel ctx (context.Background, say): nats.go's own
		// timeout, on its pooled timers, bounds the wait to REQUEST_TIMEOUT.
		resp, err = nc.RequestMsg(msg, time.Until(dl))
	case !bounded:
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
		fallthrough
	default:
		resp, err = nc.RequestMsgWithContext(ctx, msg)
	}
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded): // no reconnect buffer: refused, not sent
		return nil, notConnected("request", msg.Subject, nats.RECONNECTING)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w for %s: no instance serves %s", cqrs.ErrNoHandler, topic, msg.Subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("natsmod: %s: %w", topic, context.DeadlineExceeded)
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, &cqrs.PayloadTooLargeError{Name: topic.Name, Size: len(env.Payload), Limit: t.MaxPayload()}
	case err != nil:
		return nil, fmt.Errorf("natsmod: request %s: %w", msg.Subject, err)
	}
	if code := resp.Header.Get(transport.HeaderErrorCode); code != "" {
		return &transport.Reply{Err: &transport.Failure{Code: code, Message: resp.Header.Get(transport.HeaderErrorMessage)}}, nil
	}
	ct := resp.Header.Get(transport.HeaderContentType)
	if ct == "" {
		ct = defaultContentType // a JSON reply carries no header at all
	}
	return &transport.Reply{ContentType: ct, Payload: resp.Data}, nil
}
