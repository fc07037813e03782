// Package payment is the payment service: on StockReserved it charges the
// total and publishes PaymentCompleted, or PaymentFailed when the total is
// over 1,000,000 cents. Every charge is recorded, one entry per time the
// handler charged, so a duplicate delivery shows in GET /payments.
package payment

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
	httpmod "github.com/catga-go/catga/modules/http"
	"github.com/catga-go/catga/modules/redismod"
)

// Limit is the largest total charged, in cents.
const Limit = 1_000_000

// Module is the payment service.
var Module = fx.Module("payment",
	fx.Provide(NewStore),
	cqrs.Event[contracts.StockReserved](NewCharger),
	cqrs.Query[ListCharges, ChargeList](NewListChargesHandler),
	httpmod.Routes(NewRoutes),
)

// Charge is one charge of an order.
type Charge struct {
	OrderID     string    `json:"order_id"`
	AmountCents int64     `json:"amount_cents"`
	MessageID   string    `json:"message_id"`
	At          time.Time `json:"at"`
}

// ListCharges asks for the charges of an order.
type ListCharges struct {
	OrderID string `json:"order_id"`
}

// Validate requires the order id.
func (q ListCharges) Validate() error {
	if q.OrderID == "" {
		return cqrs.NewError(cqrs.CodeInvalid, "order_id is required")
	}
	return nil
}

// ChargeList is the answer of ListCharges.
type ChargeList struct {
	Charges []Charge `json:"charges"`
}

// Store records charges.
type Store interface {
	AddCharge(ctx context.Context, c Charge) error
	Charges(ctx context.Context, orderID string) ([]Charge, error)
}

// Charger handles StockReserved.
type Charger struct {
	bus   *cqrs.Bus
	store Store
}

// NewCharger returns the StockReserved handler.
func NewCharger(bus *cqrs.Bus, store Store) *Charger { return &Charger{bus: bus, store: store} }

// Handle implements cqrs.EventHandler.
func (c *Charger) Handle(ctx context.Context, e contracts.StockReserved) error {
	if e.TotalCents > Limit {
		return c.bus.Publish(ctx, contracts.PaymentFailed{OrderID: e.OrderID, Reason: "total over the limit"})
	}
	m, _ := cqrs.MessageFrom(ctx)
	err := c.store.AddCharge(ctx, Charge{OrderID: e.OrderID, AmountCents: e.TotalCents, MessageID: m.ID(), At: time.Now().UTC()})
	if err != nil {
		return err
	}
	return c.bus.Publish(ctx, contracts.PaymentCompleted{OrderID: e.OrderID, AmountCents: e.TotalCents})
}

// NewListChargesHandler returns the handler of ListCharges.
func NewListChargesHandler(store Store) cqrs.QueryHandlerFunc[ListCharges, ChargeList] {
	return func(ctx context.Context, q ListCharges) (ChargeList, error) {
		cs, err := store.Charges(ctx, q.OrderID)
		return ChargeList{Charges: cs}, err
	}
}

// NewRoutes serves GET /payments?order_id=.
func NewRoutes(bus *cqrs.Bus) httpmod.MountFunc {
	return func(r chi.Router) {
		r.Get("/payments", httpmod.Query[ListCharges, ChargeList](bus, func(r *http.Request) (ListCharges, error) {
			return ListCharges{OrderID: r.URL.Query().Get("order_id")}, nil
		}))
	}
}

// StoreParams choose the store: Redis when a client is provided.
type StoreParams struct {
	fx.In

	Redis  redis.UniversalClient `optional:"true"`
	Config redismod.Config       `optional:"true"`
}

// NewStore returns the store StoreParams choose.
func NewStore(p StoreParams) Store {
	if p.Redis != nil {
		return &RedisStore{rdb: p.Redis, prefix: "{" + p.Config.WithDefaults().Prefix + ":payments}"}
	}
	return NewMemoryStore()
}

// RedisStore keeps each order's charges in a Redis list.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// AddCharge implements Store.
func (s *RedisStore) AddCharge(ctx context.Context, c Charge) error {
	data, _ := json.Marshal(c)
	return s.rdb.RPush(ctx, s.prefix+":charges:"+c.OrderID, data).Err()
}

// Charges implements Store.
func (s *RedisStore) Charges(ctx context.Context, orderID string) ([]Charge, error) {
	raw, err := s.rdb.LRange(ctx, s.prefix+":charges:"+orderID, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	cs := make([]Charge, 0, len(raw))
	for _, r := range raw {
		var c Charge
		if err := json.Unmarshal([]byte(r), &c); err == nil {
			cs = append(cs, c)
		}
	}
	return cs, nil
}

// MemoryStore is a Store in process memory.
type MemoryStore struct {
	mu      sync.Mutex
	byOrder map[string][]Charge
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{byOrder: map[string][]Charge{}} }

// AddCharge implements Store.
func (s *MemoryStore) AddCharge(_ context.Context, c Charge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byOrder[c.OrderID] = append(s.byOrder[c.OrderID], c)
	return nil
}

// Charges implements Store.
func (s *MemoryStore) Charges(_ context.Context, orderID string) ([]Charge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := slices.Clone(s.byOrder[orderID])
	if cs == nil {
		cs = []Charge{}
	}
	return cs, nil
}
