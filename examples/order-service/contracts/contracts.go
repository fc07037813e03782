// Package contracts holds the messages the example services exchange: the
// only types two services must agree on. The events tell what happened;
// the commands are what the order saga (package orders) asks of the
// service that owns each: inventory reserves and releases stock, payment
// charges and refunds, shipping ships. Each service owns its queries.
package contracts

// Item is one line of an order.
type Item struct {
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"`
}

// OrderCreated: an order was accepted; inventory reserves its stock.
type OrderCreated struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Items      []Item `json:"items"`
	TotalCents int64  `json:"total_cents"`
}

// StockReserved: every item is reserved; payment charges the total.
type StockReserved struct {
	OrderID    string `json:"order_id"`
	TotalCents int64  `json:"total_cents"`
}

// StockRejected: an item is out of stock; the order ends rejected.
type StockRejected struct {
	OrderID string `json:"order_id"`
	SKU     string `json:"sku"`
}

// PaymentCompleted: the total was charged; shipping ships.
type PaymentCompleted struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// PaymentFailed: the charge was refused; the order ends payment_failed.
type PaymentFailed struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// OrderShipped: the order left the warehouse.
type OrderShipped struct {
	OrderID    string `json:"order_id"`
	TrackingID string `json:"tracking_id"`
}

// OrderCancelled: the order was not paid within ORDER_PAYMENT_TIMEOUT; its
// stock is released.
type OrderCancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// StockReleased: an order's reserved stock is available again.
type StockReleased struct {
	OrderID string `json:"order_id"`
}

// PaymentRefunded: a charge was refunded (it came after the order was
// cancelled).
type PaymentRefunded struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// ReserveStock asks inventory to reserve an order's items: StockReserved
// or StockRejected answers. Once per order: a second is answered as the
// first was; one for an order whose stock was released is rejected.
type ReserveStock struct {
	OrderID    string `json:"order_id"`
	Items      []Item `json:"items"`
	TotalCents int64  `json:"total_cents"`
}

// ReleaseStock asks inventory to give an order's reserved stock back:
// StockReleased answers (also when nothing was reserved, and from then on
// the order can reserve nothing).
type ReleaseStock struct {
	OrderID string `json:"order_id"`
}

// ChargePayment asks payment to charge an order: PaymentCompleted or
// PaymentFailed answers.
type ChargePayment struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// RefundPayment asks payment to refund an order's charge: PaymentRefunded
// answers.
type RefundPayment struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
}

// ShipOrder asks shipping to ship an order: OrderShipped answers.
type ShipOrder struct {
	OrderID string `json:"order_id"`
}
