package redismod

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/modules/health"
)

// Module installs the Redis Streams transport and the Redis idempotency
// inbox, and provides the redis.UniversalClient (checked on start, closed on
// stop), the *Transport, the Config from the environment and the "redis"
// readiness check.
var Module = fx.Module("redismod",
	fx.Provide(LoadConfig, provideClient, provideInbox, provideTransport),
	cqrs.ProvideTransport("redis", func(t *Transport) cqrs.Transport { return t }),
	health.Check("redis", func(t *Transport) health.Checker { return t }),
)

// StoreModule is Redis without the transport: the client, the shared
// idempotency inbox and the "redis" readiness check, for a service whose
// messages go over NATS (or memory) and whose state lives in Redis.
var StoreModule = fx.Module("redismod",
	fx.Provide(LoadConfig, provideClient, provideInbox),
	health.Check("redis", func(rdb redis.UniversalClient, c Config) health.Checker {
		return health.CheckerFunc(func(ctx context.Context) error { return ping(ctx, rdb, c) })
	}),
)

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) { return envconf.Load[Config]() }

func provideClient(lc fx.Lifecycle, c Config) (redis.UniversalClient, error) {
	rdb, err := NewClient(c)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return ping(ctx, rdb, c) },
		OnStop:  func(context.Context) error { return rdb.Close() },
	})
	return rdb, nil
}

func provideInbox(rdb redis.UniversalClient, c Config) cqrs.IdempotencyStore { return NewInbox(rdb, c) }

// TransportParams are the transport's dependencies in fx.
type TransportParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Client    redis.UniversalClient
	Bus       cqrs.Config `optional:"true"`
	Logger    *zap.Logger `optional:"true"`
}

func provideTransport(p TransportParams) (*Transport, error) {
	name := p.Bus.Service + "/" + p.Bus.Instance
	t, err := New(p.Config, p.Client, name, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: t.Start, OnStop: t.Close})
	return t, nil
}
