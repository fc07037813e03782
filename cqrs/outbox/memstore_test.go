package outbox_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/cqrs/transport"
)

// memOutbox is an outbox in memory: the suite's reference store, and the
// relay's unit test without a database.
type memOutbox struct {
	mu   sync.Mutex
	seq  int
	rows []outbox.Record
	dead []outbox.Record
	lead sync.Mutex
	keys sync.Map // key -> *sync.Mutex
}

type memLead struct {
	o    *memOutbox
	once sync.Once
	lost chan struct{}
}

func (l *memLead) Lost() <-chan struct{} { return l.lost }
func (l *memLead) Release(context.Context) error {
	l.once.Do(l.o.lead.Unlock)
	return nil
}

func (o *memOutbox) Lead(ctx context.Context) (outbox.Lead, error) {
	got := make(chan struct{})
	go func() { o.lead.Lock(); close(got) }()
	select {
	case <-got:
		return &memLead{o: o, lost: make(chan struct{})}, nil
	case <-ctx.Done():
		go func() { <-got; o.lead.Unlock() }()
		return nil, ctx.Err()
	}
}

func (o *memOutbox) Fetch(_ context.Context, max int) ([]outbox.Record, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(max, len(o.rows))
	return append([]outbox.Record(nil), o.rows[:n]...), nil
}

func (o *memOutbox) Remove(_ context.Context, recs []outbox.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	gone := map[string]bool{}
	for _, r := range recs {
		gone[r.Ref] = true
	}
	kept := o.rows[:0]
	for _, r := range o.rows {
		if !gone[r.Ref] {
			kept = append(kept, r)
		}
	}
	o.rows = kept
	return nil
}

func (o *memOutbox) Bury(ctx context.Context, rec outbox.Record, _ error) error {
	o.mu.Lock()
	o.dead = append(o.dead, rec)
	o.mu.Unlock()
	return o.Remove(ctx, []outbox.Record{rec})
}

func (o *memOutbox) Depth(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.rows)), nil
}

// tx collects the transaction's records and appends them at commit, under
// the key's lock for the whole transaction.
func (o *memOutbox) tx(ctx context.Context, key string, fn func(context.Context) error) error {
	if key != "" {
		m, _ := o.keys.LoadOrStore(key, &sync.Mutex{})
		m.(*sync.Mutex).Lock()
		defer m.(*sync.Mutex).Unlock()
	}
	var pending []outbox.Record
	ctx = transport.WithOutbox(ctx, transport.OutboxFunc(func(_ context.Context, t transport.Topic, env *transport.Envelope) error {
		pending = append(pending, outbox.Record{Topic: t, Envelope: env.Clone()})
		return nil
	}))
	if err := fn(ctx); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range pending {
		o.seq++
		r.Ref = strconv.Itoa(o.seq)
		o.rows = append(o.rows, r)
	}
	return nil
}

func TestRelay_MemoryOutboxConformance(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) outboxtest.Harness {
		o := &memOutbox{}
		return outboxtest.Harness{
			Open: func(*testing.T) outbox.Store { return o },
			Tx:   o.tx,
			Dead: func(*testing.T) int {
				o.mu.Lock()
				defer o.mu.Unlock()
				return len(o.dead)
			},
		}
	})
}

// memFolding is memOutbox removing with its next fetch (RemoveFetcher),
// as pgmod's store does.
type memFolding struct{ *memOutbox }

func (o memFolding) RemoveAndFetch(ctx context.Context, done []outbox.Record, max int) ([]outbox.Record, error) {
	if err := o.Remove(ctx, done); err != nil {
		return nil, err
	}
	return o.Fetch(ctx, max)
}

func TestRelay_FoldingOutboxConformance(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) outboxtest.Harness {
		o := &memOutbox{}
		return outboxtest.Harness{
			Open: func(*testing.T) outbox.Store { return memFolding{o} },
			Tx:   o.tx,
			Dead: func(*testing.T) int {
				o.mu.Lock()
				defer o.mu.Unlock()
				return len(o.dead)
			},
		}
	})
}
