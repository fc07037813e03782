package orders

import (
	"context"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
)

// CreateOrderHandler stores a new order and publishes OrderCreated.
type CreateOrderHandler struct {
	bus   *cqrs.Bus
	store Store
}

// NewCreateOrderHandler returns the handler of CreateOrder.
func NewCreateOrderHandler(bus *cqrs.Bus, store Store) *CreateOrderHandler {
	return &CreateOrderHandler{bus: bus, store: store}
}

// Handle implements cqrs.CommandHandler: the order and its OrderCreated
// are stored together (the store's transaction and outbox), so an order
// exists exactly when its event does, whether or not the broker is up.
func (h *CreateOrderHandler) Handle(ctx context.Context, c CreateOrder) (OrderID, error) {
	id := OrderID(cqrs.NewID())
	var total int64
	for _, it := range c.Items {
		total += int64(it.Qty) * it.PriceCents
	}
	o := Order{ID: id, CustomerID: c.CustomerID, Items: c.Items, TotalCents: total, Status: StatusPending}
	err := h.store.Create(ctx, o, func(ctx context.Context) error {
		return h.bus.Publish(ctx, contracts.OrderCreated{OrderID: string(id), CustomerID: c.CustomerID, Items: c.Items, TotalCents: total})
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// NewGetOrderHandler returns the handler of GetOrder.
func NewGetOrderHandler(store Store) cqrs.QueryHandlerFunc[GetOrder, Order] {
	return func(ctx context.Context, q GetOrder) (Order, error) { return store.Get(ctx, q.ID) }
}

// NewListOrdersHandler returns the handler of ListOrders.
func NewListOrdersHandler(store Store) cqrs.QueryHandlerFunc[ListOrders, OrderList] {
	return func(ctx context.Context, q ListOrders) (OrderList, error) {
		os, err := store.List(ctx, q.Status)
		return OrderList{Orders: os}, err
	}
}

// Projector applies the events of the flow to their orders.
type Projector struct{ store Store }

// NewProjector returns the event handlers of the order service.
func NewProjector(store Store) *Projector { return &Projector{store: store} }

func (p *Projector) apply(ctx context.Context, id string, status Status) error {
	env := cqrs.EnvelopeFrom(ctx)
	return p.store.Apply(ctx, OrderID(id), HistoryEntry{Event: env.Name, MessageID: env.ID, At: env.Time.UTC()}, status)
}

// OrderCreated records the order's first event.
func (p *Projector) OrderCreated(ctx context.Context, e contracts.OrderCreated) error {
	return p.apply(ctx, e.OrderID, StatusPending)
}

// StockReserved takes the order to reserved.
func (p *Projector) StockReserved(ctx context.Context, e contracts.StockReserved) error {
	return p.apply(ctx, e.OrderID, StatusReserved)
}

// StockRejected takes the order to rejected.
func (p *Projector) StockRejected(ctx context.Context, e contracts.StockRejected) error {
	return p.apply(ctx, e.OrderID, StatusRejected)
}

// PaymentCompleted takes the order to paid.
func (p *Projector) PaymentCompleted(ctx context.Context, e contracts.PaymentCompleted) error {
	return p.apply(ctx, e.OrderID, StatusPaid)
}

// PaymentFailed takes the order to payment_failed.
func (p *Projector) PaymentFailed(ctx context.Context, e contracts.PaymentFailed) error {
	return p.apply(ctx, e.OrderID, StatusPaymentFailed)
}

// OrderShipped takes the order to shipped.
func (p *Projector) OrderShipped(ctx context.Context, e contracts.OrderShipped) error {
	return p.apply(ctx, e.OrderID, StatusShipped)
}

// OrderCancelled takes the order to cancelled.
func (p *Projector) OrderCancelled(ctx context.Context, e contracts.OrderCancelled) error {
	return p.apply(ctx, e.OrderID, StatusCancelled)
}

// StockReleased records the release in the order's history.
func (p *Projector) StockReleased(ctx context.Context, e contracts.StockReleased) error {
	return p.apply(ctx, e.OrderID, "")
}

// PaymentRefunded records the refund in the order's history.
func (p *Projector) PaymentRefunded(ctx context.Context, e contracts.PaymentRefunded) error {
	return p.apply(ctx, e.OrderID, "")
}
