// Package pgmod keeps a service's state, its outgoing messages and its
// inbox in PostgreSQL, in one transaction: exactly-once effects for
// handlers whose state lives in the same database.
//
//	fx.New(catga.Module, natsmod.Module, pgmod.Module, orders.Module) // DATABASE_URL=postgres://...
//
//	func (h *Charger) Handle(ctx context.Context, e StockReserved) error {
//		return h.db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
//			if _, err := tx.Exec(ctx, `INSERT INTO charges (order_id, cents) VALUES ($1, $2)`, e.OrderID, e.Total); err != nil {
//				return err
//			}
//			return h.bus.Publish(ctx, PaymentCompleted{OrderID: e.OrderID}) // into catga_outbox, in tx
//		}, pgmod.Key(e.OrderID))
//	}
//
// # What holds
//
//   - Outbox: inside [DB.Tx], bus.Publish and bus.Dispatch write the stamped
//     envelope into catga_outbox in the transaction; nothing is visible or
//     sent until commit, and a rollback sends nothing. The relay
//     (cqrs/outbox) publishes committed rows with the envelope id as the
//     broker's dedup id (Nats-Msg-Id), retries until acknowledged, and
//     deletes them. It is woken at commit in process and polls every
//     PG_OUTBOX_POLL (100 ms) for rows of other replicas or of a crashed
//     instance.
//   - One outbox per database: the relay publishes every row of
//     catga_outbox on its own bus's transport, so the services that share
//     a database must share a broker too; the usual layout is a database
//     (or a schema, through search_path in DATABASE_URL) per service.
//   - One relay at a time: each replica runs one; the one whose session
//     holds an advisory lock publishes, the others stand by (PG_OUTBOX_LEAD_RETRY).
//     A dead leader's session ends and its lock passes on. A row is
//     published once; a lost ack gives at most a duplicate, which
//     JetStream's duplicate window drops (the Redis transport's receivers
//     skip it by their inbox).
//   - Order: the rows of one transaction are published in the order they
//     were written; the rows of transactions that share a [Key] in their
//     commit order (they hold a transaction-scoped advisory lock on the key
//     from the start, so they commit one after the other). Rows without a
//     common key have no order among them beyond the outbox's sequence.
//     A batch whose publish fails part-way is retried from the failed row,
//     so a later row of that batch that was stored may precede it.
//   - Inbox: when Tx runs in a delivered message's handler, it marks
//     (service/handler, message id) in catga_inbox first, in the same
//     transaction. A redelivery after commit is skipped (acked without
//     running fn); a crash before commit leaves nothing, and the redelivery
//     runs. Register such handlers with cqrs.OwnInbox, so the claim-based
//     inbox does not hold a redelivery for its lease. Marks older than
//     PG_INBOX_TTL (7 days) are removed by a janitor.
//   - Outcomes: failing to begin is cqrs.CodeUnavailable (503); a commit
//     whose answer was lost wraps cqrs.ErrOutcomeUnknown.
//   - Round trips: a transaction that writes a row and publishes costs two,
//     BEGIN with its first statement and the outbox rows with COMMIT (pgx
//     batches); the relay removes a published batch with its next fetch.
//   - A row the broker refuses for good (too large for the server) moves to
//     catga_outbox_dead with its error ([OutboxStore.DeadRecords]).
//
// # Tables and migrations
//
// Start creates or upgrades catga_outbox, catga_outbox_dead, catga_inbox
// and catga_schema (the applied versions), each version once in a
// transaction, under an advisory lock so replicas starting together queue.
//
// # Configuration
//
// DATABASE_URL (a postgres:// URL or libpq key=value string; empty: the
// standard PG* variables), PG_MAX_CONNS (10; the relay's leader holds one),
// PG_CONNECT_TIMEOUT, PG_OUTBOX_BATCH (256), PG_OUTBOX_POLL (100ms),
// PG_OUTBOX_LEAD_RETRY (1s), PG_INBOX_TTL (168h), PG_JANITOR_INTERVAL (10m).
//
// # Metrics
//
// With telemetry on: catga.outbox.depth, catga.outbox.relay_lag (stamp to
// broker ack), catga.outbox.published, catga.outbox.publish_retries,
// catga.outbox.dead_lettered.
//
// # Choices
//
// The driver is github.com/jackc/pgx/v5 with pgxpool. The relay polls
// rather than LISTEN/NOTIFY: NOTIFY takes a database-wide lock at commit,
// which serialises every committing transaction that notifies (measured
// with BenchmarkTx, 16 writers on 2 cores: a transaction with pg_notify
// took 141 µs against 128 µs without, medians of 3 runs), and a commit in
// this process wakes the relay directly anyway; polling every 100 ms
// bounds the delay of rows committed by other replicas. Retries back off
// with github.com/cenkalti/backoff.
package pgmod
