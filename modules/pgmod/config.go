package pgmod

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/internal/redact"
)

// Config is pgmod's deployment data, from the environment.
type Config struct {
	// URL is a postgres:// URL or a libpq key=value string. Empty: the
	// standard PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
	// PGDATABASE, PGSSLMODE, ...) as libpq reads them.
	URL            string        `env:"DATABASE_URL"`
	MaxConns       int32         `env:"PG_MAX_CONNS" envDefault:"10"`
	ConnectTimeout time.Duration `env:"PG_CONNECT_TIMEOUT" envDefault:"5s"`

	OutboxBatch  int           `env:"PG_OUTBOX_BATCH" envDefault:"256"`     // records per relay batch
	OutboxPoll   time.Duration `env:"PG_OUTBOX_POLL" envDefault:"100ms"`    // how often the relay looks without a wake-up
	LeadRetry    time.Duration `env:"PG_OUTBOX_LEAD_RETRY" envDefault:"1s"` // how often a stand-by relay tries to lead
	InboxTTL     time.Duration `env:"PG_INBOX_TTL" envDefault:"168h"`       // how long an inbox mark is kept
	JanitorEvery time.Duration `env:"PG_JANITOR_INTERVAL" envDefault:"10m"` // how often old inbox marks are removed
}

// defaults is Config as its envDefault tags describe it: the one place
// pgmod's defaults are written.
var defaults = envconf.MustDefaults[Config]()

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	envconf.FillZero(&c, defaults)
	return c
}

// Validate reports every bad field, each named by its variable; a URL in
// an error never shows its password.
func (c Config) Validate() error {
	var errs []error
	if _, err := c.poolConfig(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxConns < 2 {
		errs = append(errs, fmt.Errorf("PG_MAX_CONNS: must be at least 2 (the relay holds one), got %d", c.MaxConns))
	}
	if c.OutboxBatch < 1 || c.OutboxBatch > 10_000 {
		errs = append(errs, fmt.Errorf("PG_OUTBOX_BATCH: must be 1 to 10000, got %d", c.OutboxBatch))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"PG_CONNECT_TIMEOUT", c.ConnectTimeout}, {"PG_OUTBOX_POLL", c.OutboxPoll}, {"PG_OUTBOX_LEAD_RETRY", c.LeadRetry},
		{"PG_INBOX_TTL", c.InboxTTL}, {"PG_JANITOR_INTERVAL", c.JanitorEvery}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %v", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// poolConfig parses the URL into a pool configuration.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %s", redact.Text(err.Error(), []string{c.URL}, redact.Secrets(c.URL)...))
	}
	pc.MaxConns = max(c.MaxConns, 2)
	if c.ConnectTimeout > 0 {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	return pc, nil
}

// where names the server for errors and logs, without secrets.
func (c Config) where() string {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return redact.URL(c.URL)
	}
	return fmt.Sprintf("%s:%d/%s", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database)
}
