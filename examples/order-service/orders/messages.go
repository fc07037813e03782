package orders

import (
	"errors"
	"fmt"
	"time"

	"github.com/catga-go/catga/examples/order-service/contracts"
)

// OrderID identifies an order.
type OrderID string

// CreateOrder asks for a new order; it returns the order's id.
type CreateOrder struct {
	CustomerID string           `json:"customer_id"`
	Items      []contracts.Item `json:"items"`
}

// Validate reports every missing or impossible field.
func (c CreateOrder) Validate() error {
	var errs []error
	if c.CustomerID == "" {
		errs = append(errs, errors.New("customer_id is required"))
	}
	if len(c.Items) == 0 {
		errs = append(errs, errors.New("items: at least one item is required"))
	}
	for i, it := range c.Items {
		if it.SKU == "" {
			errs = append(errs, fmt.Errorf("items[%d].sku is required", i))
		}
		if it.Qty <= 0 {
			errs = append(errs, fmt.Errorf("items[%d].qty must be positive, got %d", i, it.Qty))
		}
		if it.PriceCents < 0 {
			errs = append(errs, fmt.Errorf("items[%d].price_cents must not be negative, got %d", i, it.PriceCents))
		}
	}
	return errors.Join(errs...)
}

// GetOrder asks for one order.
type GetOrder struct {
	ID OrderID `json:"id"`
}

// ListOrders asks for the orders in a status (every order when empty).
type ListOrders struct {
	Status Status `json:"status"`
}

// Validate refuses an unknown status.
func (q ListOrders) Validate() error {
	if q.Status != "" && q.Status.rank() < 0 {
		return fmt.Errorf("status %q is not one of pending, reserved, paid, shipped, rejected, payment_failed, cancelled", q.Status)
	}
	return nil
}

// Status is an order's state.
type Status string

// The states of an order.
const (
	StatusPending       Status = "pending"
	StatusReserved      Status = "reserved"
	StatusRejected      Status = "rejected"
	StatusPaid          Status = "paid"
	StatusPaymentFailed Status = "payment_failed"
	StatusShipped       Status = "shipped"
	StatusCancelled     Status = "cancelled" // not paid within ORDER_PAYMENT_TIMEOUT
)

// rank orders the states along the flow, so the furthest one wins; -1 for
// an unknown state.
func (s Status) rank() int {
	switch s {
	case StatusPending:
		return 0
	case StatusReserved, StatusRejected:
		return 1
	case StatusPaid, StatusPaymentFailed:
		return 2
	case StatusShipped:
		return 3
	case StatusCancelled:
		return 4 // the saga cancels only an order not paid: nothing later moves it
	}
	return -1
}

// Furthest returns whichever of s and t is further along the flow.
func (s Status) Furthest(t Status) Status {
	if t.rank() > s.rank() {
		return t
	}
	return s
}

// Order is an order as GET /orders/{id} shows it.
type Order struct {
	ID         OrderID          `json:"id"`
	CustomerID string           `json:"customer_id"`
	Items      []contracts.Item `json:"items"`
	TotalCents int64            `json:"total_cents"`
	Status     Status           `json:"status"`
	History    []HistoryEntry   `json:"history"`
}

// HistoryEntry is one applied event.
type HistoryEntry struct {
	Event     string    `json:"event"`
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
}

// OrderList is the answer of ListOrders.
type OrderList struct {
	Orders []Order `json:"orders"`
}
