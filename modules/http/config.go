package httpmod

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the server's deployment data; the zero value takes defaults.
type Config struct {
	Addr              string        `env:"HTTP_ADDR" envDefault:":8080"`
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"5s"`
	ReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"30s"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"30s"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	MaxBodyBytes      int64         `env:"HTTP_MAX_BODY_BYTES" envDefault:"1048576"`
	// AdminToken turns the admin routes (dead letters) on and is the bearer
	// token they require. Empty, the default: off.
	AdminToken string `env:"HTTP_ADMIN_TOKEN"`
}

// String hides the admin token, so a logged Config leaks nothing.
func (c Config) String() string {
	token := ""
	if c.AdminToken != "" {
		token = "[set]"
	}
	return fmt.Sprintf("{Addr:%s ReadHeaderTimeout:%v ReadTimeout:%v WriteTimeout:%v IdleTimeout:%v MaxBodyBytes:%d AdminToken:%s}",
		c.Addr, c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.MaxBodyBytes, token)
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.ReadHeaderTimeout, 5*time.Second)
	dur(&c.ReadTimeout, 30*time.Second)
	dur(&c.WriteTimeout, 30*time.Second)
	dur(&c.IdleTimeout, 120*time.Second)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	return c
}

// Validate reports every bad field, named by its variable.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR: %q is not host:port: %w", c.Addr, err))
	}
	for name, d := range map[string]time.Duration{
		"HTTP_READ_HEADER_TIMEOUT": c.ReadHeaderTimeout, "HTTP_READ_TIMEOUT": c.ReadTimeout,
		"HTTP_WRITE_TIMEOUT": c.WriteTimeout, "HTTP_IDLE_TIMEOUT": c.IdleTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", name, d))
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, fmt.Errorf("HTTP_ADMIN_TOKEN: %d characters; use at least 16", len(c.AdminToken)))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("HTTP_MAX_BODY_BYTES: must be positive, got %d", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}
