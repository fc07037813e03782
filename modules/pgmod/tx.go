package pgmod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/catga-go/catga/cqrs"
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
// Errors: one from fn is returned as it is. Failing to begin (the server
// down) has cqrs.CodeUnavailable: nothing happened. A commit whose answer
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
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: o.iso})
	if err != nil {
		return cqrs.Errorf(cqrs.CodeUnavailable, "pgmod: begin: %w", db.scrub(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if o.key != "" {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, o.key); err != nil {
			return fmt.Errorf("pgmod: lock key %q: %w", o.key, db.scrub(err))
		}
	}
	if m, ok := cqrs.MessageFrom(ctx); ok && m.Delivered() {
		tag, err := tx.Exec(ctx, `INSERT INTO catga_inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			db.service+"/"+m.HandlerName(), m.ID())
		if err != nil {
			return fmt.Errorf("pgmod: inbox: %w", db.scrub(err))
		}
		if tag.RowsAffected() == 0 {
			return nil // handled before: its effects and messages are committed
		}
	}
	ob := &txOutbox{key: o.key}
	if err := fn(cqrs.WithOutbox(ctx, ob), tx); err != nil {
		return err
	}
	if err := ob.flush(ctx, tx); err != nil {
		return db.scrub(err)
	}
	if err := tx.Commit(ctx); err != nil {
		if isCommitUnknown(err) {
			return fmt.Errorf("pgmod: commit: %w: %w", cqrs.ErrOutcomeUnknown, db.scrub(err))
		}
		return fmt.Errorf("pgmod: commit: %w", db.scrub(err))
	}
	if len(ob.rows.kinds) > 0 {
		db.committed()
	}
	return nil
}

// isCommitUnknown tells a commit whose outcome the server never told (the
// connection broke after COMMIT was sent) from one it refused.
func isCommitUnknown(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false // the server answered: it did not commit
	}
	return !errors.Is(err, pgx.ErrTxClosed) && !errors.Is(err, pgx.ErrTxCommitRollback)
}

// txOutbox collects a transaction's envelopes and writes them in one
// statement before commit.
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

// Add implements cqrs.Outbox.
func (o *txOutbox) Add(_ context.Context, topic cqrs.Topic, env *cqrs.Envelope) error {
	h, err := encodeHeaders(env)
	if err != nil {
		return err
	}
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

func (o *txOutbox) flush(ctx context.Context, tx pgx.Tx) error {
	r := &o.rows
	if len(r.kinds) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO catga_outbox (kind, topic, message_id, msg_key, headers, payload)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])`,
		r.kinds, r.topics, r.ids, r.keys, r.headers, r.payloads)
	if err != nil {
		return fmt.Errorf("pgmod: write outbox: %w", err)
	}
	return nil
}

// encodeHeaders writes env's headers as a JSON object.
func encodeHeaders(env *cqrs.Envelope) (string, error) {
	m := make(map[string]string, 12)
	env.EachHeader(func(k, v string) { m[k] = v })
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("pgmod: encode headers of %s: %w", env.ID, err)
	}
	return string(b), nil
}

// decodeHeaders reads back what encodeHeaders wrote.
func decodeHeaders(h string, payload []byte) (*cqrs.Envelope, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(h), &m); err != nil {
		return nil, fmt.Errorf("pgmod: outbox headers: %w", err)
	}
	return cqrs.ParseHeaders(func(k string) string { return m[k] }, payload)
}
