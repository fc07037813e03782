// Package platform is what the example's service binaries share: the
// transport chosen by CATGA_TRANSPORT (nats, the default; redis; memory for
// one process alone) and the stores: Redis when REDIS_URL or
// REDIS_CONNECTION is set, memory otherwise.
package platform

import (
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/redismod"
)

// Transport returns the modules of the transport CATGA_TRANSPORT names,
// and of Redis for the stores when REDIS_URL or REDIS_CONNECTION is set.
func Transport() fx.Option {
	redisSet := os.Getenv("REDIS_URL") != "" || os.Getenv("REDIS_CONNECTION") != ""
	stores := fx.Options()
	if redisSet {
		stores = redismod.StoreModule
	}
	switch t := os.Getenv("CATGA_TRANSPORT"); t {
	case "", "nats":
		return fx.Options(natsmod.Module, stores)
	case "redis":
		return redismod.Module
	case "memory":
		return stores
	default:
		return fx.Error(fmt.Errorf("CATGA_TRANSPORT: want nats, redis or memory, got %q", t))
	}
}

// Run runs one service: catga.Module, the transport and the service's
// modules; it exits 1 when the service fails.
func Run(modules ...fx.Option) {
	if err := app.Run(append([]fx.Option{catga.Module, Transport()}, modules...)...); err != nil {
		os.Exit(1)
	}
}
