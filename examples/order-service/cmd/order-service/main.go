// Command order-service runs the order service of the example alone; the
// others reach it over the transport of CATGA_TRANSPORT (NATS by default,
// at NATS_URL).
package main

import (
	"github.com/catga-go/catga/examples/order-service/orders"
	"github.com/catga-go/catga/examples/order-service/platform"
)

func main() { platform.Run(orders.Module) }
