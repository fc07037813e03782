package natsmod

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// headroom is what a message's headers may take of the server's max_payload.
const headroom = 8 << 10

// Transport is the NATS JetStream transport. Build it with New, connect it
// with Start, drain it with Close.
type Transport struct {
	cfg  Config
	name string
	log  *zap.Logger

	// state is the connection's status as its callbacks last told it: a
	// publish checks it without nats.Conn's lock, which a reconnect holds
	// while it dials.
	state atomic.Int32
	// maxPayload is the server's max_payload, read on connect and
	// reconnect: the bus asks for it on every send, and nats.Conn's own
	// accessor waits on the lock a reconnect holds while it dials.
	maxPayload atomic.Int64
	// subjects caches each topic's subject, built once rather than on
	// every publish.
	subjects    sync.Map // transport.Topic -> string
	rpcSubjects sync.Map // transport.Topic -> its request subject
	// perTopic makes the per-topic consumer layout of servers older than
	// 2.10 on any server: the tests of that layout set it.
	perTopic bool
	// native: the server schedules messages itself (schedule.go); fallback
	// is the running scheduler of the fallback stream, if any.
	native   atomic.Bool
	fallback atomic.Pointer[fallback]

	mu       sync.Mutex
	nc       *nats.Conn
	js       jetstream.JetStream
	subs     map[*subscription]struct{}
	srvs     map[*service]struct{}
	inflight int           // publishes waiting for their acks
	idle     chan struct{} // closed when inflight drops to 0, once Close waits for it
	quit     chan struct{} // closed when Close stops waiting: a batch reports what is still unacked as unknown
}

var (
	_ transport.Transport       = (*Transport)(nil)
	_ transport.DeadLetters     = (*Transport)(nil)
	_ transport.PayloadLimiter  = (*Transport)(nil)
	_ transport.BatchPublisher  = (*Transport)(nil)
	_ transport.Scheduler       = (*Transport)(nil)
	_ transport.ScheduleLimiter = (*Transport)(nil)
)

// New returns a transport for cfg, not connected yet. name is the
// connection's name, shown by the server (service/instance); log may be nil.
func New(cfg Config, name string, log *zap.Logger) (*Transport, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name != "" {
		name = cfg.Name
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Transport{cfg: cfg, name: name, log: log.Named("natsmod"),
		subs: map[*subscription]struct{}{}, srvs: map[*service]struct{}{}}, nil
}

// Config returns the transport's configuration.
func (t *Transport) Config() Config { return t.cfg }

// Start connects and creates or updates the streams. A server that cannot
// be reached yet (a refused or timed-out dial, a name that does not
// resolve, JetStream not answering) is tried again with backoff, each
// attempt logged at warn, until ctx ends: then Start fails with the last
// attempt's error and the number of attempts. A server that refuses the
// credentials or the TLS handshake fails Start at once. Errors name the
// servers and never a secret.
func (t *Transport) Start(ctx context.Context) error {
	opts, err := t.cfg.options(t.name)
	if err != nil {
		return err
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			t.state.Store(int32(nats.RECONNECTING))
			if err == nil { // our own drain or close
				t.log.Debug("disconnected from NATS")
				return
			}
			t.log.Warn("disconnected from NATS", zap.String("error", errText(err, t.cfg)))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			t.state.Store(int32(nats.CONNECTED))
			t.maxPayload.Store(nc.MaxPayload())
			t.log.Info("reconnected to NATS", zap.String("server", redactURL(nc.ConnectedUrl())))
		}),
		nats.ClosedHandler(func(*nats.Conn) { t.state.Store(int32(nats.CLOSED)) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			t.log.Warn("NATS async error", zap.String("subject", subj), zap.String("error", errText(err, t.cfg)))
		}),
	)
	var (
		nc *nats.Conn
		js jetstream.JetStream
	)
	err = t.retryStart(ctx, "NATS not reachable", func(ctx context.Context) error {
		c, j, err := t.open(ctx, opts)
		nc, js = c, j
		return err
	}, zap.String("server", redactURLs(t.cfg.URL)))
	if err != nil {
		return err
	}
	t.native.Store(t.schedulesNative(nc))
	if err := t.startFallback(ctx, js); err != nil {
		discard(nc)
		return err
	}
	t.mu.Lock()
	t.nc, t.js, t.quit = nc, js, make(chan struct{})
	t.maxPayload.Store(nc.MaxPayload())
	t.mu.Unlock()
	t.log.Info("connected to NATS", zap.String("server", redactURL(nc.ConnectedUrl())),
		zap.String("server_version", nc.ConnectedServerVersion()))
	return nil
}

