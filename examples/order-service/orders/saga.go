package orders

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow"
	"github.com/catga-go/catga/examples/order-service/contracts"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/redismod"
)

// Config is the order service's configuration, from the environment.
type Config struct {
	PaymentTimeout time.Duration // ORDER_PAYMENT_TIMEOUT: an order not paid by then is cancelled
}

// DefaultPaymentTimeout is ORDER_PAYMENT_TIMEOUT's default.
const DefaultPaymentTimeout = 15 * time.Minute

// NewConfig reads ORDER_PAYMENT_TIMEOUT (a Go duration).
func NewConfig() (Config, error) {
	c := Config{PaymentTimeout: DefaultPaymentTimeout}
	if v := os.Getenv("ORDER_PAYMENT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("ORDER_PAYMENT_TIMEOUT: want a positive duration such as 15m, got %q", v)
		}
		c.PaymentTimeout = d
	}
	return c, nil
}

// PaymentTimedOut is the saga's own timeout, scheduled when the order is
// created and due ORDER_PAYMENT_TIMEOUT later.
type PaymentTimedOut struct {
	OrderID string `json:"order_id"`
}

// SagaState is one order's saga: what its steps decide on (the items
// travel in ReserveStock, and the order keeps them).
type SagaState struct {
	Status Status `json:"status"`
	Total  int64  `json:"total_cents"`
}

// NewSaga declares the order saga ("order", one instance per order id):
//
//	OrderCreated     -> ReserveStock, and the payment timeout scheduled
//	StockReserved    -> ChargePayment
//	StockRejected    -> rejected
//	PaymentCompleted -> ShipOrder; after a cancellation, RefundPayment
//	PaymentFailed    -> ReleaseStock (the compensation)
//	PaymentTimedOut  -> not paid yet: cancelled, ReleaseStock, OrderCancelled
//	OrderShipped     -> shipped
//
// A payment that comes after the order was cancelled is refunded.
func NewSaga(cfg Config) *flow.Flow[SagaState] {
	f := flow.New[SagaState]("order")
	flow.Start(f, func(e contracts.OrderCreated) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e contracts.OrderCreated) error {
			s.Status, s.Total = StatusPending, e.TotalCents
			if _, err := c.PublishAfter(cfg.PaymentTimeout, PaymentTimedOut{OrderID: e.OrderID}); err != nil {
				return err
			}
			return c.Send(contracts.ReserveStock{OrderID: e.OrderID, Items: e.Items, TotalCents: e.TotalCents})
		})
	flow.On(f, func(e contracts.StockReserved) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e contracts.StockReserved) error {
			if s.Status != StatusPending {
				c.Note("stock reserved while %s: nothing to do", s.Status)
				return nil
			}
			s.Status = StatusReserved
			return c.Send(contracts.ChargePayment{OrderID: e.OrderID, AmountCents: s.Total})
		})
	flow.On(f, func(e contracts.StockRejected) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e contracts.StockRejected) error {
			if s.Status == StatusPending {
				s.Status = StatusRejected
			}
			return nil
		})
	flow.On(f, func(e contracts.PaymentCompleted) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e contracts.PaymentCompleted) error {
			switch s.Status {
			case StatusReserved:
				s.Status = StatusPaid
				return c.Send(contracts.ShipOrder{OrderID: e.OrderID})
			case StatusCancelled:
				c.Note("paid after the cancellation: refunded")
				return c.Send(contracts.RefundPayment{OrderID: e.OrderID, AmountCents: e.AmountCents})
			}
			return nil
		})
	flow.On(f, func(e contracts.PaymentFailed) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e contracts.PaymentFailed) error {
			if s.Status != StatusReserved {
				return nil
			}
			s.Status = StatusPaymentFailed
			return c.Send(contracts.ReleaseStock{OrderID: e.OrderID})
		})
	flow.On(f, func(e PaymentTimedOut) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e PaymentTimedOut) error {
			if s.Status != StatusPending && s.Status != StatusReserved {
				return nil // paid, failed or rejected in time
			}
			s.Status = StatusCancelled
			if err := c.Send(contracts.ReleaseStock{OrderID: e.OrderID}); err != nil {
				return err
			}
			return c.Publish(contracts.OrderCancelled{OrderID: e.OrderID, Reason: fmt.Sprintf("not paid within %v", cfg.PaymentTimeout)})
		})
	flow.On(f, func(e contracts.OrderShipped) string { return e.OrderID },
		func(c *flow.Context, s *SagaState, e contracts.OrderShipped) error {
			if s.Status == StatusPaid {
				s.Status = StatusShipped
			}
			return nil
		})
	return f
}

// FlowStoreParams choose where the saga keeps its state: with the orders.
type FlowStoreParams struct {
	fx.In

	Bus    *cqrs.Bus
	DB     *pgmod.DB        `optional:"true"`
	Outbox *redismod.Outbox `optional:"true"`
}

// NewFlowStore returns the store FlowStoreParams choose: PostgreSQL when a
// database is provided, else Redis when an outbox is, memory otherwise.
func NewFlowStore(p FlowStoreParams) flow.Store {
	switch {
	case p.DB != nil:
		return p.DB.FlowStore()
	case p.Outbox != nil:
		return p.Outbox.FlowStore()
	}
	return flow.NewMemoryStore(p.Bus.Transport())
}
