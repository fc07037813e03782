package redismod

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/internal/inflight"
)

// source is one stream a subscription reads, and what to do with an entry.
type source struct {
	stream string
	handle func(ctx context.Context, e entry)
	// reclaim: entries taken over from a dead or slow consumer (and naks
	// whose delay ran out) come back through XAUTOCLAIM.
	reclaim bool
}

// entry is one stream entry read for a group.
type entry struct {
	src     *source
	msg     redis.XMessage
	attempt int
}

// subscription reads its sources for one consumer of a group; Subscribe
// and Serve both run on it.
type subscription struct {
	t        *Transport
	group    string
	consumer string
	sources  []*source
	h        inflight.Handlers // the handlers' context, its drain and Close's wait
	readCtx  context.Context   // the readers' context, cancelled at close
	stopRead context.CancelFunc
	sem      chan struct{} // room: held from read to settle
	work     chan entry    // to the workers
	batch    int
	wg       sync.WaitGroup // readers, claimer, heartbeats
	workers  sync.WaitGroup
	keepStop chan struct{}
	keepWG   sync.WaitGroup // keep-alive and acker: they outlive the handlers
	acks     chan ackReq
	onClose  []func()
	once     sync.Once
	err      error
	serve    bool

	mu       sync.Mutex
	failing  map[*source]error
	inflight map[*delivery]time.Time
	topics   map[cqrs.Topic]cqrs.DeliveryHandler // of a Subscribe, for Lag
}

func (t *Transport) newSubscription(group, consumer string, concurrency int, serve bool) *subscription {
	if concurrency <= 0 {
		concurrency = cqrs.DefaultConcurrency
	}
	rctx, stopRead := context.WithCancel(context.Background())
	return &subscription{
		t: t, group: group, consumer: consumer, h: inflight.New(), readCtx: rctx, stopRead: stopRead,
		sem: make(chan struct{}, concurrency), work: make(chan entry, concurrency), batch: min(t.cfg.FetchBatch, concurrency), keepStop: make(chan struct{}),
		acks:    make(chan ackReq, 4*concurrency),
		failing: map[*source]error{}, inflight: map[*delivery]time.Time{}, serve: serve,
	}
}

// run starts the workers, the readers, the claimer and the keep-alive.
func (s *subscription) run() {
	for range cap(s.sem) {
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			for e := range s.work {
				e.src.handle(s.h.Context(), e)
				<-s.sem
			}
		}()
	}
	for _, src := range s.sources {
		s.wg.Add(1)
		go s.read(src)
	}
	s.wg.Add(1)
	go s.claim()
	s.keepWG.Add(2)
	go s.keepAlive()
	go s.acker()
}

// ackReq is one entry to acknowledge (and delete, for replays).
type ackReq struct {
	stream, id string
	del        bool
}

