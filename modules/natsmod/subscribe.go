package natsmod

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/consumer"
)

// subscription is a running Subscribe: its durable pull consumers (one per
// kind of message, or one per topic on a server older than 2.10; see
// layout.go) and one for the group's replays, each a source of the shared
// consumer runtime, which bounds the handlers in flight and extends their
// messages' ack wait.
type subscription struct {
	t        *Transport
	js       jetstream.JetStream
	group    string
	byTop    consumer.Routes
	fetchers []*fetcher
	rt       *consumer.Runtime[job]
}

// job is one message for a worker, with the consumer it came from (which
// picks its handler); settling needs only the message.
type job struct {
	msg jetstream.Msg
	f   *fetcher
}

// Subscribe implements transport.Transport. It creates (or updates) the
// group's durable pull consumers: on nats-server 2.10 and later one per
// kind, <group>_events and <group>_commands, filtering the subjects of all
// the group's topics of that kind; on older servers one per topic,
// <group>_<kind>_<Name>. Each has explicit ack, the configured ack wait and
// max ack pending, no MaxDeliver of its own (the bus counts attempts and
// dead-letters, so it must see every delivery). Events start at the first
// message after the consumer is created; commands from the first stored
// (they wait for their owner).
func (t *Transport) Subscribe(ctx context.Context, s transport.Subscription) (transport.Closer, error) {
	nc, js, err := t.conn()
	if err != nil {
		return nil, err
	}
	if s.Group == "" || s.Instance == "" || len(s.Topics) == 0 {
		return nil, fmt.Errorf("natsmod: subscription needs a group, an instance and topics (got %q, %q, %d)", s.Group, s.Instance, len(s.Topics))
	}
	sub := &subscription{t: t, js: js, group: s.Group, byTop: consumer.Routes{}}
	fetchers, err := sub.layout(s.Topics, t.perKind(nc))
	if err != nil {
		return nil, err
	}
	// Create every consumer now, once, so a bad one fails Subscribe, not
	// later; the fetch loops start with them.
	for _, f := range fetchers {
		if err := sub.create(ctx, f); err != nil {
			return nil, err
		}
	}
	sub.fetchers = fetchers
	sub.rt = consumer.New(consumer.Options[job]{
		Name: "natsmod", Group: s.Group, Concurrency: s.Concurrency, Lease: t.cfg.AckWait, Broker: sub,
		Handle:  func(_ context.Context, j job) { j.f.handle(j.msg) },
		Failing: sub.logFailing,
	})
	t.mu.Lock()
	t.subs[sub] = struct{}{}
	t.mu.Unlock()
	sources := make([]consumer.Source, len(fetchers))
	for i, f := range fetchers {
		f.batch = min(t.cfg.FetchBatch, sub.rt.Concurrency())
		sources[i] = f
	}
	sub.rt.Run(sources...)
	return sub, nil
}

// create creates f's consumer at Subscribe; one the server cannot create
// yet (disconnected, JetStream not ready) is asked for again until ctx
// ends.
func (s *subscription) create(ctx context.Context, f *fetcher) error {
	return s.t.retryStart(ctx, "consumer not created", func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		c, err := s.consumer(actx, f)
		if err != nil && !jetStreamNotReady(err) {
			return backoff.Permanent(err)
		}
		f.c = c
		return err
	}, zap.String("consumer", f.cfg.Durable))
}

func (s *subscription) logFailing(src consumer.Source, err error) {
	s.t.log.Warn("consumer failing; retrying", zap.String("consumer", src.Name()), zap.String("error", errText(err, s.t.cfg)))
}

// healthy reports the first failing consumer.
func (s *subscription) healthy() error {
	if src, err := s.rt.Failing(); err != nil {
		return fmt.Errorf("natsmod: consumer %s not fetching: %v", src.Name(), errText(err, s.t.cfg))
	}
	return nil
}

// handle runs one message's delivery.
func (s *subscription) handle(msg jetstream.Msg, h transport.DeliveryHandler, kind transport.Kind) {
	env, err := envelopeOf(msg.Headers(), msg.Data(), kind)
	if md, merr := msg.Metadata(); merr == nil {
		env.Attempt = int(md.NumDelivered)
	}
	s.rt.Deliver(h, job{msg: msg}, env, err)
}

// handleReplay routes a replayed message to its topic's handler.
func (s *subscription) handleReplay(msg jetstream.Msg) {
	// <prefix>.dlq.replay.<group>.<kind>.<Name>
	tokens := strings.Split(msg.Subject(), ".")
	var topic transport.Topic
	if len(tokens) >= 2 {
		kind, err := transport.ParseKind(tokens[len(tokens)-2])
		if err == nil {
			topic = transport.Topic{Kind: kind, Name: tokens[len(tokens)-1]}
		}
	}
	s.handle(msg, s.rt.Replay(s.byTop, topic), topic.Kind)
}

// Close implements transport.Closer: it stops pulling, gives back what was
// pulled but not started, lets handlers in flight finish until ctx ends,
// then cancels their contexts.
func (s *subscription) Close(ctx context.Context) error {
	err := s.rt.Close(ctx)
	s.t.mu.Lock()
	delete(s.t.subs, s)
	s.t.mu.Unlock()
	return err
}

// Ack implements consumer.Broker: a fire-and-forget ack, as at-least-once
// needs; a lost ack means a redelivery, which idempotency absorbs.
func (s *subscription) Ack(_ context.Context, j job) error { return j.msg.Ack() }

// Nak implements consumer.Broker with NakWithDelay (0: at once).
func (s *subscription) Nak(_ context.Context, j job, delay time.Duration) error {
	return j.msg.NakWithDelay(delay)
}

// DeadLetter implements consumer.Broker: the record is stored in the DLQ
// stream first, then the message is terminated. If storing fails the
// message is given back and comes again.
func (s *subscription) DeadLetter(ctx context.Context, j job, dl *transport.DeadLetter) error {
	if err := s.t.storeDeadLetter(ctx, dl); err != nil {
		_ = j.msg.Nak()
		return err
	}
	return j.msg.Term()
}

// Extend implements consumer.Broker with in-progress acks: the server
// restarts the messages' ack wait.
func (s *subscription) Extend(js []job) {
	for _, j := range js {
		_ = j.msg.InProgress()
	}
}
