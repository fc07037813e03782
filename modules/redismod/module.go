package redismod

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/modules/health"
)

// Module installs the Redis Streams transport and the Redis idempotency
// inbox, and provides the redis.UniversalClient (checked on start, closed on
// stop), the *Transport, the *Outbox of the bus's service, the Config from
// the environment, its KeyPrefix and the "redis" readiness check. On a single server the
// outbox's Tx writes messages straight into the transport's streams; on a
// cluster its relay publishes them (started after the client, drained
// before the transport closes).
var Module = fx.Module("redismod",
	fx.Provide(LoadConfig, provideKeyPrefix, provideClient, provideInbox, provideTransport, provideOutbox),
	cqrs.ProvideTransport("redis", func(t *Transport) transport.Transport { return t }),
	health.Check("redis", func(t *Transport) health.Checker { return t }),
)

// StoreModule is Redis without the transport: the client, the shared
// idempotency inbox, the *Outbox (its relay publishes on the bus's
// transport), the KeyPrefix and the "redis" readiness check, for a service whose messages
// go over NATS (or memory) and whose state lives in Redis.
var StoreModule = fx.Module("redismod",
	fx.Provide(LoadConfig, provideKeyPrefix, provideClient, provideInbox, provideOutbox),
	health.Check("redis", func(rdb redis.UniversalClient, c Config) health.Checker {
		return health.CheckerFunc(func(ctx context.Context) error { return ping(ctx, rdb, c) })
	}),
)

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) { return envconf.Load[Config]() }

// KeyPrefix is REDIS_PREFIX, which every key of the service starts with:
// a store that keeps keys of its own beside catga's starts them with it too,
// and needs nothing else of Config.
type KeyPrefix string

func provideKeyPrefix(c Config) KeyPrefix { return KeyPrefix(c.WithDefaults().Prefix) }

// clientParams are the client's dependencies in fx.
type clientParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Logger    *zap.Logger `optional:"true"`
}

// provideClient makes the client and checks it on start, waiting for a
// server that is not up yet until the start deadline (see Transport.Start).
func provideClient(p clientParams) (redis.UniversalClient, error) {
	rdb, err := NewClient(p.Config)
	if err != nil {
		return nil, err
	}
	log := p.Logger
	if log != nil {
		log = log.Named("redismod")
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return waitForServer(ctx, rdb, p.Config, log) },
		OnStop:  func(context.Context) error { return rdb.Close() },
	})
	return rdb, nil
}

func provideInbox(rdb redis.UniversalClient, c Config) inbox.Store { return NewInbox(rdb, c) }

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

// OutboxParams are the outbox's dependencies in fx. An OutboxConfig in the
// container tunes it (fx.Supply); without one it is read from the
// REDIS_OUTBOX_* and REDIS_INBOX_TTL variables, and the inbox TTL defaults
// to the bus's CATGA_IDEMPOTENCY_TTL.
type OutboxParams struct {
	fx.In

	Lifecycle    fx.Lifecycle
	Config       Config
	Client       redis.UniversalClient
	OutboxConfig OutboxConfig         `optional:"true"`
	Bus          *cqrs.Bus            `optional:"true"`
	BusConfig    cqrs.Config          `optional:"true"`
	Slog         *slog.Logger         `optional:"true"`
	Meter        metric.MeterProvider `optional:"true"`
}

// provideOutbox builds the *Outbox of the bus's service and, when the bus
// has a transport, its relay as a lifecycle worker: started after the
// client (whose hook was appended first), woken by every commit that wrote
// the outbox, and stopped, which drains it, before the transport closes
// (fx stops in reverse order, and the transport's hook was appended before
// the bus this depends on was built). With this package's Transport on
// the same single-server client, Tx writes to the destination streams
// directly (Outbox.Direct); the relay still runs, for entries written
// otherwise.
func provideOutbox(p OutboxParams) (*Outbox, error) {
	service := p.BusConfig.Service
	if p.Bus != nil {
		service = p.Bus.Service()
	}
	oc := p.OutboxConfig
	if oc == (OutboxConfig{}) {
		var err error
		if oc, err = envconf.Load[OutboxConfig](); err != nil {
			return nil, err
		}
	}
	if oc.InboxTTL == 0 {
		oc.InboxTTL = p.BusConfig.IdempotencyTTL
	}
	o, err := NewOutbox(p.Client, p.Config, service, oc)
	if err != nil {
		return nil, err
	}
	if p.Bus == nil || p.Bus.Transport() == nil {
		return o, nil // no broker: nothing to relay to (Publish runs in process)
	}
	if t, ok := p.Bus.Transport().(*Transport); ok {
		o.Direct(t)
	}
	log := p.Slog
	if log != nil {
		log = log.With(slog.String("logger", "redismod.relay"))
	}
	relay, err := outbox.New(o.Store(), p.Bus.Transport(), o.oc.Relay(), log, p.Meter)
	if err != nil {
		return nil, err
	}
	o.OnCommit(relay.Notify)
	p.Lifecycle.Append(fx.Hook{OnStart: relay.Start, OnStop: relay.Stop})
	return o, nil
}
