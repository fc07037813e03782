// Package outboxtest is the conformance suite of outbox stores
// (outbox.Store with its store's transaction helper): every store runs it
// from its own test, as cqrstest.TestTransport is run by transports.
//
//	func TestOutboxConformance(t *testing.T) {
//		outboxtest.TestStore(t, func(t *testing.T) outboxtest.Harness {
//			db := newDB(t) // a fresh outbox per case
//			return outboxtest.Harness{
//				Open: func(t *testing.T) outbox.Store { return db.Outbox() },
//				Tx: func(ctx context.Context, key string, fn func(context.Context) error) error {
//					return db.Tx(ctx, func(ctx context.Context, _ pgx.Tx) error { return fn(ctx) }, pgmod.Key(key))
//				},
//			}
//		})
//	}
//
// It checks: a commit is published, in order, with the envelope ids the
// bus stamped; a rollback publishes nothing; rows committed while no relay
// ran (a crash after commit) are published when one starts; two relays
// over one outbox publish each row once and keep each key's commit order;
// a failed publish is retried until stored; a row refused for good is
// buried; stop drains; and the outbox is empty once relayed (bounded).
package outboxtest
