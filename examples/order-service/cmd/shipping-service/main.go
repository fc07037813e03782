// Command shipping-service runs the shipping service of the example alone; the
// others reach it over the transport of CATGA_TRANSPORT (NATS by default,
// at NATS_URL).
package main

import (
	"github.com/catga-go/catga/examples/order-service/platform"
	"github.com/catga-go/catga/examples/order-service/shipping"
)

func main() { platform.Run(shipping.Module) }
