package natsmod

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs/transport"
)

// fetcher is one durable consumer of a subscription: a consumer.Source.
type fetcher struct {
	sub     *subscription
	stream  string
	topic   transport.Topic // the topic a per-topic consumer reads; a per-kind one's has no Name
	perKind bool            // the consumer reads every topic of its kind (layout.go)
	olds    []string        // a per-kind consumer's per-topic predecessors' names
	replay  bool            // the group's replays
	cfg     jetstream.ConsumerConfig
	batch   int
	handle  func(jetstream.Msg)
	c       jetstream.Consumer // the fetch loop's own; made at Subscribe, made again after a failed pull
}

// Name implements consumer.Source: the consumer's durable name.
func (f *fetcher) Name() string { return f.cfg.Durable }

// Fetch implements consumer.Source: one pull, after (re)creating the
// consumer when the last pull failed (a deleted consumer, a server
// restarted with memory storage).
func (f *fetcher) Fetch(ctx context.Context) error {
	if f.c == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := f.sub.remake(cctx, f)
		cancel()
		if err != nil {
			return err
		}
		f.c = c
	}
	if err := f.pull(ctx); err != nil {
		f.c = nil
		return err
	}
	return nil
}

// consumerName is a topic's durable consumer in a group.
func consumerName(group string, t transport.Topic) string {
	return group + "_" + t.Kind.String() + "_" + t.Name
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

// consumer creates or updates f's consumer, at Subscribe. A consumer that
// exists with a setting that cannot change (its subject, its deliver
// policy) is an error naming it; a work-queue subject consumed by another
// group too means two services claim one command.
func (s *subscription) consumer(ctx context.Context, f *fetcher) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	var err error
	if f.perKind {
		c, err = s.kindConsumer(ctx, f, true)
	} else {
		c, err = s.js.CreateOrUpdateConsumer(ctx, f.stream, f.cfg)
	}
	return c, s.consumerError(f, err)
}

// remake makes f's consumer again after a failed pull: a per-topic one is
// created or updated as at Subscribe; a per-kind one is bound as it is on
// the server, or created if it is gone (see layout.go).
func (s *subscription) remake(ctx context.Context, f *fetcher) (jetstream.Consumer, error) {
	if !f.perKind {
		return s.consumer(ctx, f)
	}
	c, err := s.kindConsumer(ctx, f, false)
	return c, s.consumerError(f, err)
}

func (s *subscription) consumerError(f *fetcher, err error) error {
	if err == nil {
		return nil
	}
	if f.stream == s.t.cfg.commandsStream() && isWorkQueueConflict(err) {
		return fmt.Errorf("natsmod: consumer %s on %s: another service already consumes one of %s; a command has one owning service: %w",
			f.cfg.Durable, f.stream, f.subjects(), err)
	}
	return fmt.Errorf("natsmod: consumer %s on %s (subjects %s): %w", f.cfg.Durable, f.stream, f.subjects(), err)
}

// subjects is f's filter, for errors.
func (f *fetcher) subjects() string {
	if len(f.cfg.FilterSubjects) > 0 {
		return strings.Join(f.cfg.FilterSubjects, ", ")
	}
	return f.cfg.FilterSubject
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

// pull is one pull request, a Fetch of up to a batch of messages that ends
// when they have come, when the server expires it (after pullExpiry), when
// its heartbeats stop, or when the subscription closes (ctx); each message
// is handed to a worker as it comes.
//
// Each pull is a request of its own, not nats.go's Messages iterator: the
// iterator issues its next request only when Next runs while no request
// is being sent, and the request whose messages have all come counts as
// being sent until its goroutine, after the publish, says otherwise. A
// Next that runs in that window (often with a batch of 1 or 2, where the
// refill is only asked for after the last message) issues nothing, and
// the iterator waits for a heartbeat that no request will send: the
// consumer stalls until the missing heartbeats end the iterator.
func (f *fetcher) pull(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pullExpiry)
	defer cancel()
	b, err := f.c.Fetch(f.batch, jetstream.FetchContext(ctx), jetstream.FetchHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("natsmod: consumer %s: pull: %w", f.cfg.Durable, err)
	}
	for msg := range b.Messages() {
		if !f.sub.rt.Start(job{msg: msg, f: f}) {
			_ = msg.Nak() // taken but not started: give it back now rather than after the ack wait
		}
	}
	// A pull that expired ends without an error; one still open when its
	// context ends (a slow worker kept it past pullExpiry) is done too.
	if err := b.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("natsmod: consumer %s: %w", f.cfg.Durable, err)
	}
	return nil
}

var _ transport.LagReporter = (*Transport)(nil)

// Lag implements transport.LagReporter from the consumers' info: NumPending
// (stored, not delivered) and NumAckPending (delivered, not acked).
func (t *Transport) Lag(ctx context.Context) ([]transport.ConsumerLag, error) {
	_, js, err := t.conn()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	subs := slices.Collect(maps.Keys(t.subs))
	t.mu.Unlock()
	var out []transport.ConsumerLag
	for _, s := range subs {
		lag, err := s.lag(ctx, js)
		if err != nil {
			return nil, err
		}
		out = append(out, lag...)
	}
	return out, nil
}

// lag is the lag of each of s's consumers but the replays': one consumer
// info request each. A per-kind consumer's lag is the group's over all its
// topics of that kind (transport.ConsumerLag with a Topic without a Name).
func (s *subscription) lag(ctx context.Context, js jetstream.JetStream) ([]transport.ConsumerLag, error) {
	var out []transport.ConsumerLag
	for _, f := range s.fetchers {
		if f.replay {
			continue
		}
		c, err := js.Consumer(ctx, f.stream, f.cfg.Durable)
		if err != nil {
			return nil, fmt.Errorf("natsmod: lag of %s: %w", f.cfg.Durable, err)
		}
		info := c.CachedInfo()
		out = append(out, transport.ConsumerLag{Group: s.group, Topic: f.topic, Pending: int64(info.NumPending), Unacked: int64(info.NumAckPending)})
	}
	return out, nil
}
