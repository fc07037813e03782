// Package shipping is the shipping service: on PaymentCompleted it ships
// the order and publishes OrderShipped.
package shipping

import (
	"context"

	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
)

// Module is the shipping service.
var Module = fx.Module("shipping", cqrs.Event[contracts.PaymentCompleted](NewShipper))

// Shipper handles PaymentCompleted.
type Shipper struct{ bus *cqrs.Bus }

// NewShipper returns the PaymentCompleted handler.
func NewShipper(bus *cqrs.Bus) *Shipper { return &Shipper{bus: bus} }

// Handle implements cqrs.EventHandler.
func (s *Shipper) Handle(ctx context.Context, e contracts.PaymentCompleted) error {
	return s.bus.Publish(ctx, contracts.OrderShipped{OrderID: e.OrderID, TrackingID: "trk-" + e.OrderID})
}
