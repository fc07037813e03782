package orders

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/pgmod"
)

// PostgresStore keeps orders in PostgreSQL, in the database whose outbox
// carries their events: Create writes the order and its OrderCreated in
// one transaction.
type PostgresStore struct{ db *pgmod.DB }

var _ Store = (*PostgresStore)(nil)

// NewPostgresStore returns a store on db; Migrate creates its table.
func NewPostgresStore(db *pgmod.DB) *PostgresStore { return &PostgresStore{db: db} }

// Migrate creates the orders table if it is missing.
func (s *PostgresStore) Migrate(ctx context.Context) error {
	return s.db.EnsureSchema(ctx, "orders", `CREATE TABLE IF NOT EXISTS orders (
	id          text PRIMARY KEY,
	customer_id text   NOT NULL,
	items       jsonb  NOT NULL,
	total_cents bigint NOT NULL,
	status      text   NOT NULL,
	history     jsonb  NOT NULL DEFAULT '[]'
)`, `CREATE INDEX IF NOT EXISTS orders_status ON orders (status)`)
}

// Create implements Store: the order and then's messages in one
// transaction, keyed by the order id so its events keep their order.
func (s *PostgresStore) Create(ctx context.Context, o Order, then func(context.Context) error) error {
	items, _ := json.Marshal(o.Items)
	return s.db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO orders (id, customer_id, items, total_cents, status) VALUES ($1, $2, $3, $4, $5)`,
			o.ID, o.CustomerID, items, o.TotalCents, o.Status)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return cqrs.Errorf(cqrs.CodeConflict, "order %s exists", o.ID)
		}
		if err != nil {
			return cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
		}
		return then(ctx)
	}, pgmod.Key(string(o.ID)))
}

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	var items, history []byte
	if err := row.Scan(&o.ID, &o.CustomerID, &items, &o.TotalCents, &o.Status, &history); err != nil {
		return o, err
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return o, err
	}
	if err := json.Unmarshal(history, &o.History); err != nil {
		return o, err
	}
	if o.History == nil {
		o.History = []HistoryEntry{}
	}
	return o, nil
}

const orderColumns = `id, customer_id, items, total_cents, status, history`

// Get implements Store.
func (s *PostgresStore) Get(ctx context.Context, id OrderID) (Order, error) {
	pool := s.db.Pool()
	if pool == nil {
		return Order{}, cqrs.Errorf(cqrs.CodeUnavailable, "orders store: not connected")
	}
	o, err := scanOrder(pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, notFound(id)
	}
	if err != nil {
		return Order{}, cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
	}
	return o, nil
}

// List implements Store.
func (s *PostgresStore) List(ctx context.Context, status Status) ([]Order, error) {
	pool := s.db.Pool()
	if pool == nil {
		return nil, cqrs.Errorf(cqrs.CodeUnavailable, "orders store: not connected")
	}
	rows, err := pool.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE $1 = '' OR status = $1 ORDER BY id`, status)
	if err != nil {
		return nil, cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
	}
	defer rows.Close()
	out := []Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Apply implements Store: the order row locked, the entry added unless its
// message id is there, the status moved to the furthest.
func (s *PostgresStore) Apply(ctx context.Context, id OrderID, e HistoryEntry, status Status) error {
	return s.db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		o, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(id)
		}
		if err != nil {
			return cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
		}
		for _, h := range o.History {
			if h.MessageID == e.MessageID {
				return nil
			}
		}
		history, _ := json.Marshal(append(o.History, e))
		_, err = tx.Exec(ctx, `UPDATE orders SET history = $2, status = $3 WHERE id = $1`, id, history, o.Status.Furthest(status))
		return err
	}, pgmod.Key(string(id)))
}
