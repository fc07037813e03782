package redismod

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// versionTTL is how long an ordering key's version outlives its last
// commit: it only has to exist while transactions of the key overlap.
const versionTTL = time.Hour

// TxOption tunes one Tx.
type TxOption func(*txOptions)

type txOptions struct {
	key   string
	watch []string
}

// Key orders the transaction with every other transaction of the same key
// (an aggregate's id, say): they are serializable, so their messages are
// published in the order their state changed. The transaction WATCHes the
// key's version and bumps it in the MULTI; if another transaction of the
// key committed meanwhile, fn runs again (at most OutboxConfig.Attempts
// times). Without a key, transactions are ordered only by their commits.
func Key(key string) TxOption { return func(o *txOptions) { o.key = key } }

// Watch WATCHes keys (from Outbox.Key) for fn's read-modify-write: fn reads
// them through the client after the WATCH, and if one changes before
// EXEC, fn runs again.
func Watch(keys ...string) TxOption {
	return func(o *txOptions) { o.watch = append(o.watch, keys...) }
}

// Tx runs fn and commits what it queued on pipe in one MULTI/EXEC. Inside
// fn, ctx carries the outbox: bus.Publish and bus.Dispatch with it queue an
// XADD of their envelopes in the same MULTI, so the messages exist exactly
// when fn's writes do; the relay publishes them after commit (see Outbox).
//
// fn queues writes on pipe (their results are known only after Tx
// returns) and reads through Outbox.Reader(ctx), the transaction's own
// connection, not pipe and not a pooled connection: reads of
// keys given to Watch, or guarded by Key, happen after the WATCH, so a
// change before EXEC makes fn run again. fn may run several times; it must
// not call pipe.Exec or keep pipe.
//
// When ctx is a delivered message's handler context, Tx is also its inbox
// (see Outbox): a message whose transaction committed is skipped, and Tx
// returns nil without calling fn. Call Tx once per delivery, and register
// the handler with cqrs.OwnInbox.
//
// Errors: one from fn is returned as it is, and nothing is written.
// ErrCrossSlot: a key outside the outbox's slot on a cluster, nothing
// written. ErrTxConflict (cqrs.CodeConflict): the watched keys kept
// changing. Failing to reach Redis before EXEC has cqrs.CodeUnavailable:
// nothing happened. An EXEC whose reply was lost wraps
// cqrs.ErrOutcomeUnknown: it may have committed.
func (o *Outbox) Tx(ctx context.Context, fn func(ctx context.Context, pipe redis.Pipeliner) error, opts ...TxOption) error {
	var to txOptions
	for _, opt := range opts {
		opt(&to)
	}
	r := txRun{fn: fn, direct: o.directTransport()}
	if m, ok := cqrs.MessageFrom(ctx); ok && m.Delivered() {
		r.mark = o.k.mark(o.service+"/"+m.HandlerName(), m.ID())
		r.watch = append(r.watch, r.mark)
	}
	if to.key != "" {
		r.version = o.k.version(to.key)
		r.watch = append(r.watch, r.version)
	}
	if !o.single {
		for _, k := range to.watch {
			if keySlot(k) != o.slot {
				return fmt.Errorf("%w: WATCH %s is in slot %d, the outbox %s in slot %d; build every key of a Tx with Outbox.Key", ErrCrossSlot, k, keySlot(k), o.k.tag, o.slot)
			}
		}
	}
	r.watch = append(r.watch, to.watch...)
	if !o.single && len(r.watch) == 0 {
		r.watch = append(r.watch, o.k.anchor()) // a cluster's Watch needs a key to find the node
	}
	for attempt := 1; ; attempt++ {
		res, err := o.try(ctx, &r)
		if res.wrote > 0 {
			o.wrote(res)
		}
		if err != nil || !res.conflict {
			return err
		}
		if attempt >= o.oc.Attempts {
			return cqrs.Errorf(cqrs.CodeConflict, "redismod: outbox tx: %d runs aborted at EXEC by changes to watched keys: %w", attempt, ErrTxConflict)
		}
		// Full jitter, so that the transactions of a hot key spread out.
		t := time.NewTimer(rand.N(min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return cqrs.Errorf(cqrs.CodeUnavailable, "redismod: outbox tx: %w", ctx.Err())
		}
	}
}

// txRun is one Tx call, run once per attempt.
type txRun struct {
	fn      func(ctx context.Context, pipe redis.Pipeliner) error
	direct  *Transport
	mark    string // the inbox mark, for a delivered message
	version string // the ordering key's version
	watch   []string
}

// txResult is what one attempt did.
type txResult struct {
	conflict bool     // EXEC aborted: a watched key changed
	wrote    int      // messages committed
	streams  []string // the transport's streams written directly
}

// try runs one attempt: WATCH, the mark's check, fn, EXEC.
func (o *Outbox) try(ctx context.Context, r *txRun) (txResult, error) {
	var (
		res     txResult
		fnErr   error
		execed  bool
		cmds    []redis.Cmder
		execErr error
		ob      *txOutbox
	)
	err := o.rdb.Watch(ctx, func(tx *redis.Tx) error {
		if r.mark != "" {
			n, err := tx.Exists(ctx, r.mark).Result()
			if err != nil {
				return err
			}
			if n > 0 {
				return nil // handled before: its effects and messages are committed
			}
		}
		pipe := tx.TxPipeline()
		ob = &txOutbox{pipe: pipe, stream: o.k.stream(), direct: r.direct}
		if err := r.fn(context.WithValue(transport.WithOutbox(ctx, ob), readerKey{}, tx), pipe); err != nil {
			fnErr = err
			return err
		}
		if r.mark != "" {
			pipe.Set(ctx, r.mark, "done", o.oc.InboxTTL)
		}
		if r.version != "" {
			pipe.Incr(ctx, r.version)
			pipe.PExpire(ctx, r.version, versionTTL)
		}
		if err := ctx.Err(); err != nil {
			return err // not sent
		}
		execed = true
		cmds, execErr = pipe.Exec(ctx)
		return nil
	}, r.watch...)
	switch {
	case fnErr != nil:
		return res, fnErr
	case err != nil:
		// WATCH, the mark's check or the context failed before EXEC was sent.
		return res, cqrs.Errorf(cqrs.CodeUnavailable, "redismod: outbox tx: %w", scrub(err, o.cfg))
	case !execed:
		return res, nil // skipped: the mark was there
	}
	committed, err := o.execOutcome(cmds, execErr)
	if committed {
		res.wrote, res.streams = ob.n, ob.streams
	}
	res.conflict = errors.Is(execErr, redis.TxFailedErr)
	return res, err
}

// execOutcome tells what an EXEC did from its commands' replies: whether
// it committed, and the error Tx returns.
func (o *Outbox) execOutcome(cmds []redis.Cmder, err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if errors.Is(err, redis.TxFailedErr) {
		return false, nil // a watched key changed: run again
	}
	ran := false
	var cross, first error
	for _, c := range cmds {
		cerr := c.Err()
		if cerr == nil {
			ran = true // EXEC ran: the others' errors are their own
			continue
		}
		if first == nil {
			first = cerr
		}
		if cross == nil && outboxCrossSlot(cerr) {
			cross = cerr
		}
	}
	if first == nil {
		first = err
	}
	switch {
	case ran:
		return true, fmt.Errorf("redismod: outbox tx: committed, but a command failed and Redis does not roll back: %w", scrub(first, o.cfg))
	case outboxCrossSlot(err) || cross != nil:
		if cross == nil {
			cross = err
		}
		return false, fmt.Errorf("%w: the outbox %s is in slot %d; build every key of a Tx with Outbox.Key: %w", ErrCrossSlot, o.k.tag, o.slot, scrub(cross, o.cfg))
	case isRedisReply(err):
		return false, fmt.Errorf("redismod: outbox tx: EXEC refused: %w", scrub(first, o.cfg))
	case outboxNotSent(err):
		return false, fmt.Errorf("redismod: outbox tx: %w: %w", cqrs.ErrUnavailable, scrub(err, o.cfg))
	}
	return false, fmt.Errorf("redismod: outbox tx: EXEC: %w: %w", cqrs.ErrOutcomeUnknown, scrub(err, o.cfg))
}

// wrote wakes the relay, or registers the streams written directly with
// their transport's janitor.
func (o *Outbox) wrote(res txResult) {
	if len(res.streams) == 0 {
		o.committed()
		return
	}
	if d := o.directTransport(); d != nil {
		for _, s := range res.streams {
			d.touch(s)
		}
	}
}

// isRedisReply reports whether err is a reply of the server (not a
// connection's failure).
func isRedisReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// outboxCrossSlot reports whether err is a cluster's refusal of a key
// outside the node's slot: CROSSSLOT (another slot of the same node),
// MOVED or ASK (another node's).
func outboxCrossSlot(err error) bool {
	if !isRedisReply(err) {
		return false
	}
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	return strings.HasPrefix(err.Error(), "CROSSSLOT")
}

// outboxNotSent reports whether err, the failure of a MULTI/EXEC, says
// Redis did not run it: no connection could be made (a refused or timed
// out dial, no pooled connection, a TLS certificate refused), the client
// is closed, or the write failed before its last byte, EXEC's, so Redis
// never read EXEC and drops the transaction with the connection. Every
// other failure (a read timeout, EOF or a reset while waiting) may come
// after Redis ran it.
func outboxNotSent(err error) bool {
	var (
		op     *net.OpError
		verify *tls.CertificateVerificationError
	)
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "write") {
		return true
	}
	return errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) ||
		errors.As(err, &verify)
}

