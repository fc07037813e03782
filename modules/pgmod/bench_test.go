package pgmod_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow/flowtest"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

// BenchmarkTx measures a transaction that writes one row and one outbox
// record, from 16 goroutines: as it is (the relay is woken in process and
// polls), and with a pg_notify in each transaction, which is what
// LISTEN/NOTIFY would add (NOTIFY takes a database-wide lock at commit).
func BenchmarkTx(b *testing.B) {
	for _, notify := range []bool{false, true} {
		name := "poll"
		if notify {
			name = "notify"
		}
		b.Run(name, func(b *testing.B) {
			db := benchDB(b)
			bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "i1", Transport: &outboxtest.Recorder{}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ('m', 'h')`); err != nil {
							return err
						}
						if notify {
							if _, err := tx.Exec(ctx, `SELECT pg_notify('catga_outbox', '')`); err != nil {
								return err
							}
						}
						return bus.Publish(ctx, outboxtest.Numbered{Key: "k", N: 1})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func benchDB(b *testing.B) *pgmod.DB {
	b.Helper()
	db, err := pgmod.New(pgmod.Config{URL: pgtest.Shared(b).NewDatabase(b), MaxConns: 20}, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close(context.Background()) })
	if _, err := db.Pool().Exec(context.Background(), `CREATE TABLE effects (message_id text NOT NULL, handler text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkFlowStep: one step of a flow on PostgreSQL (flowtest.BenchmarkStep).
func BenchmarkFlowStep(b *testing.B) {
	db := benchDB(b)
	bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		b.Fatal(err)
	}
	flowtest.BenchmarkStep(b, flowtest.Harness{Store: db.FlowStore(), Bus: bus})
}
