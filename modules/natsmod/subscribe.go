package natsmod

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/internal/inflight"
)

// subscription is a running Subscribe: one durable pull consumer per topic
// (and one for the group's replays), each with a fetch loop, sharing a bound
// on handlers in flight.
type subscription struct {
	t       *Transport
	group   string
	h       inflight.Handlers // the handlers' context, its drain and Close's wait
	stop    chan struct{}
	work    chan job       // to the workers; unbuffered, so a fetcher pulls only what a worker takes
	wg      sync.WaitGroup // fetchers
	workers sync.WaitGroup
	once    sync.Once

	keepStop chan struct{}
	keepWG   sync.WaitGroup
	err      error
	byTop    map[cqrs.Topic]cqrs.DeliveryHandler

	stopCtx    context.Context // ends with stop: cancels the pulls
	cancelStop context.CancelFunc

	mu       sync.Mutex
	inflight map[*delivery]time.Time
	failing  map[*fetcher]error
}

// job is one message for a worker.
type job struct {
	msg jetstream.Msg
	f   *fetcher
}

// worker runs jobs until the subscription closes: a fixed pool, so a
// delivery starts no goroutine and handlers keep their grown stacks.
func (s *subscription) worker() {
	defer s.workers.Done()
	for j := range s.work {
		j.f.handle(j.msg)
	}
}

// fetcher is one consumer's loop.
type fetcher struct {
	stream string
	cfg    jetstream.ConsumerConfig
	handle func(jetstream.Msg)
}

// consumerName is a topic's durable consumer in a group.
func consumerName(group string, t cqrs.Topic) string {
	return group + "_" + t.Kind.String() + "_" + t.Name
}

// Subscribe implements cqrs.Transport. It creates (or updates) a durable
// pull consumer per topic, named <group>_<kind>_<Name>: explicit ack, the
// configured ack wait and max ack pending, no MaxDeliver of its own (the
// bus counts attempts and dead-letters, so it must see every delivery).
// Events start at the first message after the consumer is created;
// commands from the first stored (they wait for their owner).
func (t *Transport) Subscribe(ctx context.Context, s cqrs.Subscription) (cqrs.Subscriber, error) {
	_, js, err := t.conn()
	if err != nil {
		return nil, err
	}
	if s.Group == "" || s.Instance == "" || len(s.Topics) == 0 {
		return nil, fmt.Errorf("natsmod: subscription needs a group, an instance and topics (got %q, %q, %d)", s.Group, s.Instance, len(s.Topics))
	}
	conc := s.Concurrency
	if conc <= 0 {
		conc = cqrs.DefaultConcurrency
	}
	sub := &subscription{
		t: t, group: s.Group, h: inflight.New(), stop: make(chan struct{}), keepStop: make(chan struct{}), work: make(chan job),
		byTop:    map[cqrs.Topic]cqrs.DeliveryHandler{},
		inflight: map[*delivery]time.Time{}, failing: map[*fetcher]error{},
	}
	sub.stopCtx, sub.cancelStop = context.WithCancel(context.Background())
	var fetchers []*fetcher
	for _, th := range s.Topics {
		if th.Topic.Kind != cqrs.KindEvent && th.Topic.Kind != cqrs.KindCommand {
			sub.h.Cancel()
			sub.cancelStop()
			return nil, fmt.Errorf("natsmod: subscribe to %s: only events and commands are durable", th.Topic)
		}
		sub.byTop[th.Topic] = th.Handler
		deliver := jetstream.DeliverNewPolicy
		if th.Topic.Kind == cqrs.KindCommand {
			deliver = jetstream.DeliverAllPolicy
		}
		name := consumerName(s.Group, th.Topic)
		h, kind := th.Handler, th.Topic.Kind
		fetchers = append(fetchers, &fetcher{
			stream: t.cfg.streamOf(th.Topic.Kind),
			cfg:    t.consumerConfig(name, t.subject(th.Topic), deliver, s.Group, th.Topic.String()),
			handle: func(m jetstream.Msg) { sub.handle(m, h, kind) },
		})
	}
	fetchers = append(fetchers, &fetcher{
		stream: t.cfg.dlqStream(),
		cfg:    t.consumerConfig(s.Group+"_replay", t.replaySubject(s.Group, "", "")+">", jetstream.DeliverAllPolicy, s.Group, "replays"),
		handle: sub.handleReplay,
	})
	// Create every consumer now, so a bad one fails Subscribe, not later;
	// one the server cannot create yet (disconnected, JetStream not ready)
	// is asked for again until ctx ends.
	for _, f := range fetchers {
		err := t.retryStart(ctx, "consumer not created", func(ctx context.Context) error {
			actx, cancel := context.WithTimeout(ctx, attemptTimeout)
			defer cancel()
			_, err := sub.consumer(actx, js, f)
			if err != nil && !jetStreamNotReady(err) {
				return backoff.Permanent(err)
			}
			return err
		}, zap.String("consumer", f.cfg.Durable))
		if err != nil {
			sub.h.Cancel()
			sub.cancelStop()
			return nil, err
		}
	}
	t.mu.Lock()
	t.subs[sub] = struct{}{}
	t.mu.Unlock()
	for range conc {
		sub.workers.Add(1)
		go sub.worker()
	}
	for _, f := range fetchers {
		sub.wg.Add(1)
		go sub.fetch(js, f, conc)
	}
	sub.keepWG.Add(1)
	go sub.keepAlive()
	return sub, nil
}

