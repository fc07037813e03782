package pgmod_test

import (
	"context"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/pgmod"
)

type StockReserved struct {
	OrderID string
	Total   int64
}

type PaymentCompleted struct{ OrderID string }

// Charger charges an order and publishes the outcome in one transaction,
// which is also the delivered message's inbox.
type Charger struct {
	db  *pgmod.DB
	bus *cqrs.Bus
}

func (c *Charger) Handle(ctx context.Context, e StockReserved) error {
	return c.db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO charges (order_id, cents) VALUES ($1, $2)`, e.OrderID, e.Total)
		if err != nil {
			return err
		}
		return c.bus.Publish(ctx, PaymentCompleted{OrderID: e.OrderID}) // into catga_outbox, in tx
	}, pgmod.Key(e.OrderID))
}

// A service whose state, outbox and inbox live in PostgreSQL
// (DATABASE_URL), its messages on NATS (NATS_URL).
func Example() {
	_ = func() error {
		return app.Run(catga.Module, natsmod.Module, pgmod.Module,
			fx.Invoke(func(db *pgmod.DB) error {
				return nil // db.EnsureSchema in an OnStart hook creates the service's own tables
			}),
			cqrs.Event[StockReserved](func(db *pgmod.DB, bus *cqrs.Bus) *Charger { return &Charger{db, bus} }, cqrs.OwnInbox()),
		)
	}
}

// Tx outside a handler (an HTTP route, a job): the row and the event
// commit together; with a Key, this order's events keep their commit order.
func ExampleDB_Tx() {
	_ = func(ctx context.Context, db *pgmod.DB, bus *cqrs.Bus) error {
		return db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'cancelled' WHERE id = $1`, "o1"); err != nil {
				return err
			}
			return bus.Publish(ctx, PaymentCompleted{OrderID: "o1"})
		}, pgmod.Key("o1"))
	}
}
