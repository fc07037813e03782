// Command inventory-service runs the inventory service of the example alone; the
// others reach it over the transport of CATGA_TRANSPORT (NATS by default,
// at NATS_URL).
package main

import (
	"github.com/catga-go/catga/examples/order-service/inventory"
	"github.com/catga-go/catga/examples/order-service/platform"
)

func main() { platform.Run(inventory.Module) }