func (t *Transport) consumerConfig(name, subject string, deliver jetstream.DeliverPolicy, group, what string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "catga: " + group + " " + what,
		FilterSubject: subject,
		DeliverPolicy: deliver,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: t.cfg.MaxAckPending,
	}
}

// consumer creates or updates f's consumer. A consumer that exists with a
// setting that cannot change (its subject, its deliver policy) is an error
// naming it; a work-queue subject consumed by another group too means two
// services claim one command.
func (s *subscription) consumer(ctx context.Context, js jetstream.JetStream, f *fetcher) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, f.stream, f.cfg)
	if err == nil {
		return c, nil
	}
	if f.stream == s.t.cfg.commandsStream() && strings.Contains(err.Error(), "filtered consumer not unique") {
		return nil, fmt.Errorf("natsmod: consumer %s on %s: another service already consumes %s; a command has one owning service: %w",
			f.cfg.Durable, f.stream, f.cfg.FilterSubject, err)
	}
	return nil, fmt.Errorf("natsmod: consumer %s on %s (subject %s): %w", f.cfg.Durable, f.stream, f.cfg.FilterSubject, err)
}

// fetch pulls f's messages and hands each to a worker, until the
// subscription stops. It recreates a consumer that fails (a deleted
// consumer, a server restart with memory storage).
func (s *subscription) fetch(js jetstream.JetStream, f *fetcher, conc int) {
	defer s.wg.Done()
	batch := min(s.t.cfg.FetchBatch, conc)
	var c jetstream.Consumer
	for attempt := 0; !s.stopped(); {
		var err error
		if c == nil {
			ctx, cancel := context.WithTimeout(s.stopCtx, 10*time.Second)
			c, err = s.consumer(ctx, js, f)
			cancel()
		}
		if err == nil {
			err = s.pull(c, f, batch)
		}
		if s.stopped() {
			return
		}
		if err != nil {
			s.setFailing(f, err)
			c = nil
			if !s.sleep(refetchWait(attempt)) {
				return
			}
			attempt++
			continue
		}
		s.setFailing(f, nil)
		attempt = 0
	}
}

// pullExpiry bounds each pull request, and pullHeartbeat is its idle
// heartbeat: a pull lost on the server side (a consumer updated under it,
// a busy server, a reconnect) is noticed within 2 heartbeats and reissued,
// not after nats.go's 30 s default, during which a live instance would
// receive nothing.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = 2 * time.Second // under half of the expiry the server is given (90 % of pullExpiry)
)

