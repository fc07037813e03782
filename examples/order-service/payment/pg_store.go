package payment

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/pgmod"
)

// PostgresStore keeps charges in PostgreSQL. Charge is one transaction
// holding the charge, the delivered message's inbox mark and the outcome
// event (pgmod.DB.Tx).
type PostgresStore struct{ db *pgmod.DB }

var _ Store = (*PostgresStore)(nil)

// Migrate creates the charges table if it is missing.
func (s *PostgresStore) Migrate(ctx context.Context) error {
	return s.db.EnsureSchema(ctx, "payments", `CREATE TABLE IF NOT EXISTS charges (
	order_id     text        NOT NULL,
	amount_cents bigint      NOT NULL,
	message_id   text        NOT NULL,
	at           timestamptz NOT NULL
)`, `CREATE INDEX IF NOT EXISTS charges_order_id ON charges (order_id)`)
}

// Charge implements Store.
func (s *PostgresStore) Charge(ctx context.Context, c *Charge, then func(context.Context) error) error {
	var opts []pgmod.TxOption
	if c != nil {
		opts = append(opts, pgmod.Key(c.OrderID))
	}
	return s.db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if c != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO charges (order_id, amount_cents, message_id, at) VALUES ($1, $2, $3, $4)`,
				c.OrderID, c.AmountCents, c.MessageID, c.At); err != nil {
				return cqrs.Errorf(cqrs.CodeUnavailable, "payments store: %w", err)
			}
		}
		return then(ctx)
	}, opts...)
}

// Charges implements Store.
func (s *PostgresStore) Charges(ctx context.Context, orderID string) ([]Charge, error) {
	pool := s.db.Pool()
	if pool == nil {
		return nil, cqrs.Errorf(cqrs.CodeUnavailable, "payments store: not connected")
	}
	rows, err := pool.Query(ctx, `SELECT order_id, amount_cents, message_id, at FROM charges WHERE order_id = $1 ORDER BY at`, orderID)
	if err != nil {
		return nil, cqrs.Errorf(cqrs.CodeUnavailable, "payments store: %w", err)
	}
	defer rows.Close()
	cs := []Charge{}
	for rows.Next() {
		var c Charge
		if err := rows.Scan(&c.OrderID, &c.AmountCents, &c.MessageID, &c.At); err != nil {
			return nil, err
		}
		c.At = c.At.UTC()
		cs = append(cs, c)
	}
	return cs, rows.Err()
}
