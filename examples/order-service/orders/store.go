package orders

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/catga-go/catga/cqrs"
)

// Store keeps orders. Apply is idempotent per message id.
type Store interface {
	// Create stores o and runs then, which publishes the order's events,
	// in one transaction where the store has them (Postgres, Redis): the
	// events go into its outbox and exist exactly when the order does.
	// When then fails, nothing is stored.
	Create(ctx context.Context, o Order, then func(ctx context.Context) error) error
	Get(ctx context.Context, id OrderID) (Order, error)
	List(ctx context.Context, status Status) ([]Order, error)
	// Apply records e in the order's history unless its message id is there
	// already, and moves the status to the furthest of its own and status.
	Apply(ctx context.Context, id OrderID, e HistoryEntry, status Status) error
}

// MemoryStore is a Store in process memory.
type MemoryStore struct {
	mu     sync.Mutex
	orders map[OrderID]*Order
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{orders: map[OrderID]*Order{}} }

var _ Store = (*MemoryStore)(nil)

func notFound(id OrderID) error { return cqrs.Errorf(cqrs.CodeNotFound, "order %s not found", id) }

// Create implements Store. Memory has no transaction: the order is
// stored, then runs, and the order is removed again if then fails. Its
// events go to the in-process transport, where a failed publish is
// definite (nothing was sent).
func (s *MemoryStore) Create(ctx context.Context, o Order, then func(context.Context) error) error {
	s.mu.Lock()
	if _, ok := s.orders[o.ID]; ok {
		s.mu.Unlock()
		return cqrs.Errorf(cqrs.CodeConflict, "order %s exists", o.ID)
	}
	o.History = slices.Clone(o.History)
	s.orders[o.ID] = &o
	s.mu.Unlock()
	if err := then(ctx); err != nil {
		s.mu.Lock()
		delete(s.orders, o.ID)
		s.mu.Unlock()
		return err
	}
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, id OrderID) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, notFound(id)
	}
	return copyOrder(o), nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, status Status) ([]Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Order{}
	for _, o := range s.orders {
		if status == "" || o.Status == status {
			out = append(out, copyOrder(o))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Apply implements Store.
func (s *MemoryStore) Apply(_ context.Context, id OrderID, e HistoryEntry, status Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return notFound(id)
	}
	for _, h := range o.History {
		if h.MessageID == e.MessageID {
			return nil
		}
	}
	o.History = append(o.History, e)
	o.Status = o.Status.Furthest(status)
	return nil
}

func copyOrder(o *Order) Order {
	c := *o
	c.Items = slices.Clone(o.Items)
	c.History = slices.Clone(o.History)
	if c.History == nil {
		c.History = []HistoryEntry{}
	}
	return c
}