// pull is one pull request, a Fetch of up to batch messages that ends when
// they have come, when the server expires it (after pullExpiry), when its
// heartbeats stop, or when the subscription closes; each message is handed
// to a worker as it comes.
//
// Each pull is a request of its own, not nats.go's Messages iterator: the
// iterator issues its next request only when Next runs while no request
// is being sent, and the request whose messages have all come counts as
// being sent until its goroutine, after the publish, says otherwise. A
// Next that runs in that window (often with a batch of 1 or 2, where the
// refill is only asked for after the last message) issues nothing, and
// the iterator waits for a heartbeat that no request will send: the
// consumer stalls until the missing heartbeats end the iterator.
func (s *subscription) pull(c jetstream.Consumer, f *fetcher, batch int) error {
	ctx, cancel := context.WithTimeout(s.stopCtx, pullExpiry)
	defer cancel()
	b, err := c.Fetch(batch, jetstream.FetchContext(ctx), jetstream.FetchHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("natsmod: consumer %s: pull: %w", f.cfg.Durable, err)
	}
	for msg := range b.Messages() {
		if s.stopped() {
			_ = msg.Nak() // taken but not started: give it back now rather than after the ack wait
			continue
		}
		select {
		case s.work <- job{msg: msg, f: f}:
		case <-s.stop:
			_ = msg.Nak()
		}
	}
	// A pull that expired ends without an error; one still open when its
	// context ends (a slow worker kept it past pullExpiry) is done too.
	if err := b.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("natsmod: consumer %s: %w", f.cfg.Durable, err)
	}
	return nil
}

func (s *subscription) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// sleep waits d unless the subscription stops first; it reports whether it
// slept the whole time.
func (s *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

func (s *subscription) setFailing(f *fetcher, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.failing, f)
		return
	}
	if _, was := s.failing[f]; !was {
		s.t.log.Warn("consumer failing; retrying", zap.String("consumer", f.cfg.Durable), zap.String("error", errText(err, s.t.cfg)))
	}
	s.failing[f] = err
}

// healthy reports the first failing consumer.
func (s *subscription) healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for f, err := range s.failing {
		return fmt.Errorf("natsmod: consumer %s not fetching: %v", f.cfg.Durable, errText(err, s.t.cfg))
	}
	return nil
}

// handle runs one message's delivery.
func (s *subscription) handle(msg jetstream.Msg, h cqrs.DeliveryHandler, kind cqrs.Kind) {
	env, err := envelopeOf(msg.Headers(), msg.Data(), kind)
	md, merr := msg.Metadata()
	if merr == nil {
		env.Attempt = int(md.NumDelivered)
	}
	d := &delivery{msg: msg, env: env, sub: s}
	if err != nil {
		// Headers no handler can trust: dead-letter as they are.
		_ = d.DeadLetter(context.Background(), &cqrs.DeadLetter{Envelope: *env, Error: err.Error(), Code: cqrs.CodeInvalid,
			Attempts: env.Attempt, Service: s.group, Time: time.Now()})
		return
	}
	s.track(d, true)
	defer s.track(d, false)
	h.HandleDelivery(s.h.Context(), d)
	if d.settled.CompareAndSwap(false, true) {
		_ = msg.Nak() // unsettled: redeliver, as after the ack wait but sooner
	}
}

// handleReplay routes a replayed message to its topic's handler.
func (s *subscription) handleReplay(msg jetstream.Msg) {
	// <prefix>.dlq.replay.<group>.<kind>.<Name>
	tokens := strings.Split(msg.Subject(), ".")
	var topic cqrs.Topic
	if len(tokens) >= 2 {
		kind, err := cqrs.ParseKind(tokens[len(tokens)-2])
		if err == nil {
			topic = cqrs.Topic{Kind: kind, Name: tokens[len(tokens)-1]}
		}
	}
	h, ok := s.byTop[topic]
	if !ok {
		h = cqrs.DeliveryHandlerFunc(func(ctx context.Context, d cqrs.Delivery) {
			_ = d.DeadLetter(ctx, &cqrs.DeadLetter{Envelope: *d.Envelope(), Error: fmt.Sprintf("natsmod: replay of %s: group %s does not subscribe to it", topic, s.group),
				Code: cqrs.CodeInvalid, Attempts: d.Envelope().Attempt, Service: s.group, Time: time.Now()})
		})
	}
	s.handle(msg, h, topic.Kind)
}

