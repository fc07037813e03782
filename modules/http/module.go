package httpmod

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/internal/fxreg"
	"github.com/catga-go/catga/modules/health"
)

// Module provides the *Server (listening from start to stop, and its admin
// server with it when HTTP_ADMIN_ADDR is set) and its Config from the
// environment, and mounts the routes added with Routes, and the bus's dead
// letters on the admin routes when there is a bus. The server's hooks are
// registered when it is built, which catga.Module does first, so it stops
// last.
var Module = fx.Module("httpmod", fx.Provide(LoadConfig, provide), fx.Invoke(mount))

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) { return envconf.Load[Config]() }

// params are the server's dependencies in fx.
type params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Health    *health.Registry `optional:"true"`
	Logger    *zap.Logger      `optional:"true"`
	// From app: the instance (HOSTNAME) names the request ids.
	Bus cqrs.Config `optional:"true"`

	// From app: the Prometheus handler for /metrics and the providers of
	// the request spans and HTTP metrics.
	Metrics        http.Handler         `name:"catga.metrics" optional:"true"`
	TracerProvider trace.TracerProvider `optional:"true"`
	MeterProvider  metric.MeterProvider `optional:"true"`
}

func provide(p params) (*Server, error) {
	opts := []Option{WithInstance(p.Bus.Instance)}
	if p.Metrics != nil {
		opts = append(opts, WithMetrics(p.Metrics))
	}
	if p.TracerProvider != nil || p.MeterProvider != nil {
		opts = append(opts, WithTelemetry(p.TracerProvider, p.MeterProvider))
	}
	s, err := New(p.Config, p.Health, p.Logger, opts...)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}

// routesParams are the server and what to mount on it.
type routesParams struct {
	fx.In

	Server   *Server
	Logger   *zap.Logger `optional:"true"`
	Bus      *cqrs.Bus   `optional:"true"`
	Mounters []Mounter   `group:"catga.routes"`
}

func mount(p routesParams) {
	p.Server.Mount(p.Mounters...)
	if p.Bus != nil && p.Server.MountDeadLetters(p.Bus) && p.Logger != nil {
		p.Logger.Info("admin routes on: /catga/deadletters")
	}
}

// Routes adds routes: a Mounter, a func(chi.Router), or a constructor of a
// Mounter whose parameters fx provides.
func Routes(routes any) fx.Option {
	if fn, ok := routes.(func(chi.Router)); ok {
		routes = MountFunc(fn)
	}
	return fxreg.Group("httpmod.Routes", "catga.routes", routes, func(m Mounter) Mounter { return m })
}
