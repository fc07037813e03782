// Package inventory is the inventory service: on OrderCreated it reserves
// every item and publishes StockReserved, or StockRejected when a SKU is
// "OUT-OF-STOCK". Every other SKU is always in stock; reservations are
// recorded, once per order.
package inventory

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
	"github.com/catga-go/catga/modules/redismod"
)

// OutOfStock is the SKU that is never in stock.
const OutOfStock = "OUT-OF-STOCK"

// Module is the inventory service.
var Module = fx.Module("inventory",
	fx.Provide(NewStore),
	cqrs.Event[contracts.OrderCreated](NewReserver),
)

// Store records reservations. Reserve is idempotent per order.
type Store interface {
	Reserve(ctx context.Context, orderID string, items []contracts.Item) error
	Reservation(ctx context.Context, orderID string) ([]contracts.Item, bool, error)
}

// Reserver handles OrderCreated.
type Reserver struct {
	bus   *cqrs.Bus
	store Store
}

// NewReserver returns the OrderCreated handler.
func NewReserver(bus *cqrs.Bus, store Store) *Reserver { return &Reserver{bus: bus, store: store} }

// Handle implements cqrs.EventHandler.
func (r *Reserver) Handle(ctx context.Context, e contracts.OrderCreated) error {
	for _, it := range e.Items {
		if it.SKU == OutOfStock {
			return r.bus.Publish(ctx, contracts.StockRejected{OrderID: e.OrderID, SKU: it.SKU})
		}
	}
	if err := r.store.Reserve(ctx, e.OrderID, e.Items); err != nil {
		return err
	}
	return r.bus.Publish(ctx, contracts.StockReserved{OrderID: e.OrderID, TotalCents: e.TotalCents})
}

// StoreParams choose the store: Redis when a client is provided.
type StoreParams struct {
	fx.In

	Redis  redis.UniversalClient `optional:"true"`
	Prefix redismod.KeyPrefix    `optional:"true"`
}

// NewStore returns the store StoreParams choose.
func NewStore(p StoreParams) Store {
	if p.Redis != nil {
		prefix := cmp.Or(string(p.Prefix), "catga") // a client not from redismod: its default
		return &RedisStore{rdb: p.Redis, prefix: "{" + prefix + ":stock}"}
	}
	return NewMemoryStore()
}

// RedisStore records reservations in Redis, one key per order, set once.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// Reserve implements Store.
func (s *RedisStore) Reserve(ctx context.Context, orderID string, items []contracts.Item) error {
	data, _ := json.Marshal(items)
	return s.rdb.SetNX(ctx, s.prefix+":reservation:"+orderID, data, 0).Err()
}

// Reservation implements Store.
func (s *RedisStore) Reservation(ctx context.Context, orderID string) ([]contracts.Item, bool, error) {
	data, err := s.rdb.Get(ctx, s.prefix+":reservation:"+orderID).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var items []contracts.Item
	return items, true, json.Unmarshal(data, &items)
}

// MemoryStore is a Store in process memory.
type MemoryStore struct {
	mu   sync.Mutex
	byID map[string][]contracts.Item
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{byID: map[string][]contracts.Item{}} }

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, orderID string, items []contracts.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[orderID]; !ok {
		s.byID[orderID] = slices.Clone(items)
	}
	return nil
}

// Reservation implements Store.
func (s *MemoryStore) Reservation(_ context.Context, orderID string) ([]contracts.Item, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items, ok := s.byID[orderID]
	return slices.Clone(items), ok, nil
}
