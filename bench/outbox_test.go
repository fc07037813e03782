package bench

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

// The outbox comparisons: one op is one transaction that inserts an order
// row and publishes its OrderPlaced event, committed, carried to JetStream
// and received by a consumer. Each contender is a setup that returns that
// op; outboxThroughput and outboxLatency (outbox_latency_test.go) drive it.
//
//	catga          pgmod.DB.Tx with bus.Publish inside it, the relay that
//	               pgmod.Module starts on the bus's NATS transport, a natsmod
//	               subscriber
//	direct         the same insert (no transaction around it), then
//	               bus.Publish straight to natsmod: no outbox
//	watermill-sql  watermill_outbox_test.go

func init() {
	register("Outbox", "catga", outboxThroughput(catgaOutbox))
	register("Outbox", "direct", outboxThroughput(directPublish))
	register("OutboxLatency", "catga", outboxLatency(catgaOutbox))
}

func BenchmarkOutbox(b *testing.B) {
	env := Env{NATS: natstest.Start(b).URL()}
	withPostgres(b)
	compare(b, "Outbox", env)
}

// pgServer is the PostgreSQL server of the outbox benchmark running now
// (Env names only the brokers); each run takes a database of its own.
var pgServer *pgtest.Server

func withPostgres(b *testing.B) {
	b.Helper()
	pgServer = pgtest.Start(b)
	b.Cleanup(func() { pgServer = nil })
}

// outboxSetup builds a contender for one run: it returns op i (the
// transaction of order i) and calls received with an order's index for
// every event its consumer gets. What it starts it stops through down.
type outboxSetup func(b *testing.B, env Env, down *teardown, received func(i int)) (op func(i int) error)

// teardown is a run's stops, run last first; the run defers run, so a
// setup that fails half way stops what it started.
type teardown []func()

func (t *teardown) push(f func()) { *t = append(*t, f) }

// run has a pointer receiver so that "defer down.run()" runs the stops
// pushed after the defer statement.
func (t *teardown) run() {
	for i := len(*t) - 1; i >= 0; i-- {
		(*t)[i]()
	}
}

// outboxThroughput: b.N ops from Publishers goroutines, timed until the
// consumer has received the last event.
func outboxThroughput(setup outboxSetup) func(*testing.B, Env) {
	return func(b *testing.B, env Env) {
		var down teardown
		defer down.run()
		var handled atomic.Int64
		op := setup(b, env, &down, func(int) { handled.Add(1) })
		b.ResetTimer()
		PublishParallel(b, op)
		WaitCount(b, &handled, b.N)
		b.StopTimer() // teardown is not the work
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	}
}

const insertOrder = `INSERT INTO orders (order_id, cents) VALUES ($1, $2)`

// orderIndex reads back the index an op put in its order id.
func orderIndex(id string) int {
	i, err := strconv.Atoi(id)
	if err != nil {
		return -1
	}
	return i
}

