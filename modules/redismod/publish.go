package redismod

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Publish implements transport.Transport with XADD; it returns nil once Redis
// has the entry (with AOF appendfsync always, once it is on disk). A
// failure says what became of the message:
//
//   - errors.Is(err, cqrs.ErrUnavailable): nothing was sent, so nothing
//     will be stored: the dial was refused or timed out, no pooled
//     connection came within the pool timeout, the server's TLS
//     certificate failed verification, the XADD's write failed before its
//     last byte (Redis does not run a command it did not read whole), the
//     transport is closed, or ctx ended before the XADD was sent. The
//     caller may compensate, or publish again later.
//   - errors.Is(err, cqrs.ErrOutcomeUnknown): the XADD was written but its
//     reply did not come back (a read timeout, ctx's deadline, EOF or a
//     reset while waiting): Redis may have stored it. The caller must not
//     compensate; it may publish the same envelope again (the same message
//     id): Redis may then hold it twice, and the receiver's inbox runs the
//     handler once.
//   - any other error is Redis's error reply (OOM, WRONGTYPE, NOPERM, ...),
//     its text kept, passwords removed: Redis refused the XADD, nothing is
//     stored. Or it is a bad argument (a topic that is not an event or a
//     command), and nothing was sent.
//
// A failure that cannot be shown to have come before the write counts as
// unknown (a new connection's handshake that times out looks like a reply
// that does): unknown is always a safe answer, a definite one is given
// only when it is true.
//
// go-redis retries a command itself (MaxRetries, 3 by default; a cluster
// client's MaxRedirects) after a dial error, a pool timeout, EOF, a reset
// or another network error, and after a read timeout for a command with
// no read timeout of its own, as XADD. A retried XADD whose reply was lost
// is stored twice, and the last attempt's error (a refused dial, a
// handshake that timed out) hides that the first may be stored. So Publish
// turns go-redis's retries off for its XADD and reports the one attempt's
// outcome. go-redis still replays an XADD it knows it did not write, and
// its pool redials a refused connection (DialerRetries: by default 5
// times, 100ms apart), which sends nothing. Retrying is the caller's.
func (t *Transport) Publish(ctx context.Context, topic transport.Topic, env *transport.Envelope) error {
	key, err := t.streamOf(topic, env)
	if err != nil {
		return err
	}
	if err := t.sendable(ctx); err != nil {
		return &notSentError{key, err}
	}
	if env.Scheduled() {
		return t.schedule(ctx, key, env)
	}
	cmd := newXAdd(ctx, key, env)
	if err := t.rdb.Process(ctx, cmd); err != nil {
		_, err = t.outcome(key, err, false)
		return err
	}
	t.touch(key)
	return nil
}

// batchSize bounds the XADDs of one round trip: a few hundred make the
// round trip's cost small per message and keep its buffers small.
const batchSize = 256

// PublishBatch implements transport.BatchPublisher: the XADDs of msgs in
// pipelines (not transactions) of up to 256, one round trip each, in
// order; errs[i] (len(errs) == len(msgs)) gets the outcome of msgs[i] with
// the meaning Publish gives it. A Redis error reply fails its message
// only. A round trip whose connection could not be made or was lost stops
// the batch there: the messages after it are not sent (cqrs.ErrUnavailable),
// so a caller that publishes them again keeps them in order. Within a lost
// round trip, the messages whose replies were read have their outcome, the
// others are unknown: Redis may have run them. On a cluster client go-redis
// splits each round trip by node, in order, so each stream keeps the
// batch's order; a node that fails stops the batch after that round trip,
// the other nodes' messages in it stored.
func (t *Transport) PublishBatch(ctx context.Context, msgs []transport.Outgoing, errs []error) {
	if len(errs) != len(msgs) {
		err := fmt.Errorf("redismod: PublishBatch: %d outcomes for %d messages, nothing sent", len(errs), len(msgs))
		for i := range errs {
			errs[i] = err
		}
		return
	}
	// Scheduled messages go one by one (two scripts each, in order); the
	// runs between them in pipelines.
	scheduled := func(m transport.Outgoing) bool { return m.Envelope != nil && m.Envelope.Scheduled() }
	var halt error // why the rest of the batch is not sent
	for lo := 0; lo < len(msgs); {
		if halt != nil {
			t.notSent(msgs[lo:], errs[lo:], halt)
			return
		}
		if scheduled(msgs[lo]) {
			errs[lo] = t.Publish(ctx, msgs[lo].Topic, msgs[lo].Envelope)
			if o := classify(errs[lo], false); o == notSent || o == unknown {
				halt = fmt.Errorf("an earlier message of the batch failed: %w", errs[lo])
			}
			lo++
			continue
		}
		hi := lo + 1
		for hi < len(msgs) && !scheduled(msgs[hi]) {
			hi++
		}
		halt = t.publishRun(ctx, msgs[lo:hi], errs[lo:hi])
		lo = hi
	}
}

