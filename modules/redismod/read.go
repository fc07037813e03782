package redismod

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// source is one stream a subscription reads (a consumer.Source), and what
// to do with an entry. Entries taken over from a dead or slow consumer (and
// naks whose delay ran out) come back through XAUTOCLAIM.
type source struct {
	sub    *subscription
	stream string
	handle func(ctx context.Context, e entry)
	cursor string // the claimer's XAUTOCLAIM cursor
}

// entry is one stream entry read for a group.
type entry struct {
	src     *source
	msg     redis.XMessage
	attempt int
}

// Name implements consumer.Source: the stream.
func (src *source) Name() string { return src.stream }

// Fetch implements consumer.Source: one XREADGROUP of new entries, once
// there is room, for as many as there is room for (up to a batch).
func (src *source) Fetch(ctx context.Context) error {
	s := src.sub
	free, ok := s.rt.WaitRoom()
	if !ok {
		return nil
	}
	res, err := s.t.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: s.group, Consumer: s.consumer, Streams: []string{src.stream, ">"}, Count: int64(min(s.batch, free)), Block: s.t.cfg.Block,
	}).Result()
	if errors.Is(err, redis.Nil) || ctx.Err() != nil {
		return nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// The stream or group vanished (a Redis without persistence
			// restarted, a key was deleted). Make the group again from
			// "0", not "$": what was added since must not be skipped.
			_ = s.t.ensureGroup(ctx, src.stream, s.group, "0")
		}
		return err
	}
	for _, str := range res {
		for _, m := range str.Messages {
			// A closing subscription hands out nothing more: the entry
			// stays pending and is claimed again.
			s.rt.Start(entry{src: src, msg: m, attempt: 1})
		}
	}
	return nil
}

// claim takes over, every REDIS_CLAIM_INTERVAL, the group's entries idle
// longer than REDIS_CLAIM_IDLE: those of a consumer that died or stalls,
// and naks whose delay is over (a nak sets the entry's idle time so).
func (s *subscription) claim(ctx context.Context) {
	for _, src := range s.sources {
		room := s.rt.Room()
		if room <= 0 {
			break
		}
		start := src.cursor
		if start == "" {
			start = "0-0"
		}
		msgs, next, err := s.t.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: src.stream, Group: s.group, Consumer: s.consumer, MinIdle: s.t.cfg.ClaimIdle, Start: start, Count: int64(min(room, s.batch)),
		}).Result()
		if err != nil {
			if ctx.Err() == nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
				s.t.log.Debug("XAUTOCLAIM failed", zap.String("stream", src.stream), zap.String("error", scrub(err, s.t.cfg).Error()))
			}
			continue
		}
		src.cursor = next
		for _, m := range msgs {
			s.rt.Start(entry{src: src, msg: m, attempt: s.deliveries(src.stream, m.ID)})
		}
	}
}

// deliveries is how often the group has been given entry id.
func (s *subscription) deliveries(stream, id string) int {
	ctx, cancel := context.WithTimeout(s.rt.Context(), 2*time.Second)
	defer cancel()
	p, err := s.t.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: s.group, Start: id, End: id, Count: 1}).Result()
	if err != nil || len(p) == 0 {
		return 2 // it was claimed, so given at least twice
	}
	return int(p[0].RetryCount)
}
