package redismod

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/internal/redact"
	"github.com/catga-go/catga/internal/tlsfiles"
)

// Config is redismod's deployment data, from the environment.
//
// The `envDefault` tags below are the one place redismod's defaults are
// written; WithDefaults fills a Config's zero fields from them (all but
// HashTags, whose false is a setting of its own).
type Config struct {
	URL        string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"` // redis:// or rediss://
	Connection string `env:"REDIS_CONNECTION"`                                // host:port[,host:port]; several = Redis Cluster; wins over REDIS_URL
	Cluster    bool   `env:"REDIS_CLUSTER"`                                   // one address that is a cluster endpoint
	Username   string `env:"REDIS_USERNAME"`                                  // ACL user; overrides the URL's
	Password   string `env:"REDIS_PASSWORD"`                                  // overrides the URL's
	TLS        bool   `env:"REDIS_TLS"`                                       // TLS without rediss://
	TLSCA      string `env:"REDIS_TLS_CA"`
	TLSCert    string `env:"REDIS_TLS_CERT"`
	TLSKey     string `env:"REDIS_TLS_KEY"`

	PoolSize     int           `env:"REDIS_POOL_SIZE" envDefault:"0"` // 0: go-redis's default, 10 per CPU
	DialTimeout  time.Duration `env:"REDIS_DIAL_TIMEOUT" envDefault:"5s"`
	ReadTimeout  time.Duration `env:"REDIS_READ_TIMEOUT" envDefault:"3s"`
	WriteTimeout time.Duration `env:"REDIS_WRITE_TIMEOUT" envDefault:"3s"`

	Prefix   string `env:"REDIS_PREFIX" envDefault:"catga"` // keys: <prefix>:{events:<Name>}
	HashTags bool   `env:"REDIS_HASH_TAGS" envDefault:"true"`

	Block          time.Duration `env:"REDIS_BLOCK" envDefault:"500ms"`            // XREADGROUP BLOCK; a subscription closes within it
	FetchBatch     int           `env:"REDIS_FETCH_BATCH" envDefault:"100"`        // XREADGROUP COUNT, at most the bus's concurrency
	ClaimIdle      time.Duration `env:"REDIS_CLAIM_IDLE" envDefault:"30s"`         // a pending entry idle this long is taken over
	ClaimInterval  time.Duration `env:"REDIS_CLAIM_INTERVAL" envDefault:"100ms"`   // how often XAUTOCLAIM looks
	MaxLen         int64         `env:"REDIS_STREAM_MAX_LEN" envDefault:"1000000"` // hard cap of a stream's length
	TrimInterval   time.Duration `env:"REDIS_TRIM_INTERVAL" envDefault:"30s"`
	ConsumerIdle   time.Duration `env:"REDIS_CONSUMER_MAX_IDLE" envDefault:"1h"` // idle consumers without pending entries are removed
	ReplyTTL       time.Duration `env:"REDIS_REPLY_TTL" envDefault:"1m"`
	RequestTimeout time.Duration `env:"REDIS_REQUEST_TIMEOUT" envDefault:"30s"` // for a Send or Ask whose context has no deadline
	// ScheduleInterval is the longest the scheduler sleeps between looks
	// for due scheduled messages: what a message due sooner than it,
	// scheduled by another process, may be late by.
	ScheduleInterval time.Duration `env:"REDIS_SCHEDULE_INTERVAL" envDefault:"1s"`
}

// defaults is Config as its envDefault tags describe it: the one place
// redismod's defaults are written.
var defaults = envconf.MustDefaults[Config]()

// WithDefaults returns c with zero fields set to their defaults, those of
// the envDefault tags, except HashTags: it has no zero default, so set it
// in code, or through REDIS_HASH_TAGS.
func (c Config) WithDefaults() Config {
	hashTags := c.HashTags
	envconf.FillZero(&c, defaults)
	// A false HashTags is a setting (keys without hash tags), not a field
	// left unset, so it is not filled: REDIS_HASH_TAGS's default (true) is
	// for a Config read from the environment only.
	c.HashTags = hashTags
	return c
}

