// Package platform is what the example's service binaries share: the
// transport chosen by CATGA_TRANSPORT (nats, the default; redis; memory for
// one process alone) and the stores: PostgreSQL when DATABASE_URL is set
// (state, outbox and inbox in one database), else Redis when REDIS_URL or
// REDIS_CONNECTION is set, memory otherwise.
package platform

import (
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/app/otelexport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/redismod"
)

// Transport returns the modules of the transport CATGA_TRANSPORT names,
// of PostgreSQL when DATABASE_URL is set, and of Redis for the stores when
// REDIS_URL or REDIS_CONNECTION is set.
func Transport() fx.Option {
	redisSet := os.Getenv("REDIS_URL") != "" || os.Getenv("REDIS_CONNECTION") != ""
	stores := fx.Options()
	if redisSet {
		stores = redismod.StoreModule
	}
	if os.Getenv("DATABASE_URL") != "" {
		stores = fx.Options(stores, pgmod.Module)
	}
	switch t := os.Getenv("CATGA_TRANSPORT"); t {
	case "", "nats":
		return fx.Options(natsmod.Module, stores)
	case "redis":
		if os.Getenv("DATABASE_URL") != "" {
			return fx.Options(redismod.Module, pgmod.Module)
		}
		return redismod.Module
	case "memory":
		return stores
	default:
		return fx.Error(fmt.Errorf("CATGA_TRANSPORT: want nats, redis or memory, got %q", t))
	}
}

// Run runs one service: catga.Module, the transport, the OpenTelemetry
// exporters and the service's modules; it exits 1 when the service fails.
func Run(modules ...fx.Option) {
	if err := app.Run(append([]fx.Option{catga.Module, Transport(), otelexport.Module}, modules...)...); err != nil {
		os.Exit(1)
	}
}
