// Package contracts holds the events the example services exchange: the
// only types two services must agree on. Each service owns its commands
// and queries.
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