// acker acknowledges in batches: whatever is queued goes out as one XACK
// per stream, pipelined, instead of a round trip per message. An ack is
// fire-and-forget, as on NATS: one lost with a crash is a redelivery the
// inbox absorbs. It drains the queue when the subscription closes.
func (s *subscription) acker() {
	defer s.keepWG.Done()
	for first := range s.acks {
		batch := map[string][]string{first.stream: {first.id}}
		dels := map[string][]string{}
		if first.del {
			dels[first.stream] = append(dels[first.stream], first.id)
		}
	more:
		for n := 1; n < 1000; n++ {
			select {
			case a, ok := <-s.acks:
				if !ok {
					break more
				}
				batch[a.stream] = append(batch[a.stream], a.id)
				if a.del {
					dels[a.stream] = append(dels[a.stream], a.id)
				}
			default:
				break more
			}
		}
		ctx, cancel := settleCtx()
		pipe := s.t.rdb.Pipeline()
		for stream, ids := range batch {
			pipe.XAck(ctx, stream, s.group, ids...)
		}
		for stream, ids := range dels {
			pipe.XDel(ctx, stream, ids...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			s.t.log.Debug("XACK failed; the entries will be claimed again", zap.String("group", s.group), zap.String("error", scrub(err, s.t.cfg).Error()))
		}
		cancel()
	}
}

// Subscribe implements cqrs.Transport: the group reads each topic's stream
// (created with the group if missing; events from "$", commands from "0")
// as consumer Instance, and its replay stream.
func (t *Transport) Subscribe(ctx context.Context, sp cqrs.Subscription) (cqrs.Subscriber, error) {
	if t.isClosed() {
		return nil, cqrs.ErrClosed
	}
	if sp.Group == "" || sp.Instance == "" || len(sp.Topics) == 0 {
		return nil, fmt.Errorf("redismod: subscription needs a group, an instance and topics (got %q, %q, %d)", sp.Group, sp.Instance, len(sp.Topics))
	}
	s := t.newSubscription(sp.Group, sp.Instance, sp.Concurrency, false)
	byTopic := map[cqrs.Topic]cqrs.DeliveryHandler{}
	s.topics = byTopic
	for _, th := range sp.Topics {
		if th.Topic.Kind != cqrs.KindEvent && th.Topic.Kind != cqrs.KindCommand {
			return nil, fmt.Errorf("redismod: subscribe to %s: only events and commands are durable", th.Topic)
		}
		start := "$"
		if th.Topic.Kind == cqrs.KindCommand {
			start = "0"
		}
		key := t.k.stream(th.Topic)
		if err := t.startGroup(ctx, key, sp.Group, start); err != nil {
			return nil, err
		}
		h := th.Handler
		byTopic[th.Topic] = h
		s.sources = append(s.sources, &source{stream: key, reclaim: true, handle: func(ctx context.Context, e entry) { s.deliver(ctx, e, h) }})
	}
	replay := t.k.replay(sp.Group)
	if err := t.startGroup(ctx, replay, sp.Group, "0"); err != nil {
		return nil, err
	}
	s.sources = append(s.sources, &source{stream: replay, reclaim: true, handle: func(ctx context.Context, e entry) {
		env, _ := envelopeOf(e.msg.Values)
		h, ok := byTopic[cqrs.Topic{Kind: env.Kind, Name: env.Name}]
		if !ok {
			h = cqrs.DeliveryHandlerFunc(func(ctx context.Context, d cqrs.Delivery) {
				_ = d.DeadLetter(ctx, &cqrs.DeadLetter{Envelope: *d.Envelope(), Error: fmt.Sprintf("redismod: replay of %s %s: group %s does not subscribe to it", env.Kind, env.Name, sp.Group),
					Code: cqrs.CodeInvalid, Attempts: d.Envelope().Attempt, Service: sp.Group, Time: time.Now()})
			})
		}
		s.deliver(ctx, e, h)
	}})
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	s.onClose = append(s.onClose, func() { t.mu.Lock(); delete(t.subs, s); t.mu.Unlock() })
	s.run()
	return s, nil
}

// read takes new entries of src for the group while there is room.
func (s *subscription) read(src *source) {
	defer s.wg.Done()
	fails := 0
	for {
		if s.readCtx.Err() != nil {
			return
		}
		select { // room for a batch before asking for one
		case s.sem <- struct{}{}:
			<-s.sem
		case <-s.readCtx.Done():
			return
		}
		free := s.batch
		if room := cap(s.sem) - len(s.sem); room < free {
			free = max(room, 1)
		}
		res, err := s.t.rdb.XReadGroup(s.readCtx, &redis.XReadGroupArgs{
			Group: s.group, Consumer: s.consumer, Streams: []string{src.stream, ">"}, Count: int64(free), Block: s.t.cfg.Block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			s.setFailing(src, nil)
			continue
		}
		if err != nil {
			if s.readCtx.Err() != nil {
				return
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream or group vanished (a Redis without persistence
				// restarted, a key was deleted). Make the group again from
				// "0", not "$": what was added since must not be skipped.
				_ = s.t.ensureGroup(s.readCtx, src.stream, s.group, "0")
			}
			s.setFailing(src, err)
			fails++
			if !s.sleep(rereadWait(fails)) {
				return
			}
			continue
		}
		fails = 0
		s.setFailing(src, nil)
		for _, str := range res {
			for _, m := range str.Messages {
				s.start(entry{src: src, msg: m, attempt: 1})
			}
		}
	}
}

// start hands e to a worker once there is room (the batch was sized to
// the room, so this waits only briefly).
// A closing subscription hands out nothing more: the entry stays pending
// and is claimed again.
func (s *subscription) start(e entry) {
	select {
	case s.sem <- struct{}{}:
	case <-s.readCtx.Done():
		return
	}
	select {
	case s.work <- e:
	case <-s.readCtx.Done():
		<-s.sem
	}
}

// claim takes over, every REDIS_CLAIM_INTERVAL, the group's entries idle
// longer than REDIS_CLAIM_IDLE: those of a consumer that died or stalls,
// and naks whose delay is over (a nak sets the entry's idle time so).
func (s *subscription) claim() {
	defer s.wg.Done()
	tick := time.NewTicker(s.t.cfg.ClaimInterval)
	defer tick.Stop()
	cursors := map[*source]string{}
	for {
		select {
		case <-s.readCtx.Done():
			return
		case <-tick.C:
		}
		for _, src := range s.sources {
			if !src.reclaim {
				continue
			}
			room := cap(s.sem) - len(s.sem)
			if room <= 0 {
				break
			}
			start := cursors[src]
			if start == "" {
				start = "0-0"
			}
			msgs, next, err := s.t.rdb.XAutoClaim(s.readCtx, &redis.XAutoClaimArgs{
				Stream: src.stream, Group: s.group, Consumer: s.consumer, MinIdle: s.t.cfg.ClaimIdle, Start: start, Count: int64(min(room, s.batch)),
			}).Result()
			if err != nil {
				if s.readCtx.Err() == nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
					s.t.log.Debug("XAUTOCLAIM failed", zap.String("stream", src.stream), zap.String("error", scrub(err, s.t.cfg).Error()))
				}
				continue
			}
			cursors[src] = next
			for _, m := range msgs {
				s.start(entry{src: src, msg: m, attempt: s.deliveries(src.stream, m.ID)})
			}
		}
	}
}

// deliveries is how often the group has been given entry id.
func (s *subscription) deliveries(stream, id string) int {
	ctx, cancel := context.WithTimeout(s.h.Context(), 2*time.Second)
	defer cancel()
	p, err := s.t.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: s.group, Start: id, End: id, Count: 1}).Result()
	if err != nil || len(p) == 0 {
		return 2 // it was claimed, so given at least twice
	}
	return int(p[0].RetryCount)
}

