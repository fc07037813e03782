package natsmod

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/internal/envconf"
	"github.com/catga-go/catga/internal/redact"
	"github.com/catga-go/catga/internal/tlsfiles"
)

// Config is natsmod's deployment data, from the environment. Its zero
// value, with defaults applied, connects to nats://127.0.0.1:4222.
//
// The `envDefault` tags below are the one place natsmod's defaults are
// written; WithDefaults fills a Config's zero fields from them (all but
// MaxAge, whose zero means no age limit).
type Config struct {
	URL      string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"` // servers, comma separated
	Name     string `env:"NATS_NAME"`                                   // connection name; default service/instance
	Creds    string `env:"NATS_CREDS"`                                  // .creds file (JWT and nkey seed)
	NkeySeed string `env:"NATS_NKEY_SEED"`                              // file holding an nkey user seed
	User     string `env:"NATS_USER"`
	Password string `env:"NATS_PASSWORD"`
	Token    string `env:"NATS_TOKEN"`
	TLSCA    string `env:"NATS_TLS_CA"`   // CA file to verify the server
	TLSCert  string `env:"NATS_TLS_CERT"` // client certificate file
	TLSKey   string `env:"NATS_TLS_KEY"`  // client key file

	ConnectTimeout time.Duration `env:"NATS_CONNECT_TIMEOUT" envDefault:"5s"`
	ReconnectWait  time.Duration `env:"NATS_RECONNECT_WAIT" envDefault:"1s"`
	MaxReconnects  int           `env:"NATS_MAX_RECONNECTS" envDefault:"-1"` // -1: forever
	PingInterval   time.Duration `env:"NATS_PING_INTERVAL" envDefault:"2s"`  // with 2 pings out, a dead link shows in about 4s

	Prefix       string        `env:"NATS_SUBJECT_PREFIX" envDefault:"catga"` // subjects: <prefix>.events.<Name>
	StreamPrefix string        `env:"NATS_STREAM_PREFIX" envDefault:"CATGA"`  // streams: <prefix>_EVENTS, _COMMANDS, _DLQ
	Storage      string        `env:"NATS_STREAM_STORAGE" envDefault:"file"`  // file or memory
	Replicas     int           `env:"NATS_STREAM_REPLICAS" envDefault:"1"`
	MaxAge       time.Duration `env:"NATS_STREAM_MAX_AGE" envDefault:"168h"` // 0: forever
	MaxBytes     int64         `env:"NATS_STREAM_MAX_BYTES" envDefault:"-1"` // -1: unlimited
	DLQMaxAge    time.Duration `env:"NATS_DLQ_MAX_AGE" envDefault:"720h"`
	Duplicates   time.Duration `env:"NATS_DUPLICATE_WINDOW" envDefault:"2m"` // Nats-Msg-Id dedup window

	AckWait        time.Duration `env:"NATS_ACK_WAIT" envDefault:"30s"`
	MaxAckPending  int           `env:"NATS_MAX_ACK_PENDING" envDefault:"1000"`
	FetchBatch     int           `env:"NATS_FETCH_BATCH" envDefault:"100"`     // messages pulled at once, at most the bus's concurrency
	RequestTimeout time.Duration `env:"NATS_REQUEST_TIMEOUT" envDefault:"30s"` // for a Send or Ask whose context has no deadline
	PublishWindow  int           `env:"NATS_PUBLISH_WINDOW" envDefault:"256"`  // acks a PublishBatch awaits at once
	// Schedules is how scheduled messages are held: "auto" (the server's
	// message scheduling on 2.12 and later, the <P>_SCHEDULES stream
	// before) or "stream" (that stream on any server: no NATS_STREAM_MAX_AGE
	// bound on how far ahead, milliseconds late instead of up to 250 ms).
	Schedules string `env:"NATS_SCHEDULES" envDefault:"auto"`
}

// defaults is Config as its envDefault tags describe it: the one place
// natsmod's defaults are written.
var defaults = envconf.MustDefaults[Config]()

// WithDefaults returns c with zero fields set to their defaults, those of
// the envDefault tags, except MaxAge: a zero MaxAge keeps messages forever.
func (c Config) WithDefaults() Config {
	maxAge := c.MaxAge
	envconf.FillZero(&c, defaults)
	// A zero MaxAge is a setting (no age limit), not a field left unset, so
	// it is not filled: NATS_STREAM_MAX_AGE's default (168h) is for a
	// Config read from the environment only.
	c.MaxAge = maxAge
	return c
}

