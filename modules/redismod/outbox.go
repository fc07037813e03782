package redismod

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/outbox"
)

// Sentinels of Outbox.Tx.
var (
	// ErrCrossSlot: on a Redis Cluster, a key the transaction watched or
	// wrote is in another slot than the outbox's; build it with Outbox.Key.
	ErrCrossSlot = errors.New("redismod: outbox tx: a key is outside the outbox's slot")
	// ErrTxConflict: the transaction's watched keys kept changing under it
	// (OutboxConfig.Attempts runs of fn, each aborted at EXEC).
	ErrTxConflict = errors.New("redismod: transaction conflict")
)

// Outbox defaults.
const (
	DefaultOutboxAttempts  = 32
	DefaultOutboxLease     = 5 * time.Second
	DefaultOutboxLeadRetry = time.Second
)

// OutboxConfig tunes an Outbox. Its zero value takes every default.
type OutboxConfig struct {
	// Tag is the hash tag of every key of the outbox, without its braces.
	// Default: <REDIS_PREFIX>:<service>. Replicas of a service share it;
	// services do not.
	Tag string `env:"REDIS_OUTBOX_TAG"`
	// InboxTTL is how long an inbox mark is kept; a message redelivered
	// after it is gone runs again. Default: CATGA_IDEMPOTENCY_TTL (24h).
	InboxTTL time.Duration `env:"REDIS_INBOX_TTL"`
	// Attempts bounds the runs of a Tx whose watched keys change under it
	// before it fails with ErrTxConflict. Default 32.
	Attempts int `env:"REDIS_OUTBOX_ATTEMPTS"`
	// Lease is the relay lead's lease, renewed every third of it; a
	// crashed leader's outbox waits for another relay up to this long.
	// Default 5s.
	Lease time.Duration `env:"REDIS_OUTBOX_LEASE"`
	// LeadRetry is how often a stand-by relay tries to take the lead.
	// Default 1s.
	LeadRetry time.Duration `env:"REDIS_OUTBOX_LEAD_RETRY"`
	// Batch and Poll tune the relay (outbox.Config); defaults 256 and 100ms.
	Batch int           `env:"REDIS_OUTBOX_BATCH"`
	Poll  time.Duration `env:"REDIS_OUTBOX_POLL"`
}

// WithDefaults returns c with every zero field set to its default.
func (c OutboxConfig) WithDefaults() OutboxConfig {
	if c.InboxTTL == 0 {
		c.InboxTTL = cqrs.Config{}.WithDefaults().IdempotencyTTL
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultOutboxAttempts
	}
	if c.Lease == 0 {
		c.Lease = DefaultOutboxLease
	}
	if c.LeadRetry == 0 {
		c.LeadRetry = DefaultOutboxLeadRetry
	}
	if c.Batch == 0 {
		c.Batch = outbox.DefaultBatch
	}
	if c.Poll == 0 {
		c.Poll = outbox.DefaultPoll
	}
	return c
}

// Validate reports every bad field.
func (c OutboxConfig) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Tag, "{} \t\n") {
		errs = append(errs, fmt.Errorf("OutboxConfig.Tag: %q: no spaces or braces", c.Tag))
	}
	for name, d := range map[string]time.Duration{"InboxTTL": c.InboxTTL, "LeadRetry": c.LeadRetry, "Poll": c.Poll} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("OutboxConfig.%s: must be positive, got %v", name, d))
		}
	}
	if c.Lease < 30*time.Millisecond {
		errs = append(errs, fmt.Errorf("OutboxConfig.Lease: at least 30ms, got %v", c.Lease))
	}
	if c.Attempts < 1 {
		errs = append(errs, fmt.Errorf("OutboxConfig.Attempts: must be at least 1, got %d", c.Attempts))
	}
	if c.Batch < 1 || c.Batch > 10_000 {
		errs = append(errs, fmt.Errorf("OutboxConfig.Batch: must be 1 to 10000, got %d", c.Batch))
	}
	return errors.Join(errs...)
}

// Relay returns the relay's settings.
func (c OutboxConfig) Relay() outbox.Config { return outbox.Config{Batch: c.Batch, Poll: c.Poll} }