// database creates a database of the run's own holding the business table,
// dropped when the run ends (the server's cleanup would only drop it at the
// end of the benchmark).
func database(b *testing.B, down *teardown) string {
	b.Helper()
	dbURL := pgServer.NewDatabase(b)
	u, _ := url.Parse(dbURL)
	down.push(func() {
		if err := pgExec(pgServer.URL(), "DROP DATABASE IF EXISTS "+pgx.Identifier{u.Path[1:]}.Sanitize()+" WITH (FORCE)"); err != nil {
			b.Errorf("drop database: %v", err)
		}
	})
	if err := pgExec(dbURL, `CREATE TABLE orders (order_id text PRIMARY KEY, cents bigint NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return dbURL
}

func pgExec(dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// outboxNATS is natsmod's configuration for a run: streams of the run's
// own, deleted when it ends.
func outboxNATS(b *testing.B, natsURL string, down *teardown) natsmod.Config {
	b.Helper()
	cfg := natsConfig(natsURL)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	down.push(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	down.push(func() {
		ctx := context.Background()
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			if strings.HasPrefix(name, cfg.StreamPrefix+"_") {
				if err := js.DeleteStream(ctx, name); err != nil {
					b.Errorf("delete stream %s: %v", name, err)
				}
			}
		}
		if err := names.Err(); err != nil {
			b.Errorf("list streams: %v", err)
		}
	})
	return cfg
}

// outboxTransport is a natsmod transport closed when the run ends.
func outboxTransport(b *testing.B, cfg natsmod.Config, down *teardown) *natsmod.Transport {
	b.Helper()
	tr, err := natsmod.New(cfg, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	down.push(func() { _ = tr.Close(context.Background()) })
	return tr
}

// outboxConsumer is a bus of service "bench" on a transport of its own,
// calling received with the order index of every OrderPlaced it handles.
func outboxConsumer(b *testing.B, cfg natsmod.Config, down *teardown, received func(int)) {
	b.Helper()
	ctx := context.Background()
	consumer, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "c1", Transport: outboxTransport(b, cfg, down)},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(_ context.Context, e OrderPlaced) error {
			received(orderIndex(e.OrderID))
			return nil
		})))
	if err != nil {
		b.Fatal(err)
	}
	if err := consumer.Start(ctx); err != nil {
		b.Fatal(err)
	}
	down.push(func() { _ = consumer.Stop(ctx) })
}

// catgaOutbox is the outbox as a user gets it: pgmod.Module in an fx app
// given the bus (it provides the DB and starts the relay on the bus's
// transport, woken by each commit, with its default configuration:
// PG_MAX_CONNS 10, PG_OUTBOX_BATCH 256, PG_OUTBOX_POLL 100ms), and a
// handler's transaction writing the row and publishing inside DB.Tx.
func catgaOutbox(b *testing.B, env Env, down *teardown, received func(int)) func(int) error {
	ctx := context.Background()
	cfg := outboxNATS(b, env.NATS, down)
	outboxConsumer(b, cfg, down, received)
	pub, err := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: outboxTransport(b, cfg, down)})
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("DATABASE_URL", database(b, down))
	var db *pgmod.DB
	app := fx.New(fx.NopLogger, fx.Supply(pub), pgmod.Module, fx.Populate(&db))
	if err := app.Start(ctx); err != nil {
		b.Fatal(err)
	}
	down.push(func() {
		if err := app.Stop(ctx); err != nil { // the relay drains, then the pool closes
			b.Error(err)
		}
	})
	return func(i int) error {
		id := strconv.Itoa(i)
		return db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, insertOrder, id, 1); err != nil {
				return err
			}
			return pub.Publish(ctx, OrderPlaced{OrderID: id, Cents: 1})
		})
	}
}

// directPublish is what the outbox replaces: the row inserted on its own
// (pgmod's pool), then the event published to JetStream by the bus, with
// nothing to make the two happen together.
func directPublish(b *testing.B, env Env, down *teardown, received func(int)) func(int) error {
	ctx := context.Background()
	cfg := outboxNATS(b, env.NATS, down)
	outboxConsumer(b, cfg, down, received)
	pub, err := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: outboxTransport(b, cfg, down)})
	if err != nil {
		b.Fatal(err)
	}
	db, err := pgmod.New(pgmod.Config{URL: database(b, down)}, "pub", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Start(ctx); err != nil {
		b.Fatal(err)
	}
	down.push(func() { _ = db.Close(ctx) })
	pool := db.Pool()
	return func(i int) error {
		id := strconv.Itoa(i)
		if _, err := pool.Exec(ctx, insertOrder, id, 1); err != nil {
			return err
		}
		return pub.Publish(ctx, OrderPlaced{OrderID: id, Cents: 1})
	}
}

// waitFor polls cond every step until it holds, failing after timeout.
func waitFor(b *testing.B, timeout, step time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("not done after %v", timeout)
		}
		time.Sleep(step)
	}
}
