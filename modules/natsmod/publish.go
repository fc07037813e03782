package natsmod

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// A publish's error tells its outcome (see Publish): nil stored,
// cqrs.ErrOutcomeUnknown sent but unacknowledged, anything else not stored.
// The last holds because the connection has no reconnect buffer
// (config.go): nats.go would otherwise keep a publish refused while
// reconnecting and send it after the reconnect.

const (
	// ackTimeout bounds the wait for an ack when ctx has no deadline (it is
	// jetstream's default for a synchronous publish), and frees the
	// future of an asynchronous publish whose ack never comes.
	ackTimeout = 5 * time.Second
	// maxPendingAsync is nats.go's own cap on asynchronous publishes in
	// flight, over all callers; over it a publish stalls, then fails.
	// Each PublishBatch keeps to NATS_PUBLISH_WINDOW instead.
	maxPendingAsync = 1 << 20
	// noStreamAttempts and noStreamWait retry a publish that no stream
	// answered (no responders), as nats.go does by default: a stream can
	// be missing for a moment while a server restarts or a leader changes.
	noStreamAttempts = 3
	noStreamWait     = 250 * time.Millisecond
)

// noRetry turns off nats.go's own retry of a publish no stream answered:
// Publish retries itself, and a batch must not resend a message behind
// later ones.
var noRetry = jetstream.WithRetryAttempts(0)

// errClosing is why a batch stopped waiting for its acks: Close gave up.
var errClosing = errors.New("the transport closed first")

// status is the connection's last known status.
func (t *Transport) status() nats.Status { return nats.Status(t.state.Load()) }

// Publish implements transport.Transport: a JetStream publish with Nats-Msg-Id
// (the envelope id), so a retried publish is stored once within
// NATS_DUPLICATE_WINDOW; it returns after the stream's ack, or when ctx
// ends (5 s without a deadline). Its error tells the outcome:
//
//   - nil: stored.
//   - errors.Is(err, cqrs.ErrOutcomeUnknown): sent, but the ack did not
//     come back (a timeout, ctx ending, the connection lost after the
//     write). It may be stored: do not compensate; publish the same
//     envelope again (the same id) until it is acknowledged.
//   - errors.Is(err, cqrs.ErrUnavailable): not connected (disconnected,
//     reconnecting, closed), or no stream answered for the subject. It
//     failed at once and nothing was stored, nor will be: a caller may
//     compensate, or retry later.
//   - any other error is definite too: cqrs.ErrClosed (the transport is
//     stopped), cqrs.ErrPayloadTooLarge, a topic that is not an event or a
//     durable command (both cqrs.IsPermanent), ctx ended before sending, or
//     the stream refused it (a JetStream API error: a limit, say).
func (t *Transport) Publish(ctx context.Context, topic transport.Topic, env *transport.Envelope) error {
	js, quit, err := t.enter()
	if err != nil {
		return err
	}
	defer t.leave()
	msg, err := t.message(topic, env)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if err := t.sendable(ctx, quit, msg.Subject); err != nil {
			return err
		}
		_, err := js.PublishMsg(ctx, msg, noRetry)
		if err == nil {
			return nil
		}
		err = t.syncOutcome(topic, msg, err)
		// Retried here rather than by nats.go, so that ctx ending during
		// the wait leaves the outcome definite: no stream took it.
		if attempt == noStreamAttempts || !errors.Is(err, jetstream.ErrNoStreamResponse) || !sleep(ctx, noStreamWait) {
			return err
		}
	}
}

// message is env as topic's JetStream message; Nats-Msg-Id is in the headers.
func (t *Transport) message(topic transport.Topic, env *transport.Envelope) (*nats.Msg, error) {
	if topic.Kind != transport.KindEvent && topic.Kind != transport.KindCommand {
		return nil, cqrs.Permanent(fmt.Errorf("natsmod: publish of a %s: only events and commands are durable", topic.Kind))
	}
	if env.Scheduled() {
		return t.scheduledMessage(topic, env)
	}
	return &nats.Msg{Subject: t.subject(topic), Header: headersOf(env), Data: env.Payload}, nil
}

