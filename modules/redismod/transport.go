package redismod

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs/transport"
)

// Transport is the Redis Streams transport.
type Transport struct {
	cfg    Config
	k      keys
	rdb    redis.UniversalClient
	own    bool // New made the client: Close closes it
	log    *zap.Logger
	owner  string // this transport's reply list
	stop   chan struct{}
	wg     sync.WaitGroup
	closed bool

	mu      sync.Mutex
	started bool
	subs    map[*subscription]struct{}
	srvs    map[*subscription]struct{}
	streams map[string]bool // stream keys this transport publishes to or reads
	// streamKeys caches each topic's stream key, built once rather than on
	// every publish.
	streamKeys sync.Map // transport.Topic -> string
	waiting    map[string]chan *transport.Reply
	replyOn    bool
	schedWake  chan struct{} // the scheduler looks again now
	schedNext  time.Time     // when the scheduler looks next; t.mu
}

var (
	_ transport.Transport      = (*Transport)(nil)
	_ transport.BatchPublisher = (*Transport)(nil)
	_ transport.DeadLetters    = (*Transport)(nil)
	_ transport.Scheduler      = (*Transport)(nil)
)

// New returns a transport for cfg on rdb (nil: a client of its own, made
// from cfg and closed by Close). name identifies this process in reply keys.
func New(cfg Config, rdb redis.UniversalClient, name string, log *zap.Logger) (*Transport, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	own := false
	if rdb == nil {
		c, err := NewClient(cfg)
		if err != nil {
			return nil, err
		}
		rdb, own = c, true
	}
	if log == nil {
		log = zap.NewNop()
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	if name == "" {
		name = "client"
	}
	return &Transport{
		cfg: cfg, k: keys{prefix: cfg.Prefix, tags: cfg.HashTags}, rdb: rdb, own: own, log: log.Named("redismod"),
		owner: strings.NewReplacer("/", ":", " ", "_").Replace(name) + ":" + hex.EncodeToString(rnd[:]),
		stop:  make(chan struct{}),
		subs:  map[*subscription]struct{}{}, srvs: map[*subscription]struct{}{}, streams: map[string]bool{},
		waiting: map[string]chan *transport.Reply{}, schedWake: make(chan struct{}, 1),
	}, nil
}

// Client returns the go-redis client.
func (t *Transport) Client() redis.UniversalClient { return t.rdb }

// Start checks the connection and starts the janitor (trimming, idle
// consumers) and the scheduler (scheduled messages, see schedule.go). A server that cannot be reached yet (a refused or timed-out
// dial, LOADING) is pinged again with backoff, each attempt logged at
// warn, until ctx ends: then Start fails with the last attempt's error and
// the number of attempts. A server that refuses the credentials or the TLS
// handshake fails Start at once. Errors name the server and never hold the
// password.
func (t *Transport) Start(ctx context.Context) error {
	if err := waitForServer(ctx, t.rdb, t.cfg, t.log); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return nil
	}
	t.started = true
	t.wg.Add(2)
	go t.janitor()
	go t.scheduler()
	return nil
}

// ping checks rdb, with an error naming the server and no secret.
func ping(ctx context.Context, rdb redis.UniversalClient, c Config) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redismod: connect to %s: %w", where(c), scrub(err, c))
	}
	return nil
}

// Close closes what is still subscribed (draining it until ctx ends), stops
// the janitor and reply reader, and closes the client if New made it.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	subs := t.subscriptions()
	t.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close(ctx))
	}
	close(t.stop)
	t.wg.Wait()
	if t.own {
		errs = append(errs, t.rdb.Close())
	}
	return errors.Join(errs...)
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Check is the readiness check: PING answers and every consumer reads.
func (t *Transport) Check(ctx context.Context) error {
	if err := t.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redismod: ping: %w", scrub(err, t.cfg))
	}
	t.mu.Lock()
	subs := t.subscriptions()
	t.mu.Unlock()
	for _, s := range subs {
		if err := s.healthy(); err != nil {
			return err
		}
	}
	return nil
}

// subscriptions returns the open subscriptions and services; t.mu held.
func (t *Transport) subscriptions() []*subscription {
	return append(slices.Collect(maps.Keys(t.subs)), slices.Collect(maps.Keys(t.srvs))...)
}

func (t *Transport) touch(stream string) {
	t.mu.Lock()
	t.streams[stream] = true
	t.mu.Unlock()
}

// An entry is two fields: "h", the headers as "Key: value" lines, and
// "payload". One field for the headers, not one each, halves what Redis
// stores and what a reader decodes; XRANGE still shows them readably.
const (
	fieldHeaders = "h"
	fieldPayload = "payload"
)

// headerBlock writes env's headers as lines, leaving out what the reader
// can tell (the kind is the stream's, JSON the default content type, a
// correlation equal to the id implied). A newline in a value is replaced,
// so a value cannot forge another header.
func headerBlock(env *transport.Envelope) string {
	var b strings.Builder
	b.Grow(256)
	env.EachHeader(func(k, v string) {
		switch {
		case k == transport.HeaderContentType && v == defaultContentType,
			k == transport.HeaderCorrelationID && v == env.ID:
			return
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(strings.ReplaceAll(v, "\n", " "))
		b.WriteByte('\n')
	})
	return b.String()
}

const defaultContentType = "application/json"

// fields is an envelope as stream entry fields, with extra fields first.
func fields(env *transport.Envelope, extra ...any) []any {
	out := make([]any, 0, 4+len(extra))
	out = append(out, extra...)
	return append(out, fieldHeaders, headerBlock(env), fieldPayload, env.Payload)
}

// header finds key in a header block.
func header(block, key string) string {
	for len(block) > 0 {
		line, rest, _ := strings.Cut(block, "\n")
		block = rest
		if k, v, ok := strings.Cut(line, ": "); ok && k == key {
			return v
		}
	}
	return ""
}

// envelopeOf reads an envelope back from an entry's fields.
func envelopeOf(values map[string]any) (*transport.Envelope, error) {
	block, _ := values[fieldHeaders].(string)
	payload, _ := values[fieldPayload].(string)
	id := header(block, transport.HeaderID)
	return transport.ParseHeaders(func(k string) string {
		v := header(block, k)
		if v == "" {
			switch k {
			case transport.HeaderContentType:
				return defaultContentType
			case transport.HeaderCorrelationID:
				return id
			}
		}
		return v
	}, []byte(payload))
}

// ensureGroup creates group on stream at start ("$" new entries, "0" all),
// with the stream; an existing group is kept as it is. An error that
// trying again does not change (not a connection's) is marked
// backoff.Permanent.
func (t *Transport) ensureGroup(ctx context.Context, stream, group, start string) error {
	err := t.rdb.XGroupCreateMkStream(ctx, stream, group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		werr := fmt.Errorf("redismod: XGROUP CREATE %s %s: %w", stream, group, scrub(err, t.cfg))
		if !notYet(err) {
			return backoff.Permanent(werr)
		}
		return werr
	}
	t.touch(stream)
	return nil
}

// startGroup is ensureGroup for Subscribe and Serve: while Redis cannot be
// reached it is tried again, with retryStart, until ctx ends.
func (t *Transport) startGroup(ctx context.Context, stream, group, start string) error {
	return retryStart(ctx, t.log, t.cfg, "consumer group not created", func(ctx context.Context) error {
		return t.ensureGroup(ctx, stream, group, start)
	}, zap.String("stream", stream), zap.String("group", group))
}

// msTime is Redis's TIME in milliseconds, for the XCLAIM TIME option.
func msTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// System names the transport in telemetry (messaging.system).
func (t *Transport) System() string { return "redis" }
