package pgmod

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// TxOption tunes one Tx.
type TxOption func(*txOptions)

type txOptions struct {
	key string
	iso pgx.TxIsoLevel
}

// Key orders the transaction's messages with those of every other
// transaction of the same key (an aggregate's id, say): such transactions
// run one after the other (a transaction-scoped advisory lock on the key,
// taken first), so their messages are published in their commit order.
// Without a key, only the messages of one transaction are ordered among
// themselves.
func Key(key string) TxOption { return func(o *txOptions) { o.key = key } }

// Isolation sets the transaction's isolation level (default: the server's,
// usually read committed).
func Isolation(level pgx.TxIsoLevel) TxOption { return func(o *txOptions) { o.iso = level } }

// Tx runs fn in a transaction and commits it if fn returns nil. Inside fn,
// ctx carries the transaction's outbox: bus.Publish and bus.Dispatch with
// it write their envelopes into catga_outbox in the same transaction, so
// the messages exist exactly when fn's writes do; the relay publishes them
// after the commit.
//
// When ctx is a delivered message's handler context, Tx is also its inbox:
// it marks (service/handler, message id) in catga_inbox first, in the same
// transaction. A redelivery of a message whose transaction committed finds
// the mark, and Tx returns nil without calling fn; one whose first run
// died before commit finds nothing and runs. A second delivery running at
// the same moment waits on the first's mark and then skips or runs. Call
// Tx once per delivery (a second Tx in the same run would find the first's
// mark); register the handler with cqrs.OwnInbox so the claim-based inbox
// does not also hold it.
//
// Round trips: BEGIN is sent with the transaction's first statement (an
// Exec with arguments) and the outbox rows with COMMIT, so a transaction
// that writes a row and publishes costs two. Tx owns the transaction: fn's
// tx.Commit and tx.Rollback fail (return an error to roll back; savepoints
// through tx.Begin are fn's), and tx fails with pgx.ErrTxClosed once Tx
// has returned.
//
// Errors: one from fn is returned as it is. Failing to begin (the server
// down) has cqrs.CodeUnavailable: nothing happened; when BEGIN went with
// fn's first statement, that statement returns it. A commit whose answer
// was lost wraps cqrs.ErrOutcomeUnknown: it may have committed.
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error, opts ...TxOption) error {
	pool, err := db.conn()
	if err != nil {
		return err
	}
	var o txOptions
	for _, opt := range opts {
		opt(&o)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return cqrs.Errorf(cqrs.CodeUnavailable, "pgmod: begin: %w", db.scrub(err))
	}
	defer conn.Release()                                               // after the rollback below; a connection left mid-transaction is closed
	tx := newBoundTx(ctx, conn.Conn(), pgx.TxOptions{IsoLevel: o.iso}) // BEGIN goes with the first statement
	defer tx.end(context.WithoutCancel(ctx))                           // rolls back unless committed
	if err := db.prelude(ctx, tx, o.key); err != nil {
		if errors.Is(err, errHandled) {
			return nil // handled before: its effects and messages are committed
		}
		return err
	}
	ob := &txOutbox{key: o.key}
	if err := fn(transport.WithOutbox(ctx, ob), tx); err != nil {
		return err
	}
	if err := db.commit(ctx, tx, ob); err != nil {
		return err
	}
	if len(ob.rows.kinds) > 0 {
		db.committed()
	}
	return nil
}

// errHandled is prelude's answer for a delivery whose mark is there.
var errHandled = errors.New("pgmod: handled before")

// prelude takes the key's lock and marks the inbox, before fn runs.
func (db *DB) prelude(ctx context.Context, tx *boundTx, key string) error {
	if key != "" {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key); err != nil {
			return fmt.Errorf("pgmod: lock key %q: %w", key, db.scrub(err))
		}
	}
	m, ok := cqrs.MessageFrom(ctx)
	if !ok || !m.Delivered() {
		return nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO catga_inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		db.service+"/"+m.HandlerName(), m.ID())
	if err != nil {
		return fmt.Errorf("pgmod: inbox: %w", db.scrub(err))
	}
	if tag.RowsAffected() == 0 {
		return errHandled
	}
	return nil
}

// commit sends the outbox rows and COMMIT in one batch, with BEGIN if fn
// ran no statement: one round trip (the rows are written and committed by
// one pipeline of statements; PostgreSQL skips the COMMIT if the insert
// fails, and the deferred rollback ends the transaction). A transaction
// that neither began nor wrote the outbox has nothing to commit.
func (db *DB) commit(ctx context.Context, tx *boundTx, ob *txOutbox) error {
	var b pgx.Batch
	if tx.inner == nil {
		if len(ob.rows.kinds) == 0 {
			tx.ended.Store(true)
			return nil
		}
		b.BeginTx(tx.opts)
	}
	ob.queue(&b)
	b.Queue(`COMMIT`)
	br := tx.conn.SendBatch(ctx, &b)
	if tx.inner == nil {
		tx.inner = br.Tx() // for the rollback if the batch fails
	}
	if err := readCommit(br, b.Len()); err != nil {
		if isCommitUnknown(err) {
			return fmt.Errorf("pgmod: commit: %w: %w", cqrs.ErrOutcomeUnknown, db.scrub(err))
		}
		return fmt.Errorf("pgmod: commit: %w", db.scrub(err))
	}
	tx.ended.Store(true) // committed: nothing to roll back
	return nil
}

// readCommit reads the answers of a batch of n statements whose last is
// COMMIT, and closes it.
func readCommit(br pgx.BatchResults, n int) error {
	for range n - 1 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback // the transaction had failed before
	}
	return err
}

// isCommitUnknown tells a commit whose outcome the server never told (the
// connection broke after COMMIT was sent) from one it refused.
func isCommitUnknown(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false // the server answered: it did not commit
	}
	if pgconn.SafeToRetry(err) {
		return false // nothing was sent
	}
	return !errors.Is(err, pgx.ErrTxClosed) && !errors.Is(err, pgx.ErrTxCommitRollback)
}

// txOutbox collects a transaction's envelopes; commit writes them in one
// statement, sent with the COMMIT.
type txOutbox struct {
	key  string
	rows outboxRows
}

type outboxRows struct {
	kinds    []int16
	topics   []string
	ids      []string
	keys     []*string
	headers  []string
	payloads [][]byte
}

// Add implements transport.Outbox.
func (o *txOutbox) Add(_ context.Context, topic transport.Topic, env *transport.Envelope) error {
	h := encodeHeaders(env)
	r := &o.rows
	r.kinds = append(r.kinds, int16(topic.Kind))
	r.topics = append(r.topics, topic.Name)
	r.ids = append(r.ids, env.ID)
	if o.key != "" {
		r.keys = append(r.keys, &o.key)
	} else {
		r.keys = append(r.keys, nil)
	}
	r.headers = append(r.headers, h)
	r.payloads = append(r.payloads, env.Payload)
	return nil
}

// queue adds the insert of the collected rows to b, if there are any.
func (o *txOutbox) queue(b *pgx.Batch) {
	r := &o.rows
	if len(r.kinds) == 0 {
		return
	}
	b.Queue(`INSERT INTO catga_outbox (kind, topic, message_id, msg_key, headers, payload)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])`,
		r.kinds, r.topics, r.ids, r.keys, r.headers, r.payloads)
}