// sendable reports why a publish to subject must not be sent now: ctx
// ended, the transport is closing, or the connection is not up.
func (t *Transport) sendable(ctx context.Context, quit <-chan struct{}, subject string) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("natsmod: publish %s: not sent: %w", subject, ctx.Err())
	case <-quit:
		return fmt.Errorf("natsmod: publish %s: not sent: %w", subject, cqrs.ErrClosed)
	default:
	}
	if st := t.status(); st != nats.CONNECTED {
		return notConnected("publish", subject, st)
	}
	return nil
}

// notConnected is the definite error of an op refused while the
// connection was st.
func notConnected(op, subject string, st nats.Status) error {
	return fmt.Errorf("natsmod: %s %s: not connected to NATS (%s); nothing was sent: %w", op, subject, st, cqrs.ErrUnavailable)
}

// syncOutcome classifies an error of a synchronous publish of msg. What
// nats.go refuses before writing is definite, so is what the server
// answered; anything else happened after the write and is unknown. A
// closed connection is both (refused before the write, or closed while
// waiting for the ack), so it is unknown: the status check before the
// publish catches the connection that was closed already.
func (t *Transport) syncOutcome(topic transport.Topic, msg *nats.Msg, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrHeadersNotSupported),
		errors.Is(err, jetstream.ErrInvalidOption):
		return t.refused(topic, msg, err)
	}
	return answered(msg.Subject, err)
}

// refused is the definite error of a message the connection did not take.
func (t *Transport) refused(topic transport.Topic, msg *nats.Msg, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return &cqrs.PayloadTooLargeError{Name: topic.Name, Size: len(msg.Data), Limit: t.MaxPayload()}
	case errors.Is(err, nats.ErrReconnectBufExceeded): // with no reconnect buffer: refused while reconnecting
		return notConnected("publish", msg.Subject, nats.RECONNECTING)
	case errors.Is(err, nats.ErrConnectionClosed):
		return notConnected("publish", msg.Subject, nats.CLOSED)
	case errors.Is(err, nats.ErrConnectionDraining):
		return notConnected("publish", msg.Subject, nats.DRAINING_PUBS)
	}
	return fmt.Errorf("natsmod: publish %s: nothing was sent: %w", msg.Subject, err)
}

// answered classifies what came back for a message that was sent: no
// stream took it (no responders) or the stream refused it, both definite;
// anything else (no ack in time, the connection lost, an ack that does not
// parse) leaves the outcome unknown.
func answered(subject string, err error) error {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("natsmod: publish %s: no stream answers for the subject (%w); nothing was stored: %w", subject, jetstream.ErrNoStreamResponse, cqrs.ErrUnavailable)
	case errors.As(err, &api):
		return fmt.Errorf("natsmod: publish %s: the stream refused it; nothing was stored: %w", subject, err)
	}
	return unknown(subject, err)
}

// unknown is the error of a message sent whose ack did not come.
func unknown(subject string, cause error) error {
	return fmt.Errorf("natsmod: publish %s: no acknowledgement (%w); it may be stored, and publishing it again with the same message id stores it once: %w",
		subject, cause, cqrs.ErrOutcomeUnknown)
}

