package memory

import (
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Module installs the memory transport as the bus's fallback: the one used
// when no broker module (natsmod, redismod) installs its own. It also
// provides the *Transport, whose broker closes on stop.
var Module = fx.Module("memory",
	fx.Provide(provide),
	cqrs.ProvideFallbackTransport("memory", func(t *Transport) transport.Transport { return t }),
)

func provide(lc fx.Lifecycle) *Transport {
	t := New(Options{})
	lc.Append(fx.Hook{OnStop: t.Close})
	return t
}
