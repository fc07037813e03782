// Package platform is what the example's service binaries share: the
// transport chosen by CATGA_TRANSPORT (nats, the default; memory for one
// process alone).
package platform

import (
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/modules/natsmod"
)

// Transport returns the module of the transport CATGA_TRANSPORT names.
func Transport() fx.Option {
	switch t := os.Getenv("CATGA_TRANSPORT"); t {
	case "", "nats":
		return natsmod.Module
	case "memory":
		return fx.Options()
	default:
		return fx.Error(fmt.Errorf("CATGA_TRANSPORT: want nats or memory, got %q", t))
	}
}

// Run runs one service: catga.Module, the transport and the service's
// modules; it exits 1 when the service fails.
func Run(modules ...fx.Option) {
	if err := app.Run(append([]fx.Option{catga.Module, Transport()}, modules...)...); err != nil {
		os.Exit(1)
	}
}
