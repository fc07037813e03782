package natsmod

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/modules/health"
)

// Module installs the NATS JetStream transport: the bus uses it instead of
// the memory fallback. It provides the *Transport (connected on start,
// drained on stop), its Config from the environment, and the "nats"
// readiness check.
var Module = fx.Module("natsmod",
	fx.Provide(LoadConfig, provide),
	cqrs.ProvideTransport("nats", func(t *Transport) transport.Transport { return t }),
	health.Check("nats", func(t *Transport) health.Checker { return t }),
)

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) { return envconf.Load[Config]() }

// Params are the transport's dependencies in fx.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Bus       cqrs.Config `optional:"true"`
	Logger    *zap.Logger `optional:"true"`
}

func provide(p Params) (*Transport, error) {
	name := p.Bus.Service
	if p.Bus.Instance != "" {
		name += "/" + p.Bus.Instance
	}
	t, err := New(p.Config, name, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: t.Start, OnStop: t.Close})
	return t, nil
}
