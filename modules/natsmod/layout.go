package natsmod

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs/transport"
)

// The consumer layout. A group reads its events through one durable
// consumer, <group>_events, whose filter is the subjects of all the events
// it handles, and its commands through <group>_commands: the cost of a
// service (consumers on the server, pull requests, heartbeats, goroutines,
// API calls at start, one consumer info per kind at a scrape) does not grow
// with the number of its message types. Multi-subject filters came with
// nats-server 2.10; on an older server each topic has its own consumer,
// <group>_<kind>_<Name>, as before. The server's limit of consumers per
// stream (1,000 by default since 2.11) is then reached at about 1,000
// topics over all groups.
//
// What one consumer for many types gives up: its MaxAckPending
// (NATS_MAX_ACK_PENDING) is shared by the types, so a backlog of one type
// holds the others back once that many are unacked. And in a rolling
// update that adds a type, the consumer's filter grows when the first new
// instance starts, while the old instances still pull from it: a message of
// the new type that reaches an old instance is given back after the ack
// wait (NATS_ACK_WAIT) for a new one to take, and each time counts as a
// delivery attempt. An instance re-creating its consumer after a failure
// binds to the one on the server without changing its filter, so an old
// instance never narrows it back.

// perKind reports whether the server nc is connected to takes
// multi-subject consumer filters (FilterSubjects, 2.10 and later), so that
// a group needs one consumer per kind.
func (t *Transport) perKind(nc *nats.Conn) bool {
	if t.perTopic {
		return false
	}
	major, minor, ok := serverVersion(nc.ConnectedServerVersion())
	return ok && (major > 2 || major == 2 && minor >= 10)
}

// serverVersion reads the major and minor of a server version such as
// "2.10.3" or "2.11.0-RC.1".
func serverVersion(v string) (major, minor int, ok bool) {
	ma, rest, ok1 := strings.Cut(v, ".")
	mi, _, _ := strings.Cut(rest, ".")
	mi, _, _ = strings.Cut(mi, "-")
	var err1, err2 error
	major, err1 = strconv.Atoi(ma)
	minor, err2 = strconv.Atoi(mi)
	return major, minor, ok1 && err1 == nil && err2 == nil
}

// kindConsumerName is a group's consumer of all its topics of kind k.
func kindConsumerName(group string, k transport.Kind) string { return group + "_" + k.Plural() }

// layout returns the fetchers of a subscription to topics: one per kind
// (perKind) or one per topic, and one for the group's replays.
func (s *subscription) layout(topics []transport.TopicHandler, perKind bool) ([]*fetcher, error) {
	t := s.t
	byKind := map[transport.Kind][]transport.TopicHandler{}
	for _, th := range topics {
		if th.Topic.Kind != transport.KindEvent && th.Topic.Kind != transport.KindCommand {
			return nil, fmt.Errorf("natsmod: subscribe to %s: only events and commands are durable", th.Topic)
		}
		s.byTop[th.Topic] = th.Handler
		byKind[th.Topic.Kind] = append(byKind[th.Topic.Kind], th)
	}
	var out []*fetcher
	for _, kind := range []transport.Kind{transport.KindEvent, transport.KindCommand} {
		ths := byKind[kind]
		if len(ths) == 0 {
			continue
		}
		deliver := jetstream.DeliverNewPolicy
		if kind == transport.KindCommand {
			deliver = jetstream.DeliverAllPolicy
		}
		if !perKind {
			for _, th := range ths {
				h := th.Handler
				out = append(out, &fetcher{
					sub: s, stream: t.cfg.streamOf(kind), topic: th.Topic,
					cfg:    t.consumerConfig(consumerName(s.group, th.Topic), t.subject(th.Topic), deliver, s.group, th.Topic.String()),
					handle: func(m jetstream.Msg) { s.handle(m, h, kind) },
				})
			}
			continue
		}
		routes := make(map[string]transport.DeliveryHandler, len(ths))
		olds := make([]string, 0, len(ths))
		for _, th := range ths {
			routes[t.subject(th.Topic)] = th.Handler
			olds = append(olds, consumerName(s.group, th.Topic))
		}
		cfg := t.consumerConfig(kindConsumerName(s.group, kind), "", deliver, s.group, kind.Plural())
		cfg.FilterSubjects = slices.Sorted(func(yield func(string) bool) {
			for subj := range routes {
				if !yield(subj) {
					return
				}
			}
		})
		out = append(out, &fetcher{
			sub: s, stream: t.cfg.streamOf(kind), topic: transport.Topic{Kind: kind}, cfg: cfg, perKind: true, olds: olds,
			handle: func(m jetstream.Msg) {
				if h, ok := routes[m.Subject()]; ok {
					s.handle(m, h, kind)
					return
				}
				// A type this instance does not handle, added to the filter
				// by a newer instance of the group: leave it to one of those.
				t.log.Debug("message of a type this instance does not handle; given back", zap.String("subject", m.Subject()))
				_ = m.NakWithDelay(t.cfg.AckWait)
			},
		})
	}
	return append(out, &fetcher{
		sub: s, stream: t.cfg.dlqStream(), replay: true,
		cfg:    t.consumerConfig(s.group+"_replay", t.replaySubject(s.group, "", "")+">", jetstream.DeliverAllPolicy, s.group, "replays"),
		handle: s.handleReplay,
	}), nil
}

