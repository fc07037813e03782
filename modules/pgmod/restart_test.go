package pgmod_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

type Numbered = outboxtest.Numbered

// TestRestart_NothingAcknowledgedIsLost commits transactions that each
// publish one event, and handles deliveries in transactions with the
// inbox, while the server is shut down fast and, later, its postmaster
// SIGKILLed. Every commit that returned nil is relayed, nothing whose
// commit failed definitely is, and every delivery has exactly one effect;
// neither the relay nor the inbox needs a restart.
func TestRestart_NothingAcknowledgedIsLost(t *testing.T) {
	srv := pgtest.Start(t)
	db, err := pgmod.New(pgmod.Config{URL: srv.NewDatabase(t), OutboxPoll: 20 * time.Millisecond, LeadRetry: 100 * time.Millisecond, ConnectTimeout: time.Second}, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	if _, err := db.Pool().Exec(context.Background(), `CREATE TABLE effects (message_id text NOT NULL)`); err != nil {
		t.Fatal(err)
	}

	rec := &outboxtest.Recorder{}
	relay, err := outbox.New(db.Outbox(), rec, outbox.Config{Poll: 20 * time.Millisecond, RetryInitial: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.OnCommit(relay.Notify)
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer relay.Stop(context.Background())

	// Deliveries through the memory transport, handled with the inbox.
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	bus, err := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: tr, MaxDeliver: 1000,
		Delivery:   cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Service: "svc", Retry: cqrs.RetryPolicy{Attempts: 1}}),
		Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Charged](func(ctx context.Context, e Charged) error {
			return db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
				m, _ := cqrs.MessageFrom(ctx)
				_, err := tx.Exec(ctx, `INSERT INTO effects (message_id) VALUES ($1)`, m.ID())
				return err
			})
		}), cqrs.OwnInbox()))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer bus.Stop(context.Background())
	stamp, _ := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: rec})

	var (
		mu             sync.Mutex
		acked, unknown = map[int]bool{}, map[int]bool{}
		failed         int
		delivered      []string
		stop           = make(chan struct{})
		wg             sync.WaitGroup
	)
	wg.Add(2)
	go func() { // commits, one event each
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := db.Tx(ctx, func(ctx context.Context, _ pgx.Tx) error { return stamp.Publish(ctx, Numbered{Key: "k", N: n}) })
			cancel()
			mu.Lock()
			switch {
			case err == nil:
				acked[n] = true
			case errors.Is(err, cqrs.ErrOutcomeUnknown):
				unknown[n] = true
			default:
				failed++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	go func() { // deliveries, 200/s
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			env := &transport.Envelope{ID: cqrs.NewID(), Name: "Charged", Kind: transport.KindEvent, ContentType: "application/json", Payload: []byte(`{"OrderID":"o"}`)}
			if err := tr.Publish(context.Background(), transport.Topic{Kind: transport.KindEvent, Name: "Charged"}, env); err != nil {
				t.Errorf("memory publish: %v", err)
				return
			}
			mu.Lock()
			delivered = append(delivered, env.ID)
			mu.Unlock()
		}
	}()

	time.Sleep(1500 * time.Millisecond)
	srv.Restart(t) // fast shutdown, start again
	time.Sleep(1500 * time.Millisecond)
	srv.Kill(t) // the postmaster and its backends, SIGKILL
	time.Sleep(500 * time.Millisecond)
	srv.StartAgain(t)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	waitFor(t, "the outbox drained", func() bool {
		n, err := db.Outbox().Depth(context.Background())
		return err == nil && n == 0
	})
	published := map[int]int{}
	for _, m := range rec.Got() {
		var v Numbered
		if err := cqrs.JSON.Unmarshal(m.Envelope.Payload, &v); err != nil {
			t.Fatal(err)
		}
		published[v.N]++
	}
	var lost, phantom, dup int
	for n := range acked {
		if published[n] == 0 {
			lost++
		}
	}
	for n, c := range published {
		if !acked[n] && !unknown[n] {
			phantom++
		}
		dup += c - 1
	}
	t.Logf("commits: %d acknowledged, %d unknown, %d failed; published %d distinct (%d duplicates); lost %d, phantom %d",
		len(acked), len(unknown), failed, len(published), dup, lost, phantom)
	if lost != 0 || phantom != 0 {
		t.Fatalf("%d acknowledged commits not published, %d published that never committed", lost, phantom)
	}
	if len(acked) < 50 || failed == 0 {
		t.Fatalf("%d commits acknowledged and %d failed: the load did not span the outages", len(acked), failed)
	}

	waitFor(t, "every delivery handled", func() bool {
		var n int
		err := db.Pool().QueryRow(context.Background(), `SELECT count(DISTINCT message_id) FROM effects`).Scan(&n)
		return err == nil && n == len(delivered)
	})
	var total int
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM effects`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	t.Logf("deliveries: %d sent, %d effects", len(delivered), total)
	if total != len(delivered) {
		t.Fatalf("%d effects for %d deliveries: each must have exactly one", total, len(delivered))
	}
	_ = fmt.Sprint
}
