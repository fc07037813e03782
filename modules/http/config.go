package httpmod

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/catga-go/catga/internal/envconf"
)

// Config is the server's deployment data; the zero value takes defaults.
type Config struct {
	Addr              string        `env:"HTTP_ADDR" envDefault:":8080"`
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"5s"`
	ReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"30s"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"30s"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	MaxBodyBytes      int64         `env:"HTTP_MAX_BODY_BYTES" envDefault:"1048576"`
	// HandlerTimeout is the deadline of every request's context. It must be
	// below WriteTimeout, so that a handler waiting on a broker that never
	// answers writes its 504 while the connection is still there to take
	// it. Zero: 5/6 of WriteTimeout (25s of the default 30s).
	HandlerTimeout time.Duration `env:"HTTP_HANDLER_TIMEOUT"`
	// TrustedProxies lists, comma-separated, the IPs and CIDRs of the
	// proxies whose X-Forwarded-For and X-Real-IP are believed. Empty, the
	// default: none; the peer address is the client's.
	TrustedProxies string `env:"HTTP_TRUSTED_PROXIES"`
	// AdminAddr serves /metrics and the admin routes on a server of their
	// own, off the public port. Empty, the default: they are on Addr.
	AdminAddr string `env:"HTTP_ADMIN_ADDR"`
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
	return fmt.Sprintf("{Addr:%s ReadHeaderTimeout:%v ReadTimeout:%v WriteTimeout:%v IdleTimeout:%v MaxBodyBytes:%d HandlerTimeout:%v TrustedProxies:%s AdminAddr:%s AdminToken:%s}",
		c.Addr, c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.MaxBodyBytes, c.HandlerTimeout, c.TrustedProxies, c.AdminAddr, token)
}

// defaults is Config as its envDefault tags describe it: the one place
// the server's defaults are written.
var defaults = envconf.MustDefaults[Config]()

// WithDefaults returns c with zero fields set to their defaults: those of
// the envDefault tags, and a HandlerTimeout of 5/6 of the WriteTimeout.
func (c Config) WithDefaults() Config {
	envconf.FillZero(&c, defaults)
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = c.WriteTimeout - c.WriteTimeout/6
	}
	return c
}

// Validate reports every bad field, named by its variable.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR: %q is not host:port: %w", c.Addr, err))
	}
	if c.AdminAddr != "" {
		if _, port, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("HTTP_ADMIN_ADDR: %q is not host:port: %w", c.AdminAddr, err))
		} else if c.AdminAddr == c.Addr && port != "0" {
			errs = append(errs, fmt.Errorf("HTTP_ADMIN_ADDR: %q is HTTP_ADDR too; give the admin server a port of its own, or leave it empty", c.AdminAddr))
		}
	}
	for name, d := range map[string]time.Duration{
		"HTTP_READ_HEADER_TIMEOUT": c.ReadHeaderTimeout, "HTTP_READ_TIMEOUT": c.ReadTimeout,
		"HTTP_WRITE_TIMEOUT": c.WriteTimeout, "HTTP_IDLE_TIMEOUT": c.IdleTimeout, "HTTP_HANDLER_TIMEOUT": c.HandlerTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", name, d))
		}
	}
	if c.HandlerTimeout > 0 && c.WriteTimeout > 0 && c.HandlerTimeout >= c.WriteTimeout {
		errs = append(errs, fmt.Errorf("HTTP_HANDLER_TIMEOUT: %v must be below HTTP_WRITE_TIMEOUT %v, or the server drops the connection before the handler's 504 is written",
			c.HandlerTimeout, c.WriteTimeout))
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, fmt.Errorf("HTTP_ADMIN_TOKEN: %d characters; use at least 16", len(c.AdminToken)))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("HTTP_MAX_BODY_BYTES: must be positive, got %d", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// parseProxies parses HTTP_TRUSTED_PROXIES: IPs and CIDRs, comma-separated.
func parseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(v, "/") {
			p, err = netip.ParsePrefix(v)
			p = p.Masked()
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(v); err == nil && a.Zone() == "" {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			errs = append(errs, fmt.Errorf("HTTP_TRUSTED_PROXIES: %q is not an IP or a CIDR", v))
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
