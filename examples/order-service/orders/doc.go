// Package orders is the order service's domain: it accepts orders
// (CreateOrder), answers for them (GetOrder, ListOrders) and applies every
// event of the flow to its order. Events of one order may arrive in any
// order; the status is the furthest state they reached, and each event is
// recorded in the history once, by message id.
package orders