// keepAlive resets the idle time of entries whose handlers run long, so no
// other consumer takes them over.
func (s *subscription) keepAlive() {
	defer s.keepWG.Done()
	every := s.t.cfg.ClaimIdle / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.keepStop:
			return
		case <-tick.C:
		}
		byStream := map[string][]string{}
		s.mu.Lock()
		now := time.Now()
		for d, since := range s.inflight {
			if now.Sub(since) >= every && !d.settled.Load() {
				byStream[d.e.src.stream] = append(byStream[d.e.src.stream], d.e.msg.ID)
			}
		}
		s.mu.Unlock()
		for stream, ids := range byStream {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.t.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: stream, Group: s.group, Consumer: s.consumer, Messages: ids}).Err()
			cancel()
		}
	}
}

func (s *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.readCtx.Done():
		return false
	}
}

// rereadWait is the wait before reading again after n failed reads.
func rereadWait(n int) time.Duration { return min(100*time.Millisecond<<min(n, 6), 5*time.Second) }

func (s *subscription) setFailing(src *source, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.failing, src)
		return
	}
	if _, was := s.failing[src]; !was {
		s.t.log.Warn("stream read failing; retrying", zap.String("stream", src.stream), zap.String("group", s.group),
			zap.String("error", scrub(err, s.t.cfg).Error()))
	}
	s.failing[src] = err
}

func (s *subscription) healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for src, err := range s.failing {
		return fmt.Errorf("redismod: %s of %s not reading: %v", src.stream, s.group, scrub(err, s.t.cfg))
	}
	return nil
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

