// Package payment is the payment service: ChargePayment (from the order
// saga) charges the total and publishes PaymentCompleted, or PaymentFailed
// when the total is over 1,000,000 cents; RefundPayment refunds a charge
// that came after its order was cancelled (PaymentRefunded). Every charge
// and refund is recorded, one entry per time the handler ran, so a
// duplicate delivery shows in GET /payments.
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
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/redismod"
)

// Limit is the largest total charged, in cents.
const Limit = 1_000_000

// Module is the payment service. The charger keeps its inbox in its
// store's transaction (cqrs.OwnInbox): a charge, the message that caused
// it and the outcome it publishes commit together, once.
var Module = fx.Module("payment",
	fx.Provide(NewStore),
	fx.Provide(NewCharger),
	cqrs.CommandMethod((*Charger).Charge, cqrs.OwnInbox()),
	cqrs.CommandMethod((*Charger).Refund, cqrs.OwnInbox()),
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

// ChargeList is the answer of ListCharges: the charges, and the refunds
// (their amounts negative).
type ChargeList struct {
	Charges []Charge `json:"charges"`
	Refunds []Charge `json:"refunds"`
}

// Store records charges.
type Store interface {
	// Charge records c (nil: nothing to record) and runs then, which
	// publishes the outcome, in one transaction that is also the inbox of
	// the delivered message in ctx: a message already handled is skipped
	// (nil, then not called), and nothing is recorded when then fails.
	Charge(ctx context.Context, c *Charge, then func(ctx context.Context) error) error
	Charges(ctx context.Context, orderID string) ([]Charge, error)
}

// Charger handles ChargePayment and RefundPayment.
type Charger struct {
	bus   *cqrs.Bus
	store Store
}

// NewCharger returns the handlers of ChargePayment and RefundPayment.
func NewCharger(bus *cqrs.Bus, store Store) *Charger { return &Charger{bus: bus, store: store} }

// Charge handles ChargePayment.
func (c *Charger) Charge(ctx context.Context, cmd contracts.ChargePayment) (struct{}, error) {
	if cmd.AmountCents > Limit {
		return struct{}{}, c.store.Charge(ctx, nil, func(ctx context.Context) error {
			return c.bus.Publish(ctx, contracts.PaymentFailed{OrderID: cmd.OrderID, Reason: "total over the limit"})
		})
	}
	m, _ := cqrs.MessageFrom(ctx)
	charge := &Charge{OrderID: cmd.OrderID, AmountCents: cmd.AmountCents, MessageID: m.ID(), At: time.Now().UTC()}
	return struct{}{}, c.store.Charge(ctx, charge, func(ctx context.Context) error {
		return c.bus.Publish(ctx, contracts.PaymentCompleted{OrderID: cmd.OrderID, AmountCents: cmd.AmountCents})
	})
}

// Refund handles RefundPayment: the refund is recorded as an entry of the
// order's with the amount negative.
func (c *Charger) Refund(ctx context.Context, cmd contracts.RefundPayment) (struct{}, error) {
	m, _ := cqrs.MessageFrom(ctx)
	refund := &Charge{OrderID: cmd.OrderID, AmountCents: -cmd.AmountCents, MessageID: m.ID(), At: time.Now().UTC()}
	return struct{}{}, c.store.Charge(ctx, refund, func(ctx context.Context) error {
		return c.bus.Publish(ctx, contracts.PaymentRefunded(cmd))
	})
}

// NewListChargesHandler returns the handler of ListCharges.
func NewListChargesHandler(store Store) cqrs.QueryHandlerFunc[ListCharges, ChargeList] {
	return func(ctx context.Context, q ListCharges) (ChargeList, error) {
		all, err := store.Charges(ctx, q.OrderID)
		l := ChargeList{Charges: []Charge{}, Refunds: []Charge{}}
		for _, c := range all {
			if c.AmountCents < 0 {
				l.Refunds = append(l.Refunds, c)
			} else {
				l.Charges = append(l.Charges, c)
			}
		}
		return l, err
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

// StoreParams choose the store: Postgres when a database is provided,
// else Redis when an outbox is, memory otherwise.
type StoreParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	DB        *pgmod.DB        `optional:"true"`
	Outbox    *redismod.Outbox `optional:"true"`
}

// NewStore returns the store StoreParams choose.
func NewStore(p StoreParams) Store {
	switch {
	case p.DB != nil:
		s := &PostgresStore{db: p.DB}
		p.Lifecycle.Append(fx.Hook{OnStart: s.Migrate})
		return s
	case p.Outbox != nil:
		return &RedisStore{o: p.Outbox}
	}
	return NewMemoryStore()
}

// RedisStore keeps each order's charges in a Redis list, in the service
// outbox's slot: a charge, the delivery's inbox mark and the outcome event
// commit in one MULTI/EXEC (redismod.Outbox.Tx).
type RedisStore struct {
	o *redismod.Outbox
}

func (s *RedisStore) key(orderID string) string { return s.o.Key("charges", orderID) }

// Charge implements Store.
func (s *RedisStore) Charge(ctx context.Context, c *Charge, then func(context.Context) error) error {
	var opts []redismod.TxOption
	if c != nil {
		opts = append(opts, redismod.Key(c.OrderID))
	}
	return s.o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
		if c != nil {
			data, _ := json.Marshal(c)
			pipe.RPush(ctx, s.key(c.OrderID), data)
		}
		return then(ctx)
	}, opts...)
}

// Charges implements Store.
func (s *RedisStore) Charges(ctx context.Context, orderID string) ([]Charge, error) {
	raw, err := s.o.Client().LRange(ctx, s.key(orderID), 0, -1).Result()
	if err != nil {
		return nil, cqrs.Errorf(cqrs.CodeUnavailable, "payments store: %w", err)
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

// MemoryStore is a Store in process memory, with an inbox of the message
// ids it has handled.
type MemoryStore struct {
	mu      sync.Mutex
	byOrder map[string][]Charge
	handled map[string]bool
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byOrder: map[string][]Charge{}, handled: map[string]bool{}}
}

// Charge implements Store. Memory has no transaction: the charge is
// recorded, then runs (a publish to the in-process transport), and both
// are undone if then fails.
func (s *MemoryStore) Charge(ctx context.Context, c *Charge, then func(context.Context) error) error {
	m, _ := cqrs.MessageFrom(ctx)
	id := m.ID()
	s.mu.Lock()
	if s.handled[id] {
		s.mu.Unlock()
		return nil
	}
	s.handled[id] = true
	if c != nil {
		s.byOrder[c.OrderID] = append(s.byOrder[c.OrderID], *c)
	}
	s.mu.Unlock()
	if err := then(ctx); err != nil {
		s.mu.Lock()
		delete(s.handled, id)
		if c != nil {
			cs := s.byOrder[c.OrderID]
			s.byOrder[c.OrderID] = cs[:len(cs)-1]
		}
		s.mu.Unlock()
		return err
	}
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
