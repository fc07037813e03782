package outbox

import (
	"context"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// Record is one message waiting in an outbox: its topic and stamped
// envelope, and the store's handle for it.
type Record struct {
	Ref      string // the store's handle (a sequence number, a stream entry id)
	Topic    transport.Topic
	Envelope *transport.Envelope
	// Unreadable is set when the store could not read the record back (a
	// row written by a newer build, a damaged entry): the relay buries it
	// with this cause instead of publishing it.
	Unreadable error
}

// Store is an outbox's side of the relay. A store's own transaction helper
// writes records (pgmod.DB.Tx, redismod.Outbox.Tx); the relay reads them
// in order, publishes them and removes them. Every method is safe for
// concurrent use; several relays (one per replica) may share one outbox.
type Store interface {
	// Lead blocks until this relay holds the outbox's lead, so that one
	// relay at a time publishes it (the order guarantee rests on it), or
	// until ctx ends. A crashed holder's lead passes on within the store's
	// lease.
	Lead(ctx context.Context) (Lead, error)
	// Fetch returns up to max committed records, oldest first: in commit
	// order for the rows of one key, in write order within a transaction.
	Fetch(ctx context.Context, max int) ([]Record, error)
	// Remove deletes records that were published.
	Remove(ctx context.Context, recs []Record) error
	// Bury moves a record the broker refuses for good to the outbox's dead
	// letters, with the cause, and removes it from the outbox.
	Bury(ctx context.Context, rec Record, cause error) error
	// Depth counts the records waiting.
	Depth(ctx context.Context) (int64, error)
}

// RemoveFetcher is a Store that removes published records and fetches the
// next batch in one call (a database: one round trip instead of two). The
// relay then removes a batch with its next fetch, which follows at once
// (the fetch after a batch is the one that finds the outbox empty), and
// removes what is left with Remove when it stops leading. The removal and
// the fetch are one unit: if the call fails, neither happened.
type RemoveFetcher interface {
	Store
	// RemoveAndFetch deletes done, then returns up to max records as Fetch
	// does; none of done is among them.
	RemoveAndFetch(ctx context.Context, done []Record, max int) ([]Record, error)
}

// Lead is a held lead of an outbox.
type Lead interface {
	// Lost is closed when the lead is gone (its connection broke, its lease
	// could not be renewed): the relay stops publishing at once.
	Lost() <-chan struct{}
	// Release gives the lead up.
	Release(ctx context.Context) error
}

// DeadRecord is a record the broker refused for good.
type DeadRecord struct {
	Record
	Error string
	Time  time.Time
}
