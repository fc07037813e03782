package pgmod_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

// newDB returns a started DB on a database of its own.
func newDB(t *testing.T, service string) *pgmod.DB {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	db, err := pgmod.New(pgmod.Config{URL: url, OutboxPoll: 20 * time.Millisecond, LeadRetry: 50 * time.Millisecond}, service, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE effects (message_id text NOT NULL, handler text NOT NULL, n int NOT NULL DEFAULT 0)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestOutboxConformance(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) outboxtest.Harness {
		db := newDB(t, "svc")
		return outboxtest.Harness{
			Open: func(*testing.T) outbox.Store { return db.Outbox() },
			Tx: func(ctx context.Context, key string, fn func(context.Context) error) error {
				var opts []pgmod.TxOption
				if key != "" {
					opts = append(opts, pgmod.Key(key))
				}
				return db.Tx(ctx, func(ctx context.Context, _ pgx.Tx) error { return fn(ctx) }, opts...)
			},
			Dead: func(t *testing.T) int {
				d, err := db.Outbox().DeadRecords(context.Background(), 100)
				if err != nil {
					t.Fatal(err)
				}
				return len(d)
			},
		}
	})
}

type Charged struct{ OrderID string }

func count(t *testing.T, db *pgmod.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// deliveryBus is a bus on the memory transport whose handler of Charged
// runs fn in a transaction of db.
func deliveryBus(t *testing.T, db *pgmod.DB, concurrency int, fn func(ctx context.Context, tx pgx.Tx, e Charged) error) (*cqrs.Bus, *memory.Transport) {
	t.Helper()
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	b, err := cqrs.New(cqrs.Options{Service: "payment", Instance: "i1", Transport: tr, Concurrency: concurrency,
		Delivery:   cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: &inbox.Memory{}, Service: "payment", Retry: cqrs.RetryPolicy{Attempts: 1}}),
		Redelivery: cqrs.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Charged](func(ctx context.Context, e Charged) error {
			return db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error { return fn(ctx, tx, e) })
		}), cqrs.OwnInbox(), cqrs.HandlerName("charger")))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})
	return b, tr
}

func deliverTwice(t *testing.T, tr *memory.Transport) string {
	t.Helper()
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "Charged", Kind: transport.KindEvent, ContentType: "application/json", Payload: []byte(`{"OrderID":"o1"}`)}
	for range 2 {
		if err := tr.Publish(context.Background(), transport.Topic{Kind: transport.KindEvent, Name: "Charged"}, env); err != nil {
			t.Fatal(err)
		}
	}
	return env.ID
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTx_RedeliveryAfterCommitIsSkipped(t *testing.T) {
	db := newDB(t, "payment")
	var runs atomic.Int32
	_, tr := deliveryBus(t, db, 1, func(ctx context.Context, tx pgx.Tx, e Charged) error {
		runs.Add(1)
		m, _ := cqrs.MessageFrom(ctx)
		_, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ($1, 'charger')`, m.ID())
		return err
	})
	id := deliverTwice(t, tr)
	waitFor(t, "both deliveries settled", func() bool { return count(t, db, `SELECT count(*) FROM catga_inbox`) == 1 && runs.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n := count(t, db, `SELECT count(*) FROM effects WHERE message_id = $1`, id); n != 1 {
		t.Fatalf("%d effects of message %s delivered twice, want 1", n, id)
	}
	if r := runs.Load(); r != 1 {
		t.Fatalf("the transaction's fn ran %d times, want 1: the second delivery finds the inbox mark", r)
	}
	if n := count(t, db, `SELECT count(*) FROM catga_inbox WHERE consumer = 'payment/charger' AND message_id = $1`, id); n != 1 {
		t.Fatalf("inbox marks for (payment/charger, %s): %d, want 1", id, n)
	}
}

type Paid struct{ OrderID string }

func TestTx_FailureBeforeCommitLeavesNothingAndTheRedeliveryRuns(t *testing.T) {
	db := newDB(t, "payment")
	var runs atomic.Int32
	var bus *cqrs.Bus
	var seenBefore [2]int
	var busReady = make(chan struct{})
	b, tr := deliveryBus(t, db, 1, func(ctx context.Context, tx pgx.Tx, e Charged) error {
		<-busReady
		n := runs.Add(1)
		if n == 2 { // what the first, failed run left behind
			seenBefore[0] = count(t, db, `SELECT count(*) FROM effects`)
			seenBefore[1] = count(t, db, `SELECT count(*) FROM catga_outbox`) + count(t, db, `SELECT count(*) FROM catga_inbox`)
		}
		m, _ := cqrs.MessageFrom(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ($1, 'charger')`, m.ID()); err != nil {
			return err
		}
		if err := bus.Publish(ctx, Paid{OrderID: e.OrderID}); err != nil {
			return err
		}
		if n == 1 {
			return errors.New("crashed before commit")
		}
		return nil
	})
	bus = b
	close(busReady)
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "Charged", Kind: transport.KindEvent, ContentType: "application/json", Payload: []byte(`{"OrderID":"o1"}`)}
	if err := tr.Publish(context.Background(), transport.Topic{Kind: transport.KindEvent, Name: "Charged"}, env); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery committed", func() bool { return count(t, db, `SELECT count(*) FROM catga_inbox`) == 1 })
	if seenBefore != [2]int{0, 0} {
		t.Fatalf("after the failed run: %d effects and %d outbox/inbox rows, want none", seenBefore[0], seenBefore[1])
	}
	if e, o := count(t, db, `SELECT count(*) FROM effects`), count(t, db, `SELECT count(*) FROM catga_outbox WHERE topic = 'Paid'`); e != 1 || o != 1 {
		t.Fatalf("after the redelivery: %d effects and %d Paid in the outbox, want 1 and 1", e, o)
	}
}

