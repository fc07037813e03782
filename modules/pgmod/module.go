package pgmod

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/modules/health"
)

// Module provides the *DB (connected and migrated on start, closed on
// stop) from DATABASE_URL, the "postgres" readiness check, and, when the
// bus has a transport, the outbox relay as a lifecycle worker: started
// after the database, woken by every commit that wrote the outbox, and
// drained on stop before the transport closes.
var Module = fx.Module("pgmod",
	fx.Provide(LoadConfig, provide),
	health.Check("postgres", func(db *DB) health.Checker { return db }),
)

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) { return envconf.Load[Config]() }

type params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Bus       *cqrs.Bus            `optional:"true"`
	BusConfig cqrs.Config          `optional:"true"`
	Logger    *zap.Logger          `optional:"true"`
	Slog      *slog.Logger         `optional:"true"`
	Meter     metric.MeterProvider `optional:"true"`
}

func provide(p params) (*DB, error) {
	service := p.BusConfig.Service
	if p.Bus != nil {
		service = p.Bus.Service()
	}
	db, err := New(p.Config, service, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: db.Start, OnStop: db.Close})
	if p.Bus == nil || p.Bus.Transport() == nil {
		return db, nil // no broker: nothing to relay to (Publish runs in process)
	}
	log := p.Slog
	if log != nil {
		log = log.With(slog.String("logger", "pgmod.relay"))
	}
	relay, err := outbox.New(db.Outbox(), p.Bus.Transport(), outbox.Config{Batch: db.cfg.OutboxBatch, Poll: db.cfg.OutboxPoll}, log, p.Meter)
	if err != nil {
		return nil, err
	}
	db.OnCommit(relay.Notify)
	p.Lifecycle.Append(fx.Hook{OnStart: relay.Start, OnStop: relay.Stop})
	return db, nil
}
