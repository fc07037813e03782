package natsmod

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
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
	_ cqrs.Transport      = (*Transport)(nil)
	_ cqrs.DeadLetters    = (*Transport)(nil)
	_ cqrs.PayloadLimiter = (*Transport)(nil)
	_ cqrs.BatchPublisher = (*Transport)(nil)
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
	if err := ensureStreams(actx, js, t.cfg); err != nil {
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
	var closers []cqrs.Subscriber
	for s := range t.subs {
		closers = append(closers, s)
	}
	for s := range t.srvs {
		closers = append(closers, s)
	}
	t.mu.Unlock()
	var errs []error
	for _, s := range closers {
		errs = append(errs, s.Close(ctx))
	}
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

// MaxPayload implements cqrs.PayloadLimiter: the server's max_payload less
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
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
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

// subject returns a topic's durable subject: <prefix>.events.<Name>.
func (t *Transport) subject(topic cqrs.Topic) string { return topic.Subject(t.cfg.Prefix) }

// requestSubject returns a topic's request subject, <prefix>.rpc.commands.<Name>:
// a stream that captures a subject answers requests to it with its own
// publish ack, so requests use subjects no stream captures.
func (t *Transport) requestSubject(topic cqrs.Topic) string {
	return t.cfg.Prefix + ".rpc." + topic.Kind.Plural() + "." + topic.Name
}

// headersOf returns env's headers as NATS headers. What the receiver can
// tell by itself is left out: the id travels once, as Nats-Msg-Id (which
// JetStream dedups on); the kind is the subject's; JSON is the content type
// when none is named; a correlation equal to the id is implied.
func headersOf(env *cqrs.Envelope) nats.Header {
	h := make(nats.Header, 8)
	env.EachHeader(func(k, v string) {
		switch {
		case k == cqrs.HeaderID:
			k = jetstream.MsgIDHeader
		case k == cqrs.HeaderKind,
			k == cqrs.HeaderContentType && v == defaultContentType,
			k == cqrs.HeaderCorrelationID && v == env.ID:
			return
		}
		h[k] = []string{v}
	})
	return h
}

const defaultContentType = "application/json"

// requestHeaders are headersOf less the type too: a request's subject
// names it.
func requestHeaders(env *cqrs.Envelope) nats.Header {
	h := headersOf(env)
	delete(h, cqrs.HeaderName)
	return h
}

// envelopeOf reads the envelope headersOf wrote, of a message of kind.
func envelopeOf(h nats.Header, data []byte, kind cqrs.Kind) (*cqrs.Envelope, error) {
	return envelopeOfTopic(h, data, cqrs.Topic{Kind: kind})
}

// envelopeOfTopic reads an envelope, taking what the headers leave out from
// topic: its kind, and its name when the headers name none (a request).
func envelopeOfTopic(h nats.Header, data []byte, topic cqrs.Topic) (*cqrs.Envelope, error) {
	kind := topic.Kind
	id := h.Get(cqrs.HeaderID) // set when Nats-Msg-Id is not the envelope's (a replay)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	return cqrs.ParseHeaders(func(k string) string {
		switch k {
		case cqrs.HeaderID:
			return id
		case cqrs.HeaderKind:
			if v := h.Get(k); v != "" {
				return v
			}
			return kind.String()
		case cqrs.HeaderName:
			if v := h.Get(k); v != "" {
				return v
			}
			return topic.Name
		case cqrs.HeaderContentType:
			if v := h.Get(k); v != "" {
				return v
			}
			return defaultContentType
		case cqrs.HeaderCorrelationID:
			if v := h.Get(k); v != "" {
				return v
			}
			return id
		}
		return h.Get(k)
	}, data)
}

// headerDeadline carries the caller's deadline to the responder.
const headerDeadline = "Catga-Deadline"

// Request implements cqrs.Transport over NATS request/reply: one instance
// of the owning service's queue group answers; no responder fails at once
// with cqrs.ErrNoHandler; ctx (or NATS_REQUEST_TIMEOUT) bounds the wait.
// While the connection is down it fails at once with cqrs.ErrUnavailable:
// nothing was sent, so no handler runs it later.
func (t *Transport) Request(ctx context.Context, topic cqrs.Topic, env *cqrs.Envelope) (*cqrs.Reply, error) {
	nc, _, err := t.conn()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.RequestTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	msg := &nats.Msg{Subject: t.requestSubject(topic), Header: requestHeaders(env), Data: env.Payload}
	if st := t.status(); st != nats.CONNECTED {
		return nil, notConnected("request", msg.Subject, st)
	}
	msg.Header[headerDeadline] = []string{strconv.FormatInt(dl.UnixNano(), 10)}
	resp, err := nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded): // no reconnect buffer: refused, not sent
		return nil, notConnected("request", msg.Subject, nats.RECONNECTING)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w for %s: no instance serves %s", cqrs.ErrNoHandler, topic, msg.Subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("natsmod: %s: %w", topic, context.DeadlineExceeded)
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, &cqrs.PayloadTooLargeError{Name: topic.Name, Size: len(env.Payload), Limit: t.MaxPayload()}
	case err != nil:
		return nil, fmt.Errorf("natsmod: request %s: %w", msg.Subject, err)
	}
	if code := resp.Header.Get(cqrs.HeaderErrorCode); code != "" {
		return &cqrs.Reply{Err: &cqrs.Error{Code: cqrs.ParseCode(code), Message: resp.Header.Get(cqrs.HeaderErrorMessage)}}, nil
	}
	ct := resp.Header.Get(cqrs.HeaderContentType)
	if ct == "" {
		ct = defaultContentType // a JSON reply carries no header at all
	}
	return &cqrs.Reply{ContentType: ct, Payload: resp.Data}, nil
}

// errText is err's text without c's secrets.
func errText(err error, c Config) string {
	if err == nil {
		return ""
	}
	return scrub(err, c).Error()
}

// refetchWait is the wait before retrying a failed consumer, by attempt.
func refetchWait(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 6)
	return min(d, 5*time.Second)
}

// System names the transport in telemetry (messaging.system).
func (t *Transport) System() string { return "nats" }