// Validate reports every bad field, named by its variable; no secret is
// ever part of an error.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Connection != "" {
		for _, a := range strings.Split(c.Connection, ",") {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil {
				add("REDIS_CONNECTION: %q is not host:port", strings.TrimSpace(a))
			}
		}
	} else if _, err := redis.ParseURL(c.URL); err != nil {
		add("REDIS_URL: %s: %v", redactURL(c.URL), scrubText(err.Error(), c))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("REDIS_TLS_CERT and REDIS_TLS_KEY: set both or neither")
	}
	for name, f := range map[string]string{"REDIS_TLS_CA": c.TLSCA, "REDIS_TLS_CERT": c.TLSCert, "REDIS_TLS_KEY": c.TLSKey} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				add("%s: %v", name, err)
			}
		}
	}
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, "{} \t\n") {
		add("REDIS_PREFIX: %q: no spaces or braces", c.Prefix)
	}
	for name, d := range map[string]time.Duration{
		"REDIS_DIAL_TIMEOUT": c.DialTimeout, "REDIS_READ_TIMEOUT": c.ReadTimeout, "REDIS_WRITE_TIMEOUT": c.WriteTimeout,
		"REDIS_BLOCK": c.Block, "REDIS_CLAIM_IDLE": c.ClaimIdle, "REDIS_CLAIM_INTERVAL": c.ClaimInterval,
		"REDIS_TRIM_INTERVAL": c.TrimInterval, "REDIS_CONSUMER_MAX_IDLE": c.ConsumerIdle, "REDIS_REPLY_TTL": c.ReplyTTL,
		"REDIS_REQUEST_TIMEOUT": c.RequestTimeout, "REDIS_SCHEDULE_INTERVAL": c.ScheduleInterval,
	} {
		if d <= 0 {
			add("%s: must be positive, got %v", name, d)
		}
	}
	if c.ClaimIdle > 0 && c.ClaimIdle < time.Second {
		add("REDIS_CLAIM_IDLE: at least 1s, got %v", c.ClaimIdle)
	}
	if c.PoolSize < 0 {
		add("REDIS_POOL_SIZE: must not be negative, got %d", c.PoolSize)
	}
	if c.FetchBatch < 1 {
		add("REDIS_FETCH_BATCH: must be at least 1, got %d", c.FetchBatch)
	}
	if c.MaxLen < 1000 {
		add("REDIS_STREAM_MAX_LEN: at least 1000, got %d", c.MaxLen)
	}
	return errors.Join(errs...)
}

// String shows c without secrets.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[set]"
	}
	return fmt.Sprintf("{URL:%s Connection:%s Username:%s Password:%s TLS:%v Prefix:%s HashTags:%v}",
		redactURL(c.URL), c.Connection, c.Username, pw, c.TLS || strings.HasPrefix(c.URL, "rediss://"), c.Prefix, c.HashTags)
}

func redactURL(s string) string { return redact.URL(s) }

// scrubText removes c's password (the field's and the URL's, parsable or
// not) from msg.
func scrubText(msg string, c Config) string {
	return redact.Text(msg, []string{c.URL}, c.Password)
}

func scrub(err error, c Config) error {
	if err == nil {
		return nil
	}
	if m := scrubText(err.Error(), c); m != err.Error() {
		return errors.New(m)
	}
	return err
}

// Options returns the go-redis options of c.
func (c Config) Options() (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		PoolSize: c.PoolSize, DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout,
		ContextTimeoutEnabled: true,
	}
	if c.Connection != "" {
		for _, a := range strings.Split(c.Connection, ",") {
			o.Addrs = append(o.Addrs, strings.TrimSpace(a))
		}
	} else {
		p, err := redis.ParseURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %s: %s", redactURL(c.URL), scrubText(err.Error(), c))
		}
		o.Addrs, o.DB, o.Username, o.Password, o.TLSConfig = []string{p.Addr}, p.DB, p.Username, p.Password, p.TLSConfig
	}
	o.IsClusterMode = c.Cluster
	if c.Username != "" {
		o.Username = c.Username
	}
	if c.Password != "" {
		o.Password = c.Password
	}
	if c.TLS || c.TLSCA != "" || c.TLSCert != "" {
		tc, err := tlsfiles.Load(o.TLSConfig, "REDIS_TLS", c.TLSCA, c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, err
		}
		o.TLSConfig = tc
	}
	return o, nil
}

// NewClient returns a go-redis UniversalClient for c (a cluster client for
// several addresses) and checks it with PING within ctx's deadline.
func NewClient(c Config) (redis.UniversalClient, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o, err := c.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(o), nil
}
