package redismod

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/consumer"
)

// subscription reads its sources for one consumer of a group, on the shared
// consumer runtime (workers, deliveries in flight and their idle time, the
// failing streams); Subscribe and Serve both run on it.
type subscription struct {
	t        *Transport
	group    string
	consumer string
	sources  []*source
	rt       *consumer.Runtime[entry]
	batch    int
	acks     chan ackReq
	ackWG    sync.WaitGroup // the acker: it outlives the handlers
	onClose  []func()
	once     sync.Once
	err      error
	byStream map[string]*source
	dueLook  lookPace        // how often claimDue looks at the due set
	swept    time.Time       // the last sweep's; the claim loop's own
	sweepKey string          // the sweep's lease, named by the streams (sweepKeyOf)
	topics   consumer.Routes // of a Subscribe, for Lag
}

func (t *Transport) newSubscription(group, consumerName string, concurrency int) *subscription {
	s := &subscription{t: t, group: group, consumer: consumerName}
	s.rt = consumer.New(consumer.Options[entry]{
		Name: "redismod", Group: group, Instance: consumerName, Concurrency: concurrency, Lease: t.cfg.ClaimIdle, Broker: s,
		Handle:  func(ctx context.Context, e entry) { e.src.handle(ctx, e) },
		Failing: s.logFailing,
	})
	s.batch = min(t.cfg.FetchBatch, s.rt.Concurrency())
	s.dueLook.max = max(int(time.Second/t.cfg.ClaimInterval), 1)
	s.acks = make(chan ackReq, 4*s.rt.Concurrency())
	return s
}

// run starts the acker, the claimers, and the runtime's workers and
// reader: one for all the streams, or one per stream on a Redis Cluster.
func (s *subscription) run() {
	s.sweepKey = s.sweepKeyOf()
	s.ackWG.Add(1)
	go s.acker()
	s.rt.Tick(s.t.cfg.ClaimInterval, s.claim)
	if _, cluster := s.t.rdb.(*redis.ClusterClient); !cluster {
		s.rt.Run(newReader(s, s.sources...))
		return
	}
	readers := make([]consumer.Source, len(s.sources))
	for i, src := range s.sources {
		readers[i] = newReader(s, src)
	}
	s.rt.Run(readers...)
}

// Subscribe implements transport.Transport: the group reads each topic's stream
// (created with the group if missing; events from "$", commands from "0")
// as consumer Instance, and its replay stream.
func (t *Transport) Subscribe(ctx context.Context, sp transport.Subscription) (transport.Closer, error) {
	if t.isClosed() {
		return nil, cqrs.ErrClosed
	}
	if sp.Group == "" || sp.Instance == "" || len(sp.Topics) == 0 {
		return nil, fmt.Errorf("redismod: subscription needs a group, an instance and topics (got %q, %q, %d)", sp.Group, sp.Instance, len(sp.Topics))
	}
	s := t.newSubscription(sp.Group, sp.Instance, sp.Concurrency)
	s.topics = consumer.Routes{}
	for _, th := range sp.Topics {
		if th.Topic.Kind != transport.KindEvent && th.Topic.Kind != transport.KindCommand {
			return nil, fmt.Errorf("redismod: subscribe to %s: only events and commands are durable", th.Topic)
		}
		start := "$"
		if th.Topic.Kind == transport.KindCommand {
			start = "0"
		}
		key := t.k.stream(th.Topic)
		if err := t.startGroup(ctx, key, sp.Group, start); err != nil {
			return nil, err
		}
		h := th.Handler
		s.topics[th.Topic] = h
		s.addSource(key, func(ctx context.Context, e entry) { s.deliver(e, h) })
	}
	replay := t.k.replay(sp.Group)
	if err := t.startGroup(ctx, replay, sp.Group, "0"); err != nil {
		return nil, err
	}
	s.addSource(replay, s.deliverReplay)
	s.run()
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	s.onClose = append(s.onClose, func() { t.mu.Lock(); delete(t.subs, s); t.mu.Unlock() })
	return s, nil
}

