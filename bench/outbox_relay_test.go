package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/pgmod"
)

func init() {
	register("OutboxRelay", "catga", outboxRelay(catgaRelay))
}

// BenchmarkOutboxRelay is the relay alone: b.N events committed in the
// outbox before the timer (one transaction, one multi-row insert), then
// timed from the relay's start until the outbox has nothing left to send
// and JetStream holds every event (no consumer). rows/s is b.N over that.
func BenchmarkOutboxRelay(b *testing.B) {
	env := Env{NATS: natstest.Start(b).URL()}
	withPostgres(b)
	compare(b, "OutboxRelay", env)
}

// relaySetup fills a contender's outbox with n events and returns the
// stream they are published to, start (starts its relay), and drained
// (whether its outbox has nothing left to send).
type relaySetup func(b *testing.B, env Env, down *teardown, n int) (stream string, start func(), drained func() bool)

func outboxRelay(setup relaySetup) func(*testing.B, Env) {
	return func(b *testing.B, env Env) {
		var down teardown
		defer down.run()
		stream, start, drained := setup(b, env, &down, b.N)
		count := streamCounter(b, env.NATS, stream, &down)
		b.ResetTimer()
		start()
		// The stream's count is cheap to poll; drained may be a query, so
		// it is polled once the stream has every event.
		waitFor(b, time.Minute, 2*time.Millisecond, func() bool { return count() >= uint64(b.N) })
		waitFor(b, time.Minute, time.Millisecond, drained)
		b.StopTimer()
		if got := count(); got != uint64(b.N) {
			b.Fatalf("the stream holds %d events, want %d", got, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
}

// catgaRelay: the rows written by one DB.Tx publishing n events, and the
// relay as pgmod.Module builds it (pgmod's default batch and poll) on a
// natsmod transport.
func catgaRelay(b *testing.B, env Env, down *teardown, n int) (string, func(), func() bool) {
	ctx := context.Background()
	cfg := outboxNATS(b, env.NATS, down)
	tr := outboxTransport(b, cfg, down)
	pub, err := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: tr})
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
	err = db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		for i := range n {
			if err := pub.Publish(ctx, OrderPlaced{OrderID: strconv.Itoa(i), Cents: 1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	pc := pgmod.Config{}.WithDefaults()
	relay, err := outbox.New(db.Outbox(), tr, outbox.Config{Batch: pc.OutboxBatch, Poll: pc.OutboxPoll}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := func() {
		if err := relay.Start(ctx); err != nil {
			b.Fatal(err)
		}
		down.push(func() { _ = relay.Stop(ctx) })
	}
	drained := func() bool {
		d, err := db.Outbox().Depth(ctx)
		return err == nil && d == 0
	}
	return cfg.StreamPrefix + "_EVENTS", start, drained
}

// streamCounter returns a function counting the messages in stream.
func streamCounter(b *testing.B, natsURL, name string, down *teardown) func() uint64 {
	b.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	down.push(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		b.Fatalf("stream %s: %v", name, err)
	}
	return func() uint64 {
		info, err := s.Info(ctx)
		if err != nil {
			b.Errorf("stream %s: %v", name, err)
			return 0
		}
		return info.State.Msgs
	}
}
