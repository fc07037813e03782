package bench

import "context"

// The message every contender sends: a small command or event, as JSON
// where a codec is involved.
type PlaceOrder struct {
	OrderID string `json:"order_id"`
	Cents   int64  `json:"cents"`
}

type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Cents   int64  `json:"cents"`
}

// placeOrderHandler is the handler every in-process contender calls.
type placeOrderHandler struct{ sum int64 }

func (h *placeOrderHandler) Handle(_ context.Context, c PlaceOrder) (int64, error) {
	h.sum += c.Cents
	return h.sum, nil
}
