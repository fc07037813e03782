// Command payment-service runs the payment service of the example alone; the
// others reach it over the transport of CATGA_TRANSPORT (NATS by default,
// at NATS_URL).
package main

import (
	"github.com/catga-go/catga/examples/order-service/payment"
	"github.com/catga-go/catga/examples/order-service/platform"
)

func main() { platform.Run(payment.Module) }