// sweepKeyOf names the sweep's lease by the group and its streams, sorted:
// the instances of a subscription share it, and another subscription of the
// group (other streams) has its own.
func (s *subscription) sweepKeyOf() string {
	streams := make([]string, len(s.sources))
	for i, src := range s.sources {
		streams[i] = src.stream
	}
	slices.Sort(streams)
	h := fnv.New64a()
	for _, st := range streams {
		h.Write([]byte(st))
		h.Write([]byte{0})
	}
	return s.t.k.tagged("sweep:"+s.group, strconv.FormatUint(h.Sum64(), 36))
}

func (s *subscription) addSource(stream string, handle func(ctx context.Context, e entry)) {
	src := &source{sub: s, stream: stream, handle: handle}
	s.sources = append(s.sources, src)
	if s.byStream == nil {
		s.byStream = map[string]*source{}
	}
	s.byStream[stream] = src
}

// deliver runs one delivery of e to h.
func (s *subscription) deliver(e entry, h transport.DeliveryHandler) {
	env, err := envelopeOf(e.msg.Values)
	env.Attempt = e.attempt
	s.rt.Deliver(h, e, env, err)
}

// deliverReplay routes a replayed entry to its topic's handler.
func (s *subscription) deliverReplay(_ context.Context, e entry) {
	env, _ := envelopeOf(e.msg.Values)
	s.deliver(e, s.rt.Replay(s.topics, transport.Topic{Kind: env.Kind, Name: env.Name}))
}

func (s *subscription) logFailing(src consumer.Source, err error) {
	s.t.log.Warn("stream read failing; retrying", zap.String("stream", src.Name()), zap.String("group", s.group),
		zap.String("error", scrub(err, s.t.cfg).Error()))
}

func (s *subscription) healthy() error {
	if src, err := s.rt.Failing(); err != nil {
		return fmt.Errorf("redismod: %s of %s not reading: %v", src.Name(), s.group, scrub(err, s.t.cfg))
	}
	return nil
}

// Close implements transport.Closer: it stops reading, lets handlers in
// flight finish until ctx ends, then cancels their contexts. Entries read
// but not handled stay pending and are claimed again.
func (s *subscription) Close(ctx context.Context) error {
	s.once.Do(func() {
		for _, f := range s.onClose {
			f()
		}
		s.err = s.rt.Close(ctx)
		close(s.acks) // every handler is done: the acker flushes and ends
		s.ackWG.Wait()
	})
	return s.err
}

var _ transport.LagReporter = (*Transport)(nil)

// Lag implements transport.LagReporter from XINFO GROUPS, pipelined: the
// group's lag (entries not delivered yet) and its pending entries
// (delivered, unacked).
func (t *Transport) Lag(ctx context.Context) ([]transport.ConsumerLag, error) {
	t.mu.Lock()
	subs := slices.Collect(maps.Keys(t.subs))
	t.mu.Unlock()
	// One pipeline of XINFO GROUPS for every topic: one round trip a scrape.
	type ask struct {
		s     *subscription
		topic transport.Topic
		cmd   *redis.XInfoGroupsCmd
	}
	var asks []ask
	pipe := t.rdb.Pipeline()
	for _, s := range subs {
		for topic := range s.topics {
			asks = append(asks, ask{s, topic, pipe.XInfoGroups(ctx, t.k.stream(topic))})
		}
	}
	if len(asks) > 0 {
		_, _ = pipe.Exec(ctx) // each command's error is read below
	}
	var out []transport.ConsumerLag
	for _, a := range asks {
		groups, err := a.cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("redismod: lag of %s: %w", a.topic, scrub(err, t.cfg))
		}
		for _, g := range groups {
			if g.Name == a.s.group {
				out = append(out, transport.ConsumerLag{Group: a.s.group, Topic: a.topic, Pending: max(g.Lag, 0), Unacked: g.Pending})
			}
		}
	}
	return out, nil
}
