package pgmod

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/cqrs/flow"
)

// FlowStore keeps flow instances (package cqrs/flow) in catga_flows and
// catga_flow_history, in the transactions of Tx: a step's state, its
// history entry, what it sent (the outbox) and its delivery's inbox mark
// commit together. Steps of one instance are serialised by the instance's
// row lock (and Tx's Key lock on "flow/<flow>/<key>", which also keeps
// their messages in order).
type FlowStore struct{ db *DB }

var _ flow.Store = (*FlowStore)(nil)

// FlowStore returns the store of flow instances on db.
func (db *DB) FlowStore() *FlowStore { return &FlowStore{db: db} }

// errFlowSkip rolls back a run whose function returned flow.ErrSkip.
var errFlowSkip = errors.New("pgmod: flow run skipped")

// Run implements flow.Store.
func (s *FlowStore) Run(ctx context.Context, name, key string, fn func(ctx context.Context, in *flow.Instance) error) error {
	err := s.db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// A first row for a new instance, so that a concurrent first run
		// waits on it; rolled back with the transaction if nothing is saved.
		if _, err := tx.Exec(ctx, `INSERT INTO catga_flows (flow, key, version, state, created_at, updated_at)
			VALUES ($1, $2, 0, '', now(), now()) ON CONFLICT DO NOTHING`, name, key); err != nil {
			return fmt.Errorf("pgmod: flow %s/%s: %w", name, key, s.db.scrub(err))
		}
		in, err := s.load(ctx, tx, name, key, true)
		if err != nil {
			return err
		}
		had := len(in.History)
		if err := fn(ctx, in); err != nil {
			if errors.Is(err, flow.ErrSkip) {
				return errFlowSkip
			}
			return err
		}
		var b pgx.Batch
		b.Queue(`UPDATE catga_flows SET version = version + 1, state = $3, updated_at = now() WHERE flow = $1 AND key = $2`, name, key, []byte(in.State))
		for i := had; i < len(in.History); i++ {
			e := in.History[i]
			b.Queue(`INSERT INTO catga_flow_history (flow, key, seq, step, message_id, at, note) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				name, key, i, e.Step, e.MessageID, e.At, e.Note)
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("pgmod: flow %s/%s: save: %w", name, key, s.db.scrub(err))
		}
		return nil
	}, Key("flow/"+name+"/"+key))
	if errors.Is(err, errFlowSkip) {
		return nil
	}
	return err
}

// Get implements flow.Store.
func (s *FlowStore) Get(ctx context.Context, name, key string) (*flow.Instance, error) {
	pool, err := s.db.conn()
	if err != nil {
		return nil, err
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("pgmod: flow %s/%s: %w", name, key, s.db.scrub(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	in, err := s.load(ctx, tx, name, key, false)
	if err != nil {
		return nil, err
	}
	if in.Version == 0 {
		return nil, flow.ErrNotFound
	}
	return in, nil
}

// load reads an instance and its history; lock takes its row's lock.
func (s *FlowStore) load(ctx context.Context, tx pgx.Tx, name, key string, lock bool) (*flow.Instance, error) {
	q := `SELECT version, state, created_at, updated_at FROM catga_flows WHERE flow = $1 AND key = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	in := &flow.Instance{Flow: name, Key: key}
	var state []byte
	err := tx.QueryRow(ctx, q, name, key).Scan(&in.Version, &state, &in.Created, &in.Updated)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return in, nil
	case err != nil:
		return nil, fmt.Errorf("pgmod: flow %s/%s: %w", name, key, s.db.scrub(err))
	}
	if in.Version == 0 {
		in.Created, in.Updated = time.Time{}, time.Time{}
		return in, nil // the placeholder of a first run
	}
	in.State = state
	rows, err := tx.Query(ctx, `SELECT step, message_id, at, note FROM catga_flow_history WHERE flow = $1 AND key = $2 ORDER BY seq`, name, key)
	if err != nil {
		return nil, fmt.Errorf("pgmod: flow %s/%s: history: %w", name, key, s.db.scrub(err))
	}
	in.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (flow.Entry, error) {
		var e flow.Entry
		err := r.Scan(&e.Step, &e.MessageID, &e.At, &e.Note)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgmod: flow %s/%s: history: %w", name, key, s.db.scrub(err))
	}
	in.Created, in.Updated = in.Created.UTC(), in.Updated.UTC()
	return in, nil
}
