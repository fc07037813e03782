package pgmod_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/modules/pgmod"
)

// Tx sends BEGIN with the first statement and COMMIT with the outbox
// rows; these cases check that every way a transaction can start and end
// still commits all or nothing.

func txBus(t *testing.T) *cqrs.Bus {
	t.Helper()
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

func effect(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ($1, 'h')`, id) // arguments: BEGIN goes with it
	return err
}

func TestTx_EachFirstStatementCommitsAllOrNothing(t *testing.T) {
	db := newDB(t, "orders")
	bus := txBus(t)
	firsts := map[string]func(ctx context.Context, tx pgx.Tx, id string) error{
		"exec with arguments": effect,
		"exec without": func(ctx context.Context, tx pgx.Tx, id string) error {
			_, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ('`+id+`', 'h')`)
			return err
		},
		"query": func(ctx context.Context, tx pgx.Tx, id string) error {
			var got string
			return tx.QueryRow(ctx, `INSERT INTO effects (message_id, handler) VALUES ($1, 'h') RETURNING message_id`, id).Scan(&got)
		},
		"batch": func(ctx context.Context, tx pgx.Tx, id string) error {
			var b pgx.Batch
			b.Queue(`INSERT INTO effects (message_id, handler) VALUES ($1, 'h')`, id)
			return tx.SendBatch(ctx, &b).Close()
		},
		"none": func(context.Context, pgx.Tx, string) error { return nil }, // BEGIN goes with the outbox rows
	}
	for name, first := range firsts {
		for _, fail := range []bool{false, true} {
			id := name
			if fail {
				id += " failed"
			}
			err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
				if err := first(ctx, tx, id); err != nil {
					return err
				}
				if err := bus.Publish(ctx, Paid{OrderID: id}); err != nil {
					return err
				}
				if fail {
					return errors.New("fn failed")
				}
				return nil
			})
			if (err != nil) != fail {
				t.Fatalf("%s: Tx: %v", id, err)
			}
			wantEffects, wantRows := 1, 1
			if name == "none" {
				wantEffects = 0
			}
			if fail {
				wantEffects, wantRows = 0, 0
			}
			if n := count(t, db, `SELECT count(*) FROM effects WHERE message_id = $1`, id); n != wantEffects {
				t.Errorf("%s: %d effects, want %d", id, n, wantEffects)
			}
			if n := count(t, db, `SELECT count(*) FROM catga_outbox WHERE convert_from(payload, 'UTF8') LIKE '%"' || $1 || '"%'`, id); n != wantRows {
				t.Errorf("%s: %d outbox rows, want %d", id, n, wantRows)
			}
		}
	}
}

// A statement that failed leaves the transaction aborted: a fn that
// ignores the error and returns nil gets the commit's refusal, and nothing
// is written; the connection serves the next Tx.
func TestTx_AbortedTransactionCommitsNothing(t *testing.T) {
	db := newDB(t, "orders")
	bus := txBus(t)
	err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		_ = effect(ctx, tx, "before")
		_, _ = tx.Exec(ctx, `INSERT INTO no_such_table VALUES ($1)`, 1)
		return bus.Publish(ctx, Paid{OrderID: "o1"})
	})
	if err == nil || errors.Is(err, cqrs.ErrOutcomeUnknown) {
		t.Fatalf("Tx after a failed statement: %v, want a refused commit", err)
	}
	if e, o := count(t, db, `SELECT count(*) FROM effects`), count(t, db, `SELECT count(*) FROM catga_outbox`); e != 0 || o != 0 {
		t.Fatalf("effects %d, outbox %d; want none", e, o)
	}
	db.Pool().Reset() // the next Tx takes a fresh connection or a reused one; both must work
	if err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error { return effect(ctx, tx, "after") }); err != nil {
		t.Fatal(err)
	}
}

func TestTx_IsolationAppliesWithAFoldedBegin(t *testing.T) {
	db := newDB(t, "orders")
	var level string
	err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		if err := effect(ctx, tx, "e"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&level)
	}, pgmod.Isolation(pgx.Serializable))
	if err != nil || level != "serializable" {
		t.Fatalf("isolation %q, %v; want serializable", level, err)
	}
}

func TestTx_SavepointRollsBackOnlyItsStatements(t *testing.T) {
	db := newDB(t, "orders")
	err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		if err := effect(ctx, tx, "kept"); err != nil {
			return err
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if err := effect(ctx, sp, "undone"); err != nil {
			return err
		}
		return sp.Rollback(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, u := count(t, db, `SELECT count(*) FROM effects WHERE message_id = 'kept'`), count(t, db, `SELECT count(*) FROM effects WHERE message_id = 'undone'`); k != 1 || u != 0 {
		t.Fatalf("kept %d, undone %d; want 1 and 0", k, u)
	}
}

// fn does not end the transaction itself, and the transaction cannot be
// used once Tx has returned.
func TestTx_OwnsItsTransaction(t *testing.T) {
	db := newDB(t, "orders")
	var kept pgx.Tx
	err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		kept = tx
		if err := effect(ctx, tx, "e"); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err == nil {
			t.Error("fn's Commit succeeded")
		}
		if err := tx.Rollback(ctx); err == nil {
			t.Error("fn's Rollback succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM effects`); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	ctx := context.Background()
	if _, err := kept.Exec(ctx, `SELECT $1::int`, 1); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("Exec after Tx returned: %v, want pgx.ErrTxClosed", err)
	}
	var n int
	if err := kept.QueryRow(ctx, `SELECT 1`).Scan(&n); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("QueryRow after Tx returned: %v, want pgx.ErrTxClosed", err)
	}
	if err := kept.SendBatch(ctx, &pgx.Batch{}).Close(); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("SendBatch after Tx returned: %v, want pgx.ErrTxClosed", err)
	}
}

// A first statement the server refuses (folded with BEGIN, prepared
// first) fails as it would on its own, not as a failure to begin.
func TestTx_BadFirstStatementIsItsOwnError(t *testing.T) {
	db := newDB(t, "orders")
	err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO no_such_table VALUES ($1)`, 1)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P01" || cqrs.CodeOf(err) == cqrs.CodeUnavailable {
			t.Errorf("bad first statement: %v (code %s), want undefined_table", err, cqrs.CodeOf(err))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error { return effect(ctx, tx, "after") }); err != nil {
		t.Fatal(err)
	}
}