// Outbox keeps a service's state, its outgoing messages and its inbox in
// Redis, in one MULTI/EXEC: exactly-once effects for handlers whose state
// lives in the same Redis.
//
//	func (h *Charger) Handle(ctx context.Context, e StockReserved) error {
//		return h.outbox.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
//			pipe.HSet(ctx, h.outbox.Key("charge", e.OrderID), "cents", e.Total)
//			return h.bus.Publish(ctx, PaymentCompleted{OrderID: e.OrderID}) // an XADD in the same MULTI
//		}, redismod.Key(e.OrderID))
//	}
//
// What holds:
//
//   - Outbox: inside Tx, bus.Publish and bus.Dispatch queue an XADD of the
//     stamped envelope (its headers, payload and topic) to the outbox
//     stream, <tag>:_outbox, in the MULTI; nothing is visible until EXEC,
//     and a fn that fails sends nothing. The relay (cqrs/outbox, over
//     OutboxStore) publishes committed entries on the bus's transport with
//     the envelope id, retries until acknowledged, and deletes them; it is
//     woken at commit in process and polls (OutboxConfig.Poll) for the
//     entries of other replicas or of a crashed one.
//   - One relay at a time: the one holding the lease <tag>:_outbox:lead
//     (SET NX PX, renewed every third of OutboxConfig.Lease) publishes, the
//     others stand by. A dead leader's lease runs out and passes on.
//   - Order: the outbox stream holds entries in EXEC order, and one relay
//     publishes them oldest first, so the messages of one transaction are
//     published in the order written and those of any two transactions in
//     their commit order. Key(k) adds what commit order alone does not
//     give: transactions of one key are serializable (each WATCHes the
//     key's version and bumps it; one that another commit of the key
//     overtook runs fn again), so their messages follow the order in which
//     their state changed. A relay batch whose publish fails part-way is
//     retried from the failed entry, so a later entry of that batch that
//     was stored may precede it.
//   - Inbox: when Tx runs in a delivered message's handler, the mark
//     (service/handler, message id) is WATCHed and checked first (present:
//     Tx returns nil without calling fn) and SET, with OutboxConfig.InboxTTL,
//     in the same MULTI. Of two deliveries racing, one commits; the other's
//     EXEC fails on the mark, and its next run finds it and skips. Register
//     such handlers with cqrs.OwnInbox.
//   - Cluster: every key of the outbox starts with its hash tag,
//     {<prefix>:<service>} by default, so its stream, its marks and the
//     state keys built with Key share one slot, and a Tx is one MULTI on one
//     node. Every key written or watched in a Tx must come from Key: on a
//     single server any key works; on a cluster a key in another slot fails
//     the Tx with ErrCrossSlot and nothing is written. The outbox of a
//     service lives on one node: spread services, not one service's state.
//   - Outcomes: failing to reach Redis before EXEC has cqrs.CodeUnavailable:
//     nothing happened. An EXEC whose reply was lost wraps
//     cqrs.ErrOutcomeUnknown: it may have committed. Redis does not roll
//     back a command that fails inside EXEC (a WRONGTYPE, say): Tx returns
//     its error, and the rest, the messages and the mark included, are
//     committed.
//   - Direct (Outbox.Direct): when the bus's transport is this package's
//     Transport on the same single-server client, Tx writes each message
//     straight into its destination stream in the MULTI, as
//     Transport.Publish would: no relay hop, and the streams hold the
//     messages in commit order.
//
// An entry the broker refuses for good moves to <tag>:_outbox:dead with
// its error (OutboxStore.DeadRecords).
type Outbox struct {
	rdb     redis.UniversalClient
	cfg     Config // for scrub
	oc      OutboxConfig
	k       outboxKeys
	slot    uint16
	single  bool // one server (*redis.Client): any key works, Direct may apply
	service string

	mu     sync.Mutex
	notify func()     // wakes the relay after a commit that wrote the outbox
	direct *Transport // write messages to its streams instead of the outbox
}

// NewOutbox returns the outbox of service on rdb, under cfg's prefix and
// oc's settings.
func NewOutbox(rdb redis.UniversalClient, cfg Config, service string, oc OutboxConfig) (*Outbox, error) {
	cfg, oc = cfg.WithDefaults(), oc.WithDefaults()
	if rdb == nil {
		return nil, errors.New("redismod: an outbox needs a client")
	}
	if err := oc.Validate(); err != nil {
		return nil, err
	}
	tag := oc.Tag
	if tag == "" {
		tag = cfg.Prefix
		if service != "" {
			tag += ":" + service
		}
	}
	if strings.ContainsAny(tag, "{} \t\n") {
		return nil, fmt.Errorf("redismod: outbox hash tag %q: no spaces or braces (from REDIS_PREFIX and the service name)", tag)
	}
	k := outboxKeys{tag: "{" + tag + "}"}
	_, single := rdb.(*redis.Client)
	return &Outbox{rdb: rdb, cfg: cfg, oc: oc, k: k, slot: keySlot(k.tag), single: single, service: service, notify: func() {}}, nil
}

// Key returns a key for the user's state in the outbox's slot:
// {catga:orders}:order:42 for Key("order", "42"). Every key a Tx writes or
// watches must come from Key (see Outbox). A first part starting with "_"
// is the outbox's own; Key() alone is the tag, the prefix of every key of
// the outbox.
func (o *Outbox) Key(parts ...string) string { return o.k.state(parts) }

// Client returns the client. Inside a Tx, read through Reader instead.
func (o *Outbox) Client() redis.UniversalClient { return o.rdb }

// OnCommit sets what runs after a transaction that wrote the outbox
// commits: the relay's Notify. The module sets it; an Outbox without a
// relay leaves its entries for another instance's relay.
func (o *Outbox) OnCommit(fn func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if fn == nil {
		fn = func() {}
	}
	o.notify = fn
}

// Direct makes Tx write each message straight into t's stream for its topic,
// with t's entry fields, inside the MULTI, instead of into the outbox
// stream for the relay, and reports whether it does: only when t runs on
// this outbox's client and that client is a single server (on a cluster,
// the streams are in other slots than the transaction). Set it before the
// first Tx. Entries already in the outbox stream are still the relay's, so
// keep a relay running; a message it relays later may follow one written
// directly.
func (o *Outbox) Direct(t *Transport) bool {
	if t == nil || !o.single || t.Client() != o.rdb {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.direct = t
	return true
}

func (o *Outbox) directTransport() *Transport {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.direct
}

func (o *Outbox) committed() {
	o.mu.Lock()
	fn := o.notify
	o.mu.Unlock()
	fn()
}
