package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/catga-go/catga/modules/pgmod"
)

func init() {
	register("Outbox", "watermill-sql", outboxThroughput(wmOutbox(wmThroughputPoll)))
	register("OutboxLatency", "watermill-sql", outboxLatency(wmOutbox(wmLatencyPoll)))
	register("OutboxRelay", "watermill-sql", outboxRelay(wmRelay))
}

// Watermill's outbox tuned where its defaults are for safety. The doc of
// SubscribeBatchSize (default 100) says a larger one is faster: the
// forwarder's SQL subscriber reads wmOutboxBatch rows per query, as many as
// catga's relay. No doc advises on PollInterval (default 1s), the wait
// after a query found nothing; nothing wakes the forwarder at commit, as
// catga's relay is woken. Each comparison takes the value that measured
// best for Watermill here (2 cores): for throughput 100ms, catga's own
// poll (10ms was slower; the default 1s was no faster at 20000 ops, and
// makes a one-op run last a second, so go test would size the benchmark at
// b.N = 1); for latency 1ms (10ms gave a p50 of 4 ms, 100ms of 50 ms).
const (
	wmOutboxBatch    = 256
	wmThroughputPoll = 100 * time.Millisecond
	wmLatencyPoll    = time.Millisecond
	wmForwarderTopic = "events_to_forward" // the SQL table's topic
	wmForwarderGroup = "forwarder"
)

// wmOutbox is Watermill's outbox pattern as its forwarder docs lay it out,
// on PostgreSQL and JetStream: in each transaction (pgx, through
// watermill-sql's pgx adapter, a pool of pgmod's default size) the order
// row and, through a watermill-sql publisher of that transaction
// (DefaultPostgreSQLSchema) decorated by forwarder.NewPublisher, the event
// in its envelope; the forwarder component reads the envelopes with a
// watermill-sql subscriber (DefaultPostgreSQLOffsetsAdapter) and publishes
// each to JetStream with a watermill-nats publisher (TrackMsgId: the
// message UUID as Nats-Msg-Id, as catga's relay sends its envelope id); a
// watermill-nats subscriber configured as in wmNATSEvents consumes them.
func wmOutbox(poll time.Duration) outboxSetup {
	return func(b *testing.B, env Env, down *teardown, received func(int)) func(int) error {
		return wmOutboxRun(b, env, down, received, poll)
	}
}

func wmOutboxRun(b *testing.B, env Env, down *teardown, received func(int), poll time.Duration) func(int) error {
	before := runtime.NumGoroutine()
	down.push(func() { wmSettle(before) })
	ctx := context.Background()
	pool, sqlSub := wmOutboxStore(b, down, poll)
	// A stream (and subject) of the run's own, provisioned by the
	// subscriber and deleted after it has closed.
	topic := "wmoutbox_" + watermill.NewShortUUID()
	wmDeleteStream(b, env.NATS, topic, down)
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              env.NATS,
		QueueGroupPrefix: "watermill",
		JetStream: wmnats.JetStreamConfig{
			AutoProvision:    true,
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
			DurablePrefix:    "watermill",
			AckAsync:         true,
		},
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	consumed := make(chan struct{})
	down.push(func() { <-consumed }) // after the subscriber has closed its output
	down.push(func() {
		if err := sub.Close(); err != nil {
			b.Errorf("watermill nats subscriber close: %v", err)
		}
	})
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		close(consumed)
		b.Fatal(err)
	}
	go func() {
		defer close(consumed)
		for msg := range msgs {
			var e OrderPlaced
			if err := json.Unmarshal(msg.Payload, &e); err != nil {
				b.Error(err)
			}
			msg.Ack()
			received(orderIndex(e.OrderID))
		}
	}()
	wmForwarder(b, env, down, sqlSub)()

	return func(i int) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
		id := strconv.Itoa(i)
		if _, err := tx.Exec(ctx, insertOrder, id, 1); err != nil {
			return err
		}
		payload, err := json.Marshal(OrderPlaced{OrderID: id, Cents: 1})
		if err != nil {
			return err
		}
		if err := wmPublishInTx(tx, topic, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
}

// wmPublishInTx publishes msgs to topic through the outbox in tx: a
// watermill-sql publisher of the transaction (one per transaction, as
// watermill-sql requires) decorated by the forwarder's. It inserts msgs in
// one statement.
func wmPublishInTx(tx pgx.Tx, topic string, msgs ...*message.Message) error {
	sqlPub, err := wmsql.NewPublisher(wmsql.TxFromPgx(tx), wmsql.PublisherConfig{SchemaAdapter: wmSchema}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	pub := forwarder.NewPublisher(sqlPub, forwarder.PublisherConfig{ForwarderTopic: wmForwarderTopic})
	if err := pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("watermill-sql publish: %w", err)
	}
	return nil
}

var wmSchema = wmsql.DefaultPostgreSQLSchema{SubscribeBatchSize: wmOutboxBatch}