// publishRun is PublishBatch of messages none of which is scheduled; it
// returns why the batch must stop, nil when it may go on.
func (t *Transport) publishRun(ctx context.Context, msgs []transport.Outgoing, errs []error) (halt error) {
	pipe := t.rdb.Pipeline()
	sent := make([]pending, 0, min(len(msgs), batchSize))
	for lo := 0; lo < len(msgs); lo += batchSize {
		hi := min(lo+batchSize, len(msgs))
		if halt == nil {
			halt = t.sendable(ctx)
		}
		if halt != nil {
			t.notSent(msgs[lo:], errs[lo:], halt)
			return halt
		}
		halt = t.publishRound(ctx, pipe, sent[:0], msgs[lo:hi], errs[lo:hi])
	}
	return halt
}

// notSent gives each of msgs the outcome not sent, for the reason halt.
func (t *Transport) notSent(msgs []transport.Outgoing, errs []error, halt error) {
	for i := range msgs {
		key, err := t.streamOf(msgs[i].Topic, msgs[i].Envelope)
		if err == nil {
			err = &notSentError{key, halt}
		}
		errs[i] = err
	}
}

// pending is an XADD of a round trip: the message it sends and its stream.
type pending struct {
	i   int
	key string
	cmd xaddCmd
}

// publishRound sends msgs in one pipeline and writes their outcomes to
// errs; it returns why the batch must stop, nil when it may go on.
func (t *Transport) publishRound(ctx context.Context, pipe redis.Pipeliner, sent []pending, msgs []transport.Outgoing, errs []error) (halt error) {
	for i, m := range msgs {
		key, err := t.streamOf(m.Topic, m.Envelope)
		if err != nil {
			errs[i] = err
			continue
		}
		p := pending{i: i, key: key, cmd: newXAdd(ctx, key, m.Envelope)}
		_ = pipe.Process(ctx, p.cmd)
		sent = append(sent, p)
	}
	if len(sent) == 0 {
		return nil
	}
	_, execErr := pipe.Exec(ctx)
	touched := ""
	for _, p := range sent {
		err := p.cmd.Err()
		if err == nil && p.cmd.Val() == "" {
			// Neither a reply nor an error: a hook ended the pipeline
			// without running it, or without saying what it ran.
			err = cmp.Or(execErr, errNoReply)
		}
		o, perr := t.outcome(p.key, err, true)
		errs[p.i] = perr
		switch {
		case o == stored && p.key != touched:
			t.touch(p.key)
			touched = p.key
		case halt == nil && o == notSent:
			halt = scrub(err, t.cfg)
		case halt == nil && o == unknown:
			halt = fmt.Errorf("an earlier XADD of the batch went unanswered: %w", scrub(err, t.cfg))
		}
	}
	return halt
}

var errNoReply = errors.New("redismod: XADD: no reply")