// Validate reports every bad field, named by its variable. Secrets are
// never part of an error.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, u := range strings.Split(c.URL, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss") {
			add("NATS_URL: %q is not a nats://host:port URL", redactURL(strings.TrimSpace(u)))
		}
	}
	auth := 0
	for _, set := range []bool{c.Creds != "", c.NkeySeed != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		add("NATS_CREDS, NATS_NKEY_SEED, NATS_USER/NATS_PASSWORD and NATS_TOKEN: set one way to authenticate, not %d", auth)
	}
	if (c.User == "") != (c.Password == "") {
		add("NATS_USER and NATS_PASSWORD: set both or neither")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("NATS_TLS_CERT and NATS_TLS_KEY: set both or neither")
	}
	for name, file := range map[string]string{"NATS_CREDS": c.Creds, "NATS_NKEY_SEED": c.NkeySeed, "NATS_TLS_CA": c.TLSCA, "NATS_TLS_CERT": c.TLSCert, "NATS_TLS_KEY": c.TLSKey} {
		if file != "" {
			if _, err := os.Stat(file); err != nil {
				add("%s: %v", name, err)
			}
		}
	}
	if err := validToken(c.Prefix); err != nil {
		add("NATS_SUBJECT_PREFIX: %v", err)
	}
	if err := validToken(c.StreamPrefix); err != nil {
		add("NATS_STREAM_PREFIX: %v", err)
	}
	if c.Schedules != "auto" && c.Schedules != "stream" {
		add("NATS_SCHEDULES: want auto or stream, got %q", c.Schedules)
	}
	if c.Storage != "file" && c.Storage != "memory" {
		add("NATS_STREAM_STORAGE: want file or memory, got %q", c.Storage)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		add("NATS_STREAM_REPLICAS: want 1 to 5, got %d", c.Replicas)
	}
	for name, d := range map[string]time.Duration{
		"NATS_CONNECT_TIMEOUT": c.ConnectTimeout, "NATS_RECONNECT_WAIT": c.ReconnectWait, "NATS_PING_INTERVAL": c.PingInterval,
		"NATS_DUPLICATE_WINDOW": c.Duplicates, "NATS_ACK_WAIT": c.AckWait, "NATS_REQUEST_TIMEOUT": c.RequestTimeout,
	} {
		if d <= 0 {
			add("%s: must be positive, got %v", name, d)
		}
	}
	check := func(bad bool, format string, args ...any) {
		if bad {
			add(format, args...)
		}
	}
	check(c.MaxAge < 0 || c.DLQMaxAge < 0, "NATS_STREAM_MAX_AGE and NATS_DLQ_MAX_AGE: must not be negative")
	check(c.AckWait > 0 && c.AckWait < time.Second, "NATS_ACK_WAIT: at least 1s, got %v", c.AckWait)
	check(c.MaxAckPending < 1, "NATS_MAX_ACK_PENDING: must be at least 1, got %d", c.MaxAckPending)
	check(c.FetchBatch < 1, "NATS_FETCH_BATCH: must be at least 1, got %d", c.FetchBatch)
	check(c.PublishWindow < 1, "NATS_PUBLISH_WINDOW: must be at least 1, got %d", c.PublishWindow)
	return errors.Join(errs...)
}

func validToken(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("%q: only letters, digits, '_' and '-'", s)
		}
	}
	return nil
}

// String shows c without its secrets.
func (c Config) String() string {
	hidden := func(s string) string {
		if s == "" {
			return ""
		}
		return "[set]"
	}
	return fmt.Sprintf("{URL:%s Creds:%s NkeySeed:%s User:%s Password:%s Token:%s TLS:%v Prefix:%s StreamPrefix:%s Storage:%s Replicas:%d AckWait:%v}",
		redactURLs(c.URL), c.Creds, c.NkeySeed, c.User, hidden(c.Password), hidden(c.Token), c.TLSCA != "" || c.TLSCert != "",
		c.Prefix, c.StreamPrefix, c.Storage, c.Replicas, c.AckWait)
}

// redactURL hides a password or token in a URL's user info, parsable or not.
func redactURL(s string) string { return redact.URL(s) }

func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// options returns the nats.go options of c.
func (c Config) options(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(c.ConnectTimeout),
		nats.ReconnectWait(c.ReconnectWait),
		nats.MaxReconnects(c.MaxReconnects),
		nats.PingInterval(c.PingInterval),
		nats.MaxPingsOutstanding(2),
		nats.RetryOnFailedConnect(false),
		// No reconnect buffer: a publish while reconnecting fails at once,
		// rather than being kept and sent after the reconnect, when its
		// caller has been told it failed and may have undone its work.
		// Subscriptions are resent on reconnect without it; an ack or a pull
		// request refused meanwhile is redelivered or reissued.
		nats.ReconnectBufSize(-1),
	}
	switch {
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.NkeySeed != "":
		o, err := nats.NkeyOptionFromSeed(c.NkeySeed)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED: %w", scrub(err, c))
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCA != "" || c.TLSCert != "" {
		tc, err := tlsfiles.Load(nil, "NATS_TLS", c.TLSCA, c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// scrub removes c's secrets (fields and URLs) from err's text.
func scrub(err error, c Config) error {
	if err == nil {
		return nil
	}
	msg := redact.Text(err.Error(), strings.Split(c.URL, ","), c.Password, c.Token)
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

func (c Config) storage() jetstream.StorageType {
	if c.Storage == "memory" {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}
