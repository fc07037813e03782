package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

// Module provides Config, the bus's cqrs.Config, the *zap.Logger and
// *slog.Logger, logs fx's events through zap, and orders start and shutdown
// (see the package doc).
//
// It is fx.Options around fx.Module("app") rather than the module alone,
// because fx.WithLogger inside a module only logs that module's events:
// placed beside it, at the level Module is used, it logs the app's. Use
// Module at the top of fx.New (catga.Module does), not inside a module.
var Module = fx.Options(
	fx.WithLogger(FxLogger),
	processTimeouts(),
	fx.Module("app",
		fx.Provide(LoadConfig, LoadBusConfig, provideLogger, NewSlog, provideTelemetry,
			func(t *Telemetry) trace.TracerProvider { return t.Tracer },
			func(t *Telemetry) metric.MeterProvider { return t.Meter },
			fx.Annotate(func(t *Telemetry) http.Handler { return t.Metrics }, fx.ResultTags(`name:"catga.metrics"`)),
		),
		fx.Invoke(first),
	),
	fx.Invoke(last),
)

func provideLogger(lc fx.Lifecycle, c Config) (*zap.Logger, error) {
	log, err := NewLogger(c)
	if err != nil {
		return nil, err
	}
	// slog.Default, which libraries log through, writes through log's core
	// while the app runs (and so does the standard log package, which
	// slog.SetDefault redirects).
	var prev *slog.Logger
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			prev = slog.Default()
			slog.SetDefault(NewSlog(log))
			return nil
		},
		OnStop: func(context.Context) error {
			if prev != nil {
				slog.SetDefault(prev)
			}
			_ = log.Sync() // fails on a terminal's stderr; nothing to do about it
			return nil
		},
	})
	return log, nil
}

type telemetryParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Exporters Exporters `optional:"true"` // otelexport.Module
}

func provideTelemetry(p telemetryParams) (*Telemetry, error) {
	lc := p.Lifecycle
	t, err := NewTelemetry(context.Background(), p.Config, p.Exporters)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStop: t.Shutdown}) // registered early, so it flushes last
	return t, nil
}

// firstParams are built by Module's first invoke, before any other
// module's (catga.Module puts app first), in field order, which is the
// order their hooks are registered: the logger and telemetry, then the HTTP
// server, so it stops after everything but them and probes answer to the
// end, then the bus's transport, which the bus brings. cqrs.Module's invoke then builds the handlers' dependencies
// (stores, clients) and hooks the bus after them.
type firstParams struct {
	fx.In

	Log       *zap.Logger     // its hook sets slog.Default first, syncs last
	Telemetry *Telemetry      // its hook flushes last
	Server    *httpmod.Server `optional:"true"`
	Bus       *cqrs.Bus       `optional:"true"`
}

func first(firstParams) {}

// lastParams are for Module's last invoke, which fx runs after every
// module's: its hook is registered last, so it is the first to stop.
type lastParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Log       *zap.Logger
	Bus       *cqrs.Bus           `optional:"true"`
	Handlers  []cqrs.Registration `group:"catga.handlers"`
	Health    *health.Registry    `optional:"true"`
	Server    *httpmod.Server     `optional:"true"`
}

// last adds the hook that turns /ready 200 once everything has started and
// 503 first at shutdown, for CATGA_DRAIN_DELAY.
func last(p lastParams) error {
	if p.Bus == nil && len(p.Handlers) > 0 {
		return errors.New("app: handlers are registered but no bus is provided; add cqrs.Module")
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if p.Health != nil {
				p.Health.SetState(health.Serving)
			}
			p.Log.Info("started")
			return nil
		},
		OnStop: func(ctx context.Context) error {
			p.Log.Info("draining: /ready answers 503", zap.Duration("drain_delay", p.Config.DrainDelay))
			if p.Health != nil {
				p.Health.SetState(health.Draining)
			}
			if p.Server != nil {
				// Clients on kept-alive connections would go on sending here
				// after the Service dropped the pod: each answer from now on
				// closes its connection, so the next request finds a pod
				// that is not stopping.
				p.Server.Drain()
			}
			if p.Config.DrainDelay > 0 {
				t := time.NewTimer(p.Config.DrainDelay)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
			return nil
		},
	})
	return nil
}
