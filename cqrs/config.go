package cqrs

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/envconf"
)

// Config is the bus's deployment data, read from the environment by app.
// Its zero value takes every default.
//
// The `envDefault` tags below are the one place the bus's defaults are
// written (CATGA_CONCURRENCY's is also transport.DefaultConcurrency, what a
// transport takes for a Subscription's zero Concurrency; a test holds the two
// equal). The bus's internal defaults are read from them, and WithDefaults
// fills a Config's zero fields from them, so a bus configured in Go, one read from
// the environment and one built by New alone get the same defaults (the
// package doc says why the tags are the source).
//
// Service and Instance are not read here: CATGA_SERVICE and HOSTNAME are
// app.Config's, the one reader of each variable, and app copies them in
// (app.LoadBusConfig). Set them yourself for a bus built in Go.
type Config struct {
	Service           string        `env:"-"` // the consumer group: CATGA_SERVICE, through app
	Instance          string        `env:"-"` // this process: HOSTNAME, through app
	MaxDeliver        int           `env:"CATGA_MAX_DELIVER" envDefault:"5"`
	MaxPayload        int           `env:"CATGA_MAX_PAYLOAD" envDefault:"1048576"`
	Concurrency       int           `env:"CATGA_CONCURRENCY" envDefault:"32"`
	HandlerTimeout    time.Duration `env:"CATGA_HANDLER_TIMEOUT" envDefault:"30s"`
	RetryAttempts     int           `env:"CATGA_RETRY_ATTEMPTS" envDefault:"3"`
	RetryInitial      time.Duration `env:"CATGA_RETRY_INITIAL" envDefault:"20ms"`
	RetryMax          time.Duration `env:"CATGA_RETRY_MAX" envDefault:"1s"`
	RedeliveryInitial time.Duration `env:"CATGA_REDELIVERY_INITIAL" envDefault:"1s"`
	RedeliveryMax     time.Duration `env:"CATGA_REDELIVERY_MAX" envDefault:"1m"`
	IdempotencyTTL    time.Duration `env:"CATGA_IDEMPOTENCY_TTL" envDefault:"24h"`
}

// defaults is Config as its envDefault tags describe it.
var defaults = envconf.MustDefaults[Config]()

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	envconf.FillZero(&c, defaults)
	return c
}

// NewFromConfig builds a bus from cfg without fx, as cqrs.Module does with
// it: cfg's zero fields take their defaults and the result is validated;
// the bus runs on t (nil: in process only) with the default dispatch and
// delivery behaviors (DefaultDispatch, DefaultDelivery) and an inbox.Memory,
// and regs registered. For a logger, behaviors of your own, another inbox or
// telemetry, use cqrs.Module, or New with Options.
func NewFromConfig(cfg Config, t transport.Transport, regs ...Registration) (*Bus, error) {
	o, err := cfg.options(wiring{transport: t})
	if err != nil {
		return nil, err
	}
	return New(o, regs...)
}

// wiring is what a bus takes besides its Config; cqrs.Module fills it from
// the container.
type wiring struct {
	transport transport.Transport
	logger    *slog.Logger
	inbox     inbox.Store // nil: an inbox.Memory
	behaviors []Behavior  // the user's, inside the default ones
	codecs    []Codec
	tracer    trace.TracerProvider
	meter     metric.MeterProvider
}

// options maps c, with its defaults, and w to a bus's Options: the one
// place a Config becomes Options.
func (c Config) options(w wiring) (Options, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Options{}, err
	}
	store := w.inbox
	if store == nil {
		store = &inbox.Memory{}
	}
	redelivery := defaultRedelivery
	redelivery.Initial, redelivery.Max = c.RedeliveryInitial, c.RedeliveryMax
	return Options{
		Service:   c.Service,
		Instance:  c.Instance,
		Transport: w.transport,
		Codecs:    w.codecs,
		Logger:    w.logger,
		Dispatch:  DefaultDispatch(w.logger, w.behaviors...),
		Delivery: DefaultDelivery(w.logger, DeliveryConfig{
			Timeout:        c.HandlerTimeout,
			Retry:          RetryPolicy{Attempts: c.RetryAttempts, Initial: c.RetryInitial, Max: c.RetryMax},
			Idempotency:    store,
			IdempotencyTTL: c.IdempotencyTTL,
			Service:        c.Service,
		}, w.behaviors...),
		MaxDeliver:     c.MaxDeliver,
		MaxPayload:     c.MaxPayload,
		Redelivery:     redelivery,
		Concurrency:    c.Concurrency,
		TracerProvider: w.tracer,
		MeterProvider:  w.meter,
	}, nil
}

// Validate reports every bad field, each named by its variable.
func (c Config) Validate() error {
	var errs []error
	atLeast := func(name string, v, min int) {
		if v < min {
			errs = append(errs, fmt.Errorf("%s: must be at least %d, got %d", name, min, v))
		}
	}
	positive := func(name string, v time.Duration) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %v", name, v))
		}
	}
	atLeast("CATGA_MAX_DELIVER", c.MaxDeliver, 1)
	atLeast("CATGA_MAX_PAYLOAD", c.MaxPayload, 1)
	atLeast("CATGA_CONCURRENCY", c.Concurrency, 1)
	atLeast("CATGA_RETRY_ATTEMPTS", c.RetryAttempts, 1)
	positive("CATGA_HANDLER_TIMEOUT", c.HandlerTimeout)
	positive("CATGA_RETRY_INITIAL", c.RetryInitial)
	positive("CATGA_RETRY_MAX", c.RetryMax)
	positive("CATGA_REDELIVERY_INITIAL", c.RedeliveryInitial)
	positive("CATGA_REDELIVERY_MAX", c.RedeliveryMax)
	positive("CATGA_IDEMPOTENCY_TTL", c.IdempotencyTTL)
	if c.Service != "" {
		if err := transport.ValidateName(c.Service); err != nil {
			errs = append(errs, fmt.Errorf("CATGA_SERVICE: %w", err))
		}
	}
	if len(c.Instance) > transport.MaxNameLen {
		errs = append(errs, fmt.Errorf("HOSTNAME: %d characters, over %d", len(c.Instance), transport.MaxNameLen))
	}
	return errors.Join(errs...)
}