func TestTx_ConcurrentDeliveriesOfOneMessageHaveOneEffect(t *testing.T) {
	db := newDB(t, "payment")
	var runs atomic.Int32
	_, tr := deliveryBus(t, db, 2, func(ctx context.Context, tx pgx.Tx, e Charged) error {
		runs.Add(1)
		m, _ := cqrs.MessageFrom(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ($1, 'charger')`, m.ID()); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // the second delivery arrives meanwhile
		return nil
	})
	id := deliverTwice(t, tr)
	waitFor(t, "committed", func() bool { return count(t, db, `SELECT count(*) FROM catga_inbox`) == 1 })
	time.Sleep(400 * time.Millisecond)
	if n := count(t, db, `SELECT count(*) FROM effects WHERE message_id = $1`, id); n != 1 {
		t.Fatalf("%d effects for two concurrent deliveries of %s, want 1", n, id)
	}
}

func TestTx_OutsideADeliveryWritesNoInboxMark(t *testing.T) {
	db := newDB(t, "orders")
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Tx(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO effects (message_id, handler) VALUES ('http', 'create')`); err != nil {
			return err
		}
		return bus.Publish(ctx, Paid{OrderID: "o1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if i, o := count(t, db, `SELECT count(*) FROM catga_inbox`), count(t, db, `SELECT count(*) FROM catga_outbox`); i != 0 || o != 1 {
		t.Fatalf("inbox %d, outbox %d; want 0 and 1", i, o)
	}
}

func TestTx_BeginOnAStoppedServerIsUnavailable(t *testing.T) {
	srv := pgtest.Start(t)
	db, err := pgmod.New(pgmod.Config{URL: srv.NewDatabase(t)}, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	srv.Kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// BEGIN goes with the first statement: an Exec with arguments (in one
	// batch with it) or anything else (on its own first).
	stmts := map[string]func(ctx context.Context, tx pgx.Tx) error{
		"Exec": func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT $1::int`, 1)
			return err
		},
		"Query": func(ctx context.Context, tx pgx.Tx) error {
			var n int
			return tx.QueryRow(ctx, `SELECT 1`).Scan(&n)
		},
	}
	for name, stmt := range stmts {
		err = db.Tx(ctx, stmt)
		if cqrs.CodeOf(err) != cqrs.CodeUnavailable {
			t.Fatalf("Tx with the server down, first statement by %s: %v (code %s), want code unavailable", name, err, cqrs.CodeOf(err))
		}
	}
}

func TestMigrate_ReplicasStartingAtOnceApplyEachVersionOnce(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := pgmod.New(pgmod.Config{URL: url}, "svc", nil)
			if err == nil {
				err = db.Start(context.Background())
				_ = db.Close(context.Background())
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a replica's start: %v", err)
		}
	}
	db := newDBAt(t, url)
	if n := count(t, db, `SELECT count(*) FROM catga_schema`); n != pgmod.SchemaVersion {
		t.Fatalf("catga_schema has %d rows, want %d (each version once)", n, pgmod.SchemaVersion)
	}
}

func newDBAt(t *testing.T, url string) *pgmod.DB {
	t.Helper()
	db, err := pgmod.New(pgmod.Config{URL: url}, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	return db
}

func TestConfig_BadURLIsNamedWithoutItsPassword(t *testing.T) {
	_, err := pgmod.New(pgmod.Config{URL: "postgres://u:s3cret-pw@host:notaport/db"}, "svc", nil)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("New with a bad URL: %v; want an error naming DATABASE_URL and hiding the password", err)
	}
	_, err = pgmod.New(pgmod.Config{MaxConns: 1, OutboxBatch: -1}, "svc", nil)
	if err == nil || !strings.Contains(err.Error(), "PG_MAX_CONNS") || !strings.Contains(err.Error(), "PG_OUTBOX_BATCH") {
		t.Fatalf("New with bad numbers: %v; want both variables named", err)
	}
}

func TestExpireInbox_RemovesOldMarksOnly(t *testing.T) {
	db := newDB(t, "svc")
	ctx := context.Background()
	if _, err := db.Pool().Exec(ctx, `INSERT INTO catga_inbox (consumer, message_id, handled_at) VALUES ('svc/h', 'old', now() - interval '2 hours'), ('svc/h', 'new', now())`); err != nil {
		t.Fatal(err)
	}
	n, err := db.ExpireInbox(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("ExpireInbox: %d, %v; want 1 removed", n, err)
	}
	if left := count(t, db, `SELECT count(*) FROM catga_inbox WHERE message_id = 'new'`); left != 1 {
		t.Fatalf("the recent mark is gone")
	}
}

var _ = fmt.Sprint
