// Command monolith runs the four example services in one process, on the
// memory transport: the whole HTTP contract on HTTP_ADDR (default :8080).
package main

import (
	"os"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/app/otelexport"
	"github.com/catga-go/catga/examples/order-service/inventory"
	"github.com/catga-go/catga/examples/order-service/orders"
	"github.com/catga-go/catga/examples/order-service/payment"
	"github.com/catga-go/catga/examples/order-service/shipping"
)

// Modules is the monolith: catga.Module, the OpenTelemetry exporters and
// the four domain modules.
var Modules = fx.Options(catga.Module, otelexport.Module, orders.Module, inventory.Module, payment.Module, shipping.Module)

func main() {
	if err := app.Run(Modules); err != nil {
		os.Exit(1)
	}
}
