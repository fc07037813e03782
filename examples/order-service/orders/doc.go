// Package orders is the order service's domain: it accepts orders
// (CreateOrder), answers for them (GetOrder, ListOrders), applies every
// event of the flow to its order, and runs the order saga (saga.go): a
// flow per order that reserves the stock, charges and ships, releases the
// stock when the payment fails, cancels an order not paid within
// ORDER_PAYMENT_TIMEOUT, and refunds a payment that comes after the
// cancellation. The saga keeps its state where the orders are (PostgreSQL,
// Redis or memory), in the same transactions as what it sends.
//
// Events of one order may arrive in any order; the status is the furthest
// state they reached (cancelled last of all), and each event is recorded
// in the history once, by message id.
package orders