// kindConsumer makes f's per-kind consumer. At Subscribe (update) one that
// exists takes f's filter and settings, keeping where it stands; after a
// failed pull one that exists is used as it is. One that does not exist is
// created, and the group's per-topic consumers of f's topics, from an
// older server or release, give way to it (migrate).
func (s *subscription) kindConsumer(ctx context.Context, f *fetcher, update bool) (jetstream.Consumer, error) {
	c, err := s.js.Consumer(ctx, f.stream, f.cfg.Durable)
	switch {
	case err == nil && !update:
		return c, nil
	case err == nil:
		cfg := c.CachedInfo().Config
		cfg.FilterSubject, cfg.FilterSubjects = "", f.cfg.FilterSubjects
		cfg.Description, cfg.AckWait, cfg.MaxAckPending = f.cfg.Description, f.cfg.AckWait, f.cfg.MaxAckPending
		c, err = s.js.UpdateConsumer(ctx, f.stream, cfg)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err = s.migrate(ctx, f)
	}
	if err != nil {
		return nil, err
	}
	return c, s.dropOld(ctx, f)
}

// migrate creates f's per-kind consumer where the group's per-topic
// consumers of its topics may still exist. Events start after the lowest
// point every old consumer has acknowledged, so nothing published while the
// group changed over is skipped (what is delivered again, the inbox
// absorbs); commands stay in their work queue until acknowledged, so the old
// consumers are removed first (a work queue takes one consumer per subject)
// and the new one starts at the first stored.
func (s *subscription) migrate(ctx context.Context, f *fetcher) (jetstream.Consumer, error) {
	olds, err := s.oldConsumers(ctx, f)
	if err != nil {
		return nil, err
	}
	cfg := f.cfg
	if f.topic.Kind == transport.KindCommand {
		if err := s.deleteConsumers(ctx, f, olds); err != nil {
			return nil, err
		}
	} else if len(olds) > 0 {
		floor := olds[0].AckFloor.Stream
		for _, info := range olds[1:] {
			floor = min(floor, info.AckFloor.Stream)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
	}
	c, err := s.js.CreateConsumer(ctx, f.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another instance of the group created it first: use that one.
		return s.js.Consumer(ctx, f.stream, f.cfg.Durable)
	}
	return c, err
}

// dropOld removes what is left of the group's per-topic consumers of f's
// topics once its per-kind consumer exists.
func (s *subscription) dropOld(ctx context.Context, f *fetcher) error {
	olds, err := s.oldConsumers(ctx, f)
	if err != nil {
		return err
	}
	return s.deleteConsumers(ctx, f, olds)
}

// oldConsumers returns the group's per-topic consumers of f's topics on
// f's stream: one listing of the stream's consumer names, and the info of
// those found.
func (s *subscription) oldConsumers(ctx context.Context, f *fetcher) ([]*jetstream.ConsumerInfo, error) {
	str, err := s.js.Stream(ctx, f.stream)
	if err != nil {
		return nil, err
	}
	names := str.ConsumerNames(ctx)
	var found []string
	for name := range names.Name() {
		if slices.Contains(f.olds, name) {
			found = append(found, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, err
	}
	out := make([]*jetstream.ConsumerInfo, 0, len(found))
	for _, name := range found {
		c, err := str.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // removed meanwhile, by another instance
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c.CachedInfo())
	}
	return out, nil
}

func (s *subscription) deleteConsumers(ctx context.Context, f *fetcher, infos []*jetstream.ConsumerInfo) error {
	for _, info := range infos {
		err := s.js.DeleteConsumer(ctx, f.stream, info.Name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("natsmod: remove the per-topic consumer %s, replaced by %s: %w", info.Name, f.cfg.Durable, err)
		}
		if err == nil {
			s.t.log.Info("per-topic consumer replaced by the group's consumer", zap.String("old", info.Name), zap.String("new", f.cfg.Durable))
		}
	}
	return nil
}

// isWorkQueueConflict reports the error of a second consumer of one
// work-queue subject.
func isWorkQueueConflict(err error) bool {
	return err != nil && strings.Contains(err.Error(), "filtered consumer not unique")
}