// open is one attempt of Start: it connects and ensures the streams. An
// error that waiting does not change is marked backoff.Permanent.
func (t *Transport) open(ctx context.Context, opts []nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	t.state.Store(int32(nats.CONNECTED)) // before the dial: a disconnect right after it is told by its callback
	go func() {
		nc, err := nats.Connect(t.cfg.URL, opts...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() { // the dial ends within NATS_CONNECT_TIMEOUT; close what it makes
			if r := <-done; r.nc != nil {
				discard(r.nc)
			}
		}()
		return nil, nil, fmt.Errorf("natsmod: connect to %s: %w", redactURLs(t.cfg.URL), ctx.Err())
	}
	if r.err != nil {
		err := fmt.Errorf("natsmod: connect to %s: %w", redactURLs(t.cfg.URL), scrub(r.err, t.cfg))
		if refusedConnect(r.err) {
			return nil, nil, backoff.Permanent(err)
		}
		return nil, nil, err
	}
	js, err := jetstream.New(r.nc,
		jetstream.WithPublishAsyncTimeout(ackTimeout),         // a lost ack frees its future
		jetstream.WithPublishAsyncMaxPending(maxPendingAsync), // PublishBatch bounds each call by NATS_PUBLISH_WINDOW
	)
	if err != nil {
		discard(r.nc)
		return nil, nil, backoff.Permanent(fmt.Errorf("natsmod: jetstream: %w", err))
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if err := ensureStreams(actx, js, t.cfg, t.schedulesNative(r.nc)); err != nil {
		server := redactURL(r.nc.ConnectedUrl()) // before the close, which clears it
		discard(r.nc)
		if !jetStreamNotReady(err) {
			return nil, nil, backoff.Permanent(err)
		}
		return nil, nil, fmt.Errorf("natsmod: connected to %s, JetStream not ready: %w", server, err)
	}
	return r.nc, js, nil
}

// discard closes the connection of a failed start attempt without its
// callbacks: they run later, on nats.go's callback goroutine, and would
// mark the transport disconnected or closed after the next attempt has
// connected, so that publishes were refused.
func discard(nc *nats.Conn) {
	nc.SetDisconnectErrHandler(nil)
	nc.SetReconnectHandler(nil)
	nc.SetClosedHandler(nil)
	nc.Close()
}

// enter returns the JetStream context for a publish and counts it in
// flight until leave, so Close waits for its ack; it fails before Start and
// after Close.
func (t *Transport) enter() (jetstream.JetStream, <-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nc == nil {
		return nil, nil, fmt.Errorf("natsmod: not connected: %w", cqrs.ErrClosed)
	}
	t.inflight++
	return t.js, t.quit, nil
}

// leave ends what enter began.
func (t *Transport) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight--
	if t.inflight == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// conn returns the connection, or an error before Start and after Close.
func (t *Transport) conn() (*nats.Conn, jetstream.JetStream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nc == nil {
		return nil, nil, fmt.Errorf("natsmod: not connected: %w", cqrs.ErrClosed)
	}
	return t.nc, t.js, nil
}

// Close closes what is still subscribed (draining it until ctx ends), waits
// for the acks of publishes in flight, then drains the connection. A batch
// still waiting when ctx ends reports what is unacked as
// cqrs.ErrOutcomeUnknown; a publish after Close fails with cqrs.ErrClosed.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	nc, quit := t.nc, t.quit
	t.nc, t.js = nil, nil
	var idle chan struct{}
	if nc != nil && t.inflight > 0 {
		idle = make(chan struct{})
		t.idle = idle
	}
	subs, srvs := slices.Collect(maps.Keys(t.subs)), slices.Collect(maps.Keys(t.srvs))
	t.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close(ctx))
	}
	for _, s := range srvs {
		errs = append(errs, s.Close(ctx))
	}
	t.stopFallback()
	if nc == nil {
		return errors.Join(errs...)
	}
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
		}
	}
	close(quit)
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) {
		t.state.Store(int32(nats.CLOSED))
		close(closed)
	})
	if err := nc.Drain(); err != nil {
		nc.Close()
		return errors.Join(append(errs, err)...)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		nc.Close()
		<-closed
		errs = append(errs, fmt.Errorf("natsmod: drain: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// MaxPayload implements transport.PayloadLimiter: the server's max_payload less
// room for headers, once connected.
func (t *Transport) MaxPayload() int {
	if m := t.maxPayload.Load(); m > 0 {
		return int(m) - headroom
	}
	return 0
}

// Check is the readiness check: connected, and every consumer fetching.
func (t *Transport) Check(ctx context.Context) error {
	t.mu.Lock()
	nc := t.nc
	subs := slices.Collect(maps.Keys(t.subs))
	t.mu.Unlock()
	if nc == nil {
		return errors.New("natsmod: not connected")
	}
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsmod: connection %s", st)
	}
	// A link that went silent (a blackhole, a dead middlebox) still reads
	// CONNECTED until pings fail; a round trip to the server tells at once.
	wait := time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = max(time.Until(dl), 10*time.Millisecond)
	}
	if err := nc.FlushTimeout(wait); err != nil {
		return fmt.Errorf("natsmod: server does not answer within %v: %w", wait, err)
	}
	for _, s := range subs {
		if err := s.healthy(); err != nil {
			return err
		}
	}
	return nil
}

// errText is err's text without c's secrets.
func errText(err error, c Config) string {
	if err == nil {
		return ""
	}
	return scrub(err, c).Error()
}

// System names the transport in telemetry (messaging.system).
func (t *Transport) System() string { return "nats" }
