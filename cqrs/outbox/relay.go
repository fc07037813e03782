package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/metric"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Relay defaults.
const (
	DefaultBatch        = 256
	DefaultPoll         = 100 * time.Millisecond
	DefaultRetryInitial = 100 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
)

// Config tunes a Relay. Its zero value takes every default.
type Config struct {
	Batch        int           // records per fetch and publish batch; default 256
	Poll         time.Duration // how often the leader looks without being woken (other replicas' commits, a crashed one's rows); default 100ms
	RetryInitial time.Duration // first wait after a failed publish; default 100ms
	RetryMax     time.Duration // longest wait between retries; default 5s
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	return c
}

// Relay publishes an outbox's committed records on a transport: in order,
// in batches (transport.PublishBatch: asynchronous NATS publishes, a Redis
// pipeline), with the envelope id as the broker's dedup id, retrying with
// backoff until the broker acknowledges, then removing them (with the next
// fetch, in one call, when the store is a RemoveFetcher). One relay of
// an outbox leads at a time (Store.Lead); the others stand by and take over
// when it stops or dies. Commit wakes it in process (Notify); it also polls,
// for records committed by other replicas and left by crashed ones.
//
// A publish whose outcome is unknown (cqrs.ErrOutcomeUnknown) is retried
// like a failed one: the copy a lost ack may have stored is dropped by
// JetStream's duplicate window (Nats-Msg-Id) or skipped by the receiver's
// inbox. A record the broker refuses for good (cqrs.IsPermanent: too large,
// invalid) is buried in the store's dead letters, never retried.
type Relay struct {
	store Store
	t     transport.Transport
	cfg   Config
	log   *slog.Logger
	met   *relayMetrics

	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	leadCtx context.Context // ends at Stop: a stand-by stops waiting for the lead
	work    context.Context // ends when Stop's context does: publishing is cut short
	endLead context.CancelFunc
	endWork context.CancelFunc
	leading atomic.Bool
	once    sync.Once
	started atomic.Bool

	msgs []transport.Outgoing
	errs []error
	sent []Record // published, not removed yet
}