func (s *subscription) track(d *delivery, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.inflight[d] = time.Now()
	} else {
		delete(s.inflight, d)
	}
}

// keepAlive tells the server that handlers running longer than a third of
// the ack wait are still at it, so their messages are not redelivered. It
// runs until Close has waited for every handler.
func (s *subscription) keepAlive() {
	defer s.keepWG.Done()
	every := s.t.cfg.AckWait / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.keepStop:
			return
		case <-tick.C:
		}
		for _, d := range s.inflightSnapshot(every) {
			if !d.settled.Load() {
				_ = d.msg.InProgress()
			}
		}
	}
}

func (s *subscription) inflightSnapshot(olderThan time.Duration) []*delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*delivery
	now := time.Now()
	for d, since := range s.inflight {
		if now.Sub(since) >= olderThan {
			out = append(out, d)
		}
	}
	return out
}

// Close implements cqrs.Subscriber: it stops pulling, gives back what was
// pulled but not started, lets handlers in flight finish until ctx ends,
// then cancels their contexts.
func (s *subscription) Close(ctx context.Context) error {
	s.once.Do(func() {
		close(s.stop)
		s.cancelStop() // ends the pulls; what they had taken is given back
		s.h.Drain()    // after stop: a message given back is not taken again here
		s.wg.Wait()    // the fetchers give back what they took and end
		close(s.work)
		s.err = s.h.Wait(ctx, s.workers.Wait)
		close(s.keepStop)
		s.keepWG.Wait()
		s.t.mu.Lock()
		delete(s.t.subs, s)
		s.t.mu.Unlock()
	})
	return s.err
}

// delivery is one JetStream message to settle.
type delivery struct {
	msg     jetstream.Msg
	env     *cqrs.Envelope
	sub     *subscription
	settled atomic.Bool
}

var errSettled = errors.New("natsmod: delivery already settled")

func (d *delivery) Envelope() *cqrs.Envelope { return d.env }

// Ack implements cqrs.Delivery: a fire-and-forget ack, as at-least-once
// needs; a lost ack means a redelivery, which idempotency absorbs.
func (d *delivery) Ack(context.Context) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	return d.msg.Ack()
}

// Nak implements cqrs.Delivery with NakWithDelay.
func (d *delivery) Nak(_ context.Context, delay time.Duration) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	return d.msg.NakWithDelay(delay)
}

// DeadLetter implements cqrs.Delivery: the record is stored in the DLQ
// stream first, then the message is terminated. If storing fails the
// message stays unsettled and comes back.
func (d *delivery) DeadLetter(ctx context.Context, dl *cqrs.DeadLetter) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	if err := d.sub.t.storeDeadLetter(ctx, dl); err != nil {
		_ = d.msg.Nak()
		return err
	}
	return d.msg.Term()
}

// Lag implements cqrs.LagReporter from the consumers' info: NumPending
// (stored, not delivered) and NumAckPending (delivered, not acked).
func (t *Transport) Lag(ctx context.Context) ([]cqrs.ConsumerLag, error) {
	_, js, err := t.conn()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	var out []cqrs.ConsumerLag
	for _, s := range subs {
		for topic := range s.byTop {
			c, err := js.Consumer(ctx, t.cfg.streamOf(topic.Kind), consumerName(s.group, topic))
			if err != nil {
				return nil, fmt.Errorf("natsmod: lag of %s: %w", consumerName(s.group, topic), err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				return nil, fmt.Errorf("natsmod: lag of %s: %w", consumerName(s.group, topic), err)
			}
			out = append(out, cqrs.ConsumerLag{Group: s.group, Topic: topic, Pending: int64(info.NumPending), Unacked: int64(info.NumAckPending)})
		}
	}
	return out, nil
}

var _ cqrs.LagReporter = (*Transport)(nil)