// wmOutboxStore is a database of the run's own with watermill-sql's tables
// (messages and offsets), its pool (pgx, pgmod's default size), and the
// forwarder's SQL subscriber, not subscribed yet.
func wmOutboxStore(b *testing.B, down *teardown, poll time.Duration) (*pgxpool.Pool, *wmsql.Subscriber) {
	b.Helper()
	pc, err := pgxpool.ParseConfig(database(b, down))
	if err != nil {
		b.Fatal(err)
	}
	pc.MaxConns = pgmod.Config{}.WithDefaults().MaxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		b.Fatal(err)
	}
	down.push(pool.Close)
	sqlSub, err := wmsql.NewSubscriber(wmsql.BeginnerFromPgx(pool), wmsql.SubscriberConfig{
		ConsumerGroup:    wmForwarderGroup,
		SchemaAdapter:    wmSchema,
		OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
		PollInterval:     poll,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	down.push(func() { _ = sqlSub.Close() })
	// The tables before the first transaction writes to them (a publisher
	// in a transaction may not create them).
	if err := sqlSub.SubscribeInitialize(wmForwarderTopic); err != nil {
		b.Fatal(err)
	}
	return pool, sqlSub
}

// wmForwarder builds the forwarder from sqlSub to JetStream; run starts
// it, returns once it is running, and it runs until the run ends.
func wmForwarder(b *testing.B, env Env, down *teardown, sqlSub *wmsql.Subscriber) (run func()) {
	b.Helper()
	logger := watermill.NopLogger{}
	natsPub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:       env.NATS,
		JetStream: wmnats.JetStreamConfig{TrackMsgId: true},
	}, logger)
	if err != nil {
		b.Fatal(err)
	}
	down.push(func() { _ = natsPub.Close() })
	fwd, err := forwarder.NewForwarder(sqlSub, natsPub, logger, forwarder.Config{ForwarderTopic: wmForwarderTopic})
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		ran := make(chan error, 1)
		go func() { ran <- fwd.Run(context.Background()) }()
		down.push(func() {
			if err := fwd.Close(); err != nil {
				b.Errorf("forwarder close: %v", err)
			}
			if err := <-ran; err != nil {
				b.Errorf("forwarder run: %v", err)
			}
		})
		select {
		case <-fwd.Running():
		case err := <-ran:
			ran <- err
			b.Fatalf("forwarder: %v", err)
		}
	}
}

// wmDeleteStream deletes stream when the run ends.
func wmDeleteStream(b *testing.B, natsURL, stream string, down *teardown) nats.JetStreamContext {
	b.Helper()
	admin, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	down.push(admin.Close)
	js, err := admin.JetStream()
	if err != nil {
		b.Fatal(err)
	}
	down.push(func() {
		if err := js.DeleteStream(stream); err != nil {
			b.Errorf("delete stream %s: %v", stream, err)
		}
	})
	return js
}

// wmRelay: n envelopes committed in one transaction (multi-row inserts of
// wmRelayChunk rows, under PostgreSQL's 65535 parameters a statement), the
// stream as watermill-nats provisions it, and the forwarder; drained when
// the forwarder's offset is the last row's.
func wmRelay(b *testing.B, env Env, down *teardown, n int) (string, func(), func() bool) {
	before := runtime.NumGoroutine()
	down.push(func() { wmSettle(before) })
	ctx := context.Background()
	pool, sqlSub := wmOutboxStore(b, down, wmThroughputPoll) // the rows are there at its first query
	topic := "wmrelay_" + watermill.NewShortUUID()
	js := wmDeleteStream(b, env.NATS, topic, down)
	if _, err := js.AddStream(&nats.StreamConfig{Name: topic, Subjects: []string{topic}}); err != nil {
		b.Fatal(err)
	}
	const wmRelayChunk = 10_000
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		msgs := make([]*message.Message, 0, min(n, wmRelayChunk))
		for i := range n {
			payload, err := json.Marshal(OrderPlaced{OrderID: strconv.Itoa(i), Cents: 1})
			if err != nil {
				return err
			}
			msgs = append(msgs, message.NewMessage(watermill.NewUUID(), payload))
			if len(msgs) == cap(msgs) || i == n-1 {
				if err := wmPublishInTx(tx, topic, msgs...); err != nil {
					return err
				}
				msgs = msgs[:0]
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var last int64
	if err := pool.QueryRow(ctx, `SELECT max("offset") FROM `+wmSchema.MessagesTable(wmForwarderTopic)).Scan(&last); err != nil {
		b.Fatal(err)
	}
	offsets := wmsql.DefaultPostgreSQLOffsetsAdapter{}.MessagesOffsetsTable(wmForwarderTopic)
	start := wmForwarder(b, env, down, sqlSub)
	drained := func() bool {
		var acked int64
		err := pool.QueryRow(ctx, `SELECT offset_acked FROM `+offsets+` WHERE consumer_group = $1`, wmForwarderGroup).Scan(&acked)
		return err == nil && acked == last
	}
	return topic, start, drained
}