// New returns a relay of store onto t, not started. log and mp may be nil.
func New(store Store, t transport.Transport, cfg Config, log *slog.Logger, mp metric.MeterProvider) (*Relay, error) {
	if store == nil || t == nil {
		return nil, errors.New("outbox: a relay needs a store and a transport")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{store: store, t: t, cfg: cfg.WithDefaults(), log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if mp != nil {
		m, err := newRelayMetrics(mp, store)
		if err != nil {
			return nil, fmt.Errorf("outbox: metrics: %w", err)
		}
		r.met = m
	}
	r.leadCtx, r.endLead = context.WithCancel(context.Background())
	r.work, r.endWork = context.WithCancel(context.Background())
	return r, nil
}

// Start starts relaying in the background; Stop ends it.
func (r *Relay) Start(context.Context) error {
	if r.started.Swap(true) {
		return errors.New("outbox: relay started twice")
	}
	go r.run()
	return nil
}

// Notify tells the relay that records were committed: the leader looks at
// once instead of at its next poll. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Leading reports whether this relay holds the outbox's lead now.
func (r *Relay) Leading() bool { return r.leading.Load() }

// Stop stops the relay: a leader first publishes what is committed (until
// the outbox is empty, a publish fails, or ctx ends), then gives up its
// lead. It returns ctx's error if ctx ended first.
func (r *Relay) Stop(ctx context.Context) error {
	if !r.started.Load() {
		return nil
	}
	r.once.Do(func() {
		close(r.stop)
		r.endLead()
	})
	select {
	case <-r.done:
		r.endWork()
		return nil
	case <-ctx.Done():
		r.endWork()
		<-r.done
		return fmt.Errorf("outbox: relay stop: %w", ctx.Err())
	}
}

func (r *Relay) run() {
	defer close(r.done)
	wait := r.backoff()
	for {
		lead, err := r.store.Lead(r.leadCtx)
		if err != nil {
			if r.leadCtx.Err() != nil {
				return
			}
			r.log.Warn("outbox: taking the relay lead failed; trying again", slog.String("error", err.Error()))
			if !r.sleep(wait.NextBackOff(), nil) {
				return
			}
			continue
		}
		wait.Reset()
		r.leading.Store(true)
		r.log.Debug("outbox: relay leads")
		stopped := r.lead(lead)
		r.leading.Store(false)
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = lead.Release(rctx) // a lead that cannot be released ends with its connection or lease
		cancel()
		if stopped {
			return
		}
	}
}

// lead publishes while the lead holds; it reports whether the relay stopped.
func (r *Relay) lead(l Lead) bool {
	defer r.removeSent(r.work) // what the last pass published, before another relay leads
	retry := r.backoff()
	for {
		select {
		case <-r.stop:
			r.drain()
			return true
		case <-l.Lost():
			r.log.Warn("outbox: relay lead lost; standing by")
			return false
		default:
		}
		n, failed := r.pass(r.work)
		switch {
		case failed:
			r.sleep(retry.NextBackOff(), l.Lost()) // stopped or lost: the select above says which
			continue
		case n > 0:
			retry.Reset()
			continue // more may be waiting
		}
		retry.Reset()
		t := time.NewTimer(r.cfg.Poll)
		select {
		case <-r.wake:
		case <-t.C:
		case <-l.Lost():
		case <-r.stop:
		}
		t.Stop()
	}
}

// drain publishes what is committed before the relay stops.
func (r *Relay) drain() {
	for r.work.Err() == nil {
		if n, failed := r.pass(r.work); n == 0 || failed {
			return
		}
	}
}

// pass fetches one batch, publishes it and removes what was stored (with
// the next pass's fetch, when the store folds the two). It returns how
// many records it fetched and whether anything failed.
func (r *Relay) pass(ctx context.Context) (n int, failed bool) {
	recs, err := r.fetch(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("outbox: fetch failed; retrying", slog.String("error", err.Error()))
		}
		return 0, true
	}
	if len(recs) == 0 {
		return 0, false
	}
	n = len(recs)
	r.msgs, r.errs = r.msgs[:0], r.errs[:0]
	readable := recs[:0:0]
	for _, rec := range recs {
		if rec.Unreadable != nil {
			r.bury(ctx, rec, cqrs.Permanent(rec.Unreadable))
			continue
		}
		readable = append(readable, rec)
		r.msgs = append(r.msgs, transport.Outgoing{Topic: rec.Topic, Envelope: rec.Envelope})
		r.errs = append(r.errs, nil)
	}
	recs = readable
	transport.PublishBatch(ctx, r.t, r.msgs, r.errs)
	now := time.Now()
	var retried int
	var last error
	for i, perr := range r.errs {
		switch {
		case perr == nil:
			r.sent = append(r.sent, recs[i])
			r.met.published(ctx, now.Sub(recs[i].Envelope.Time))
		case cqrs.IsPermanent(perr):
			if !r.bury(ctx, recs[i], perr) {
				failed = true
			}
		default:
			retried++
			last = perr
		}
	}
	if retried > 0 {
		failed = true
		r.met.retried(ctx, retried)
		if ctx.Err() == nil {
			r.log.Warn("outbox: publishing failed; retrying", slog.Int("messages", retried), slog.String("error", last.Error()))
		}
	}
	if _, folds := r.store.(RemoveFetcher); !folds && !r.removeSent(ctx) {
		return n, true
	}
	return n, failed
}

// fetch reads the next batch. A store that folds removal into it
// (RemoveFetcher) also removes what the last pass published.
func (r *Relay) fetch(ctx context.Context) ([]Record, error) {
	rf, folds := r.store.(RemoveFetcher)
	if !folds {
		r.sent = r.sent[:0] // what a failed Remove left is fetched and published again
		return r.store.Fetch(ctx, r.cfg.Batch)
	}
	if len(r.sent) == 0 {
		return r.store.Fetch(ctx, r.cfg.Batch)
	}
	recs, err := rf.RemoveAndFetch(ctx, r.sent, r.cfg.Batch)
	if err == nil {
		r.sent = r.sent[:0]
	}
	return recs, err
}

// removeSent removes the published records not removed yet; false if
// that failed (they stay in r.sent for the next try).
func (r *Relay) removeSent(ctx context.Context) bool {
	if len(r.sent) == 0 {
		return true
	}
	if err := r.store.Remove(ctx, r.sent); err != nil {
		// Published but not removed: if they are never removed, the next
		// leader publishes them again, and the broker's dedup (or the
		// receiver's inbox) drops the copy.
		r.log.Warn("outbox: removing published records failed", slog.String("error", err.Error()))
		return false
	}
	r.sent = r.sent[:0]
	return true
}

// bury moves a record the broker refuses for good to the store's dead
// letters; false if that failed (it is tried again with the next pass).
func (r *Relay) bury(ctx context.Context, rec Record, cause error) bool {
	r.log.Error("outbox: a message is refused for good; moving it to the outbox's dead letters",
		slog.String("message_id", rec.Envelope.ID), slog.String("message", rec.Topic.Name), slog.String("ref", rec.Ref), slog.String("error", cause.Error()))
	if err := r.store.Bury(ctx, rec, cause); err != nil {
		r.log.Warn("outbox: burying failed; it will be tried again", slog.String("ref", rec.Ref), slog.String("error", err.Error()))
		return false
	}
	r.met.buried(ctx)
	return true
}

func (r *Relay) backoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier, b.RandomizationFactor = r.cfg.RetryInitial, r.cfg.RetryMax, 2, 0.2
	return b
}

// sleep waits d; false if the relay stopped or lost (when given) meanwhile.
func (r *Relay) sleep(d time.Duration, lost <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	case <-lost:
		return false
	}
}