// deliver runs one delivery of e to h.
func (s *subscription) deliver(ctx context.Context, e entry, h cqrs.DeliveryHandler) {
	env, err := envelopeOf(e.msg.Values)
	env.Attempt = e.attempt
	d := &delivery{s: s, e: e, env: env}
	if err != nil {
		_ = d.DeadLetter(ctx, &cqrs.DeadLetter{Envelope: *env, Error: err.Error(), Code: cqrs.CodeInvalid,
			Attempts: e.attempt, Service: s.group, Instance: s.consumer, Time: time.Now()})
		return
	}
	s.track(d, true)
	defer s.track(d, false)
	h.HandleDelivery(ctx, d)
	if d.settled.CompareAndSwap(false, true) {
		_ = d.nak(0) // unsettled: redeliver soon
	}
}

// Close implements cqrs.Subscriber: it stops reading, lets handlers in
// flight finish until ctx ends, then cancels their contexts. Entries read
// but not handled stay pending and are claimed again.
func (s *subscription) Close(ctx context.Context) error {
	s.once.Do(func() {
		for _, f := range s.onClose {
			f()
		}
		s.stopRead()
		s.wg.Wait() // no reader hands out more
		s.h.Drain() // after the readers and the claimer end: a message given back is not read again here
		close(s.work)
		s.err = s.h.Wait(ctx, s.workers.Wait)
		close(s.keepStop)
		close(s.acks) // every handler is done: the acker flushes and ends
		s.keepWG.Wait()
	})
	return s.err
}

// delivery is one entry to settle.
type delivery struct {
	s       *subscription
	e       entry
	env     *cqrs.Envelope
	settled atomic.Bool
}

var errSettled = errors.New("redismod: delivery already settled")

func (d *delivery) Envelope() *cqrs.Envelope { return d.env }

func settleCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// Ack implements cqrs.Delivery with XACK (and XDEL for replays and
// requests, which no other group reads).
func (d *delivery) Ack(context.Context) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	return d.ack()
}

func (d *delivery) ack() error {
	d.s.acks <- ackReq{stream: d.e.src.stream, id: d.e.msg.ID, del: strings.Contains(d.e.src.stream, "replay:")}
	return nil
}

// Nak implements cqrs.Delivery: the entry stays pending, its idle time set
// so that XAUTOCLAIM (of any instance) takes it again after delay.
func (d *delivery) Nak(_ context.Context, delay time.Duration) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	return d.nak(delay)
}

func (d *delivery) nak(delay time.Duration) error {
	ctx, cancel := settleCtx()
	defer cancel()
	due := time.Now().Add(delay - d.s.t.cfg.ClaimIdle)
	err := d.s.t.rdb.Do(ctx, "XCLAIM", d.e.src.stream, d.s.group, d.s.consumer, 0, d.e.msg.ID, "TIME", msTime(due), "JUSTID").Err()
	if err != nil {
		return fmt.Errorf("redismod: nak %s: %w", d.e.src.stream, err)
	}
	return nil
}

// DeadLetter implements cqrs.Delivery: the record goes to the dead-letter
// stream, then the entry is acked. If storing fails the entry stays pending
// and comes back.
func (d *delivery) DeadLetter(_ context.Context, dl *cqrs.DeadLetter) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	if err := d.s.t.storeDeadLetter(dl); err != nil {
		_ = d.nak(time.Second)
		return err
	}
	return d.ack()
}

// Lag implements cqrs.LagReporter from XINFO GROUPS: the group's lag
// (entries not delivered yet) and its pending entries (delivered, unacked).
func (t *Transport) Lag(ctx context.Context) ([]cqrs.ConsumerLag, error) {
	t.mu.Lock()
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	var out []cqrs.ConsumerLag
	for _, s := range subs {
		for topic := range s.topics {
			groups, err := t.rdb.XInfoGroups(ctx, t.k.stream(topic)).Result()
			if err != nil {
				return nil, fmt.Errorf("redismod: lag of %s: %w", topic, scrub(err, t.cfg))
			}
			for _, g := range groups {
				if g.Name == s.group {
					out = append(out, cqrs.ConsumerLag{Group: s.group, Topic: topic, Pending: max(g.Lag, 0), Unacked: g.Pending})
				}
			}
		}
	}
	return out, nil
}

var _ cqrs.LagReporter = (*Transport)(nil)
