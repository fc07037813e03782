package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/envconf"
)

// Config is the process's deployment data, from the environment.
type Config struct {
	Service    string        `env:"CATGA_SERVICE"`
	Instance   string        `env:"HOSTNAME"`
	LogLevel   string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat  string        `env:"LOG_FORMAT" envDefault:"json"`
	Timeouts                 // CATGA_START_TIMEOUT, CATGA_STOP_TIMEOUT
	DrainDelay time.Duration `env:"CATGA_DRAIN_DELAY" envDefault:"0s"`
}

// LoadConfig reads Config from the environment. The service defaults to
// the binary's name and the instance to the host name.
func LoadConfig() (Config, error) {
	c, err := envconf.Load[Config]()
	if err != nil {
		return c, err
	}
	if c.Service == "" {
		c.Service = serviceName(os.Args[0])
	}
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	return c, c.Validate()
}

// serviceName makes a valid service name of a binary's name ("order-service",
// and "app" for a test binary that cannot be one).
func serviceName(arg0 string) string {
	name := strings.TrimSuffix(filepath.Base(arg0), ".test")
	name = strings.TrimSuffix(name, ".exe")
	if transport.ValidateName(name) != nil {
		return "app"
	}
	return name
}

// Validate reports every bad field, named by its variable.
func (c Config) Validate() error {
	var errs []error
	if err := transport.ValidateName(c.Service); err != nil {
		errs = append(errs, fmt.Errorf("CATGA_SERVICE: %w", err))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("HOSTNAME: empty, and the host has no name"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: want json or console, got %q", c.LogFormat))
	}
	errs = append(errs, c.Timeouts.validate()...)
	if c.DrainDelay < 0 || c.DrainDelay >= c.StopTimeout {
		errs = append(errs, fmt.Errorf("CATGA_DRAIN_DELAY: want 0 up to CATGA_STOP_TIMEOUT (%v), got %v", c.StopTimeout, c.DrainDelay))
	}
	return errors.Join(errs...)
}

// LoadBusConfig reads cqrs.Config from the environment, with the service and
// instance of c.
func LoadBusConfig(c Config) (cqrs.Config, error) {
	bc, err := envconf.Load[cqrs.Config]()
	if err != nil {
		return bc, err
	}
	bc.Service, bc.Instance = c.Service, c.Instance
	// Validate before defaults: an explicit CATGA_MAX_DELIVER=0 is an
	// error, not a request for the default.
	return bc, bc.Validate()
}