// PublishBatch implements transport.BatchPublisher: it sends msgs in order with
// asynchronous JetStream publishes, at most NATS_PUBLISH_WINDOW of them
// awaiting their acks at once, waits for every ack (or ctx, or Close), and
// writes each outcome to errs[i] with the meaning Publish gives it: nil
// stored, cqrs.ErrOutcomeUnknown perhaps stored (sent, no ack before ctx
// ended or within 5 s), any other error not stored.
//
// Messages go on the wire in the order of msgs. A message refused for
// itself (too large, not durable) is skipped and the rest go on; when the
// connection is not up, ctx ends or Close begins, the batch stops: that
// message and every one after it fail, definitely, with nothing sent, so a
// retry cannot put them behind later ones. A message the stream refuses
// or does not ack can still leave the ones after it stored before its
// retry is.
//
// It is safe for concurrent callers, starts no goroutine, and leaves no
// future behind: one whose ack never comes is dropped within 5 s.
func (t *Transport) PublishBatch(ctx context.Context, msgs []transport.Outgoing, errs []error) {
	if len(errs) < len(msgs) {
		err := fmt.Errorf("natsmod: publish batch: %d outcomes for %d messages; nothing was sent", len(errs), len(msgs))
		for i := range errs {
			errs[i] = err
		}
		return
	}
	if len(msgs) == 0 {
		return
	}
	js, quit, err := t.enter()
	if err != nil {
		for i := range msgs {
			errs[i] = err
		}
		return
	}
	defer t.leave()
	b := batch{ctx: ctx, quit: quit, errs: errs, ring: make([]pending, min(t.cfg.PublishWindow, len(msgs)))}
	for i, m := range msgs {
		if b.n == len(b.ring) {
			b.settleOldest()
		}
		msg, err := t.message(m.Topic, m.Envelope)
		if err != nil {
			errs[i] = err
			continue
		}
		if err := t.sendable(ctx, quit, msg.Subject); err != nil {
			b.stop(t, msgs, i, err)
			break
		}
		f, err := js.PublishMsgAsync(msg, noRetry)
		if err != nil {
			// Refused before it was written: definite.
			if err = t.refused(m.Topic, msg, err); errors.Is(err, cqrs.ErrUnavailable) {
				b.stop(t, msgs, i, err)
				break
			}
			errs[i] = err
			continue
		}
		b.push(pending{i: i, subject: msg.Subject, f: f})
	}
	for b.n > 0 {
		b.settleOldest()
	}
}

// batch is one PublishBatch's window: its publishes awaiting their acks,
// oldest first, in a ring.
type batch struct {
	ctx  context.Context
	quit <-chan struct{}
	errs []error
	ring []pending
	head int
	n    int
}

// pending is a publish sent, its ack not yet seen.
type pending struct {
	i       int
	subject string
	f       jetstream.PubAckFuture
}

func (b *batch) push(p pending) {
	b.ring[(b.head+b.n)%len(b.ring)] = p
	b.n++
}

// settleOldest waits for the oldest publish's outcome and writes it.
func (b *batch) settleOldest() {
	p := b.ring[b.head]
	b.ring[b.head] = pending{}
	b.head = (b.head + 1) % len(b.ring)
	b.n--
	b.errs[p.i] = b.await(p)
}

// await is p's outcome: its ack or error, or unknown once ctx ends or
// Close stops waiting. What has come already counts, even then.
func (b *batch) await(p pending) error {
	ok, failed := p.f.Ok(), p.f.Err()
	select {
	case <-ok:
		return nil
	case err := <-failed:
		return answered(p.subject, err)
	default:
	}
	select {
	case <-ok:
		return nil
	case err := <-failed:
		return answered(p.subject, err)
	case <-b.ctx.Done():
		return unknown(p.subject, b.ctx.Err())
	case <-b.quit:
		return unknown(p.subject, errClosing)
	}
}

// stop fails msgs[i] with cause and every message after it as not sent.
func (b *batch) stop(t *Transport, msgs []transport.Outgoing, i int, cause error) {
	b.errs[i] = cause
	for j := i + 1; j < len(msgs); j++ {
		b.errs[j] = fmt.Errorf("natsmod: publish %s: not sent, the batch stopped at message %d: %w", t.subject(msgs[j].Topic), i, cause)
	}
}

// sleep waits d unless ctx ends first; it reports whether it slept it all.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
