// Package shipping is the shipping service: ShipOrder (from the order
// saga, once the order is paid) ships the order and publishes
// OrderShipped.
package shipping

import (
	"context"

	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
)

// Module is the shipping service.
var Module = fx.Module("shipping", cqrs.Command[contracts.ShipOrder, struct{}](NewShipper))

// Shipper handles ShipOrder.
type Shipper struct{ bus *cqrs.Bus }

// NewShipper returns the ShipOrder handler.
func NewShipper(bus *cqrs.Bus) *Shipper { return &Shipper{bus: bus} }

// Handle implements cqrs.CommandHandler.
func (s *Shipper) Handle(ctx context.Context, c contracts.ShipOrder) (struct{}, error) {
	return struct{}{}, s.bus.Publish(ctx, contracts.OrderShipped{OrderID: c.OrderID, TrackingID: "trk-" + c.OrderID})
}
