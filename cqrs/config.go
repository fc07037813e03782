package cqrs

import (
	"errors"
	"fmt"
	"time"
)

// Config is the bus's deployment data, read from the environment by app.
// Its zero value takes every default.
type Config struct {
	Service           string        `env:"CATGA_SERVICE"`
	Instance          string        `env:"HOSTNAME"`
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

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxDeliver, DefaultMaxDeliver)
	def(&c.MaxPayload, DefaultMaxPayload)
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.RetryAttempts, DefaultRetry.Attempts)
	dur(&c.HandlerTimeout, 30*time.Second)
	dur(&c.RetryInitial, DefaultRetry.Initial)
	dur(&c.RetryMax, DefaultRetry.Max)
	dur(&c.RedeliveryInitial, DefaultRedelivery.Initial)
	dur(&c.RedeliveryMax, DefaultRedelivery.Max)
	dur(&c.IdempotencyTTL, DefaultIdempotencyTTL)
	return c
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
		if err := ValidateName(c.Service); err != nil {
			errs = append(errs, fmt.Errorf("CATGA_SERVICE: %w", err))
		}
	}
	if len(c.Instance) > maxNameLen {
		errs = append(errs, fmt.Errorf("HOSTNAME: %d characters, over %d", len(c.Instance), maxNameLen))
	}
	return errors.Join(errs...)
}