// txOutbox queues a transaction's messages in its MULTI.
type txOutbox struct {
	pipe    redis.Pipeliner
	stream  string
	direct  *Transport
	n       int
	streams []string
}

var _ transport.Outbox = (*txOutbox)(nil)

// outboxFieldTopic is the field of an outbox entry that holds its topic,
// "event:OrderPlaced", beside the transport's entry fields.
const outboxFieldTopic = "topic"

// Add implements transport.Outbox.
func (b *txOutbox) Add(ctx context.Context, topic transport.Topic, env *transport.Envelope) error {
	if topic.Kind != transport.KindEvent && topic.Kind != transport.KindCommand {
		return fmt.Errorf("redismod: outbox: a %s is not sent through an outbox: only events and commands are durable", topic.Kind)
	}
	// A scheduled message goes through the relay, whose publish holds it
	// until its time; written straight into the stream it would go at once.
	if b.direct != nil && !env.Scheduled() {
		key := b.direct.k.stream(topic)
		b.pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: fields(env)})
		b.streams = append(b.streams, key)
	} else {
		b.pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, Values: fields(env, outboxFieldTopic, topic.Kind.String()+":"+topic.Name)})
	}
	b.n++
	return nil
}

type readerKey struct{}

// Reader returns what fn reads through inside a Tx: the transaction's own
// connection, the one holding its WATCH, so a Tx never needs a second
// connection from the pool (many Tx at once would otherwise hold every
// pooled connection and wait for one more). Outside a Tx it is the client.
func (o *Outbox) Reader(ctx context.Context) redis.Cmdable {
	if tx, ok := ctx.Value(readerKey{}).(*redis.Tx); ok {
		return tx
	}
	return o.rdb
}