// streamOf is the stream msg goes to, or why it cannot be published.
func (t *Transport) streamOf(topic transport.Topic, env *transport.Envelope) (string, error) {
	if topic.Kind != transport.KindEvent && topic.Kind != transport.KindCommand {
		return "", fmt.Errorf("redismod: publish of a %s: only events and commands are durable", topic.Kind)
	}
	if env == nil {
		return "", fmt.Errorf("redismod: publish to %s: no envelope", topic.Name)
	}
	if k, ok := t.streamKeys.Load(topic); ok {
		return k.(string), nil
	}
	k := t.k.stream(topic)
	t.streamKeys.Store(topic, k)
	return k, nil
}

// sendable is why nothing may be sent now, or nil.
func (t *Transport) sendable(ctx context.Context) error {
	if t.isClosed() {
		return cqrs.ErrClosed
	}
	return ctx.Err()
}

// xaddCmd is an XADD that go-redis does not retry (see Publish): a retry
// after a lost reply may store it twice and hides the first outcome.
type xaddCmd struct{ *redis.StringCmd }

// NoRetry tells go-redis not to send the command again.
func (xaddCmd) NoRetry() bool { return true }

func newXAdd(ctx context.Context, key string, env *transport.Envelope) xaddCmd {
	return xaddCmd{redis.NewStringCmd(ctx, "xadd", key, "*", fieldHeaders, headerBlock(env), fieldPayload, env.Payload)}
}

// outcome is what the error of an XADD that go-redis did not retry tells
// of it.
type outcome int

const (
	stored  outcome = iota // no error: Redis has it
	notSent                // it never reached Redis
	refused                // Redis ran it and replied with an error
	unknown                // it was, or may have been, written; no reply came back
)

// classify tells what err, the failure of an XADD sent alone or (pipelined)
// with others in one write, shows about it, by the error's type.
func classify(err error, pipelined bool) outcome {
	if err == nil {
		return stored
	}
	return classifyFailure(err, pipelined)
}

// classifyFailure is classify of a failure, apart so that a success does
// not allocate the targets of errors.As (they escape to the heap).
func classifyFailure(err error, pipelined bool) outcome {
	var (
		op     *net.OpError
		rerr   redis.Error
		verify *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &op) && op.Op == "dial",
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, redis.ErrClosed),
		errors.As(err, &verify): // a TLS handshake comes before any command
		return notSent
	case errors.As(err, &rerr):
		return refused
	case !pipelined && errors.As(err, &op) && op.Op == "write":
		// The write failed before its last byte went out: Redis cannot
		// run a command it did not read whole. A pipeline's earlier
		// commands may have gone out whole.
		return notSent
	}
	// The rest came after the write, or cannot be shown to have come
	// before it: EOF or a reset (syscall.ECONNRESET) while waiting for
	// the reply, a read timeout (a net.Error whose Timeout is true), ctx's
	// deadline or cancellation while go-redis held the command, and a
	// failed handshake of a new connection, which go-redis returns
	// unwrapped and so cannot be told from the rest.
	return unknown
}

// outcome is what err, the failure of an XADD to key, tells of it, and
// the error to report; nil for nil.
func (t *Transport) outcome(key string, err error, pipelined bool) (outcome, error) {
	o := classify(err, pipelined)
	switch o {
	case stored:
		return o, nil
	case notSent:
		return o, &notSentError{key, scrub(err, t.cfg)}
	case refused:
		return o, fmt.Errorf("redismod: XADD %s: %w", key, scrub(err, t.cfg))
	}
	return o, fmt.Errorf("redismod: XADD %s: %w: %w", key, cqrs.ErrOutcomeUnknown, scrub(err, t.cfg))
}

// notSentError is a publish that failed before anything reached Redis: a
// definite failure, cqrs.ErrUnavailable, for the reason err.
type notSentError struct {
	key string
	err error
}

func (e *notSentError) Error() string {
	return "redismod: XADD " + e.key + ": not sent: " + e.err.Error()
}

// Unwrap makes errors.Is match cqrs.ErrUnavailable and the reason.
func (e *notSentError) Unwrap() []error { return []error{cqrs.ErrUnavailable, e.err} }
