package redismod

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// source is one stream a subscription reads (through a reader), and what
// to do with an entry. Naks whose delay ran out come back through the due
// set (claimDue), entries of a dead or slow consumer through the sweep.
type source struct {
	sub    *subscription
	stream string
	handle func(ctx context.Context, e entry)
	cursor string // the sweep's XAUTOCLAIM cursor
	more   bool   // the last scan stopped short of the end of the pending entries
}

// entry is one stream entry read for a group.
type entry struct {
	src     *source
	msg     redis.XMessage
	attempt int
}

// reader reads streams of a subscription in one XREADGROUP: all of them on
// one server, so a subscription has one read in flight, one goroutine and
// one connection blocked, whatever the number of its streams; one each on
// a Redis Cluster, which cannot read keys of several hash slots in one
// command (each stream has its own slot). XREADGROUP's COUNT is per
// stream, so one round may take up to a batch from each stream that has
// entries; those wait for a worker in order, pending in the group (their
// idle time runs: more than REDIS_CLAIM_IDLE of waiting behind slow
// handlers lets another consumer take them over, a duplicate the inbox
// absorbs).
type reader struct {
	sub  *subscription
	srcs []*source
	args []string // the streams, then as many ">"
}

func newReader(s *subscription, srcs ...*source) *reader {
	args := make([]string, 0, 2*len(srcs))
	for _, src := range srcs {
		args = append(args, src.stream)
	}
	for range srcs {
		args = append(args, ">")
	}
	return &reader{sub: s, srcs: srcs, args: args}
}

// Name implements consumer.Source: the stream, or how many.
func (r *reader) Name() string {
	if len(r.srcs) == 1 {
		return r.srcs[0].stream
	}
	return fmt.Sprintf("%d streams from %s", len(r.srcs), r.srcs[0].stream)
}

// Fetch implements consumer.Source: one XREADGROUP of new entries of the
// reader's streams, once there is room, for as many as there is room for
// (up to a batch) from each.
func (r *reader) Fetch(ctx context.Context) error {
	s := r.sub
	free, ok := s.rt.WaitRoom()
	if !ok {
		return nil
	}
	res, err := s.t.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: s.group, Consumer: s.consumer, Streams: r.args, Count: int64(min(s.batch, free)), Block: s.t.cfg.Block,
	}).Result()
	if errors.Is(err, redis.Nil) || ctx.Err() != nil {
		return nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// A stream or the group vanished (a Redis without persistence
			// restarted, a key was deleted). Make the groups again from
			// "0", not "$": what was added since must not be skipped
			// (BUSYGROUP where one still exists is ignored).
			for _, src := range r.srcs {
				_ = s.t.ensureGroup(ctx, src.stream, s.group, "0")
			}
		}
		return err
	}
	for _, str := range res {
		src := s.byStream[str.Stream]
		for _, m := range str.Messages {
			// A closing subscription hands out nothing more: the entry
			// stays pending and is claimed again.
			s.rt.Start(entry{src: src, msg: m, attempt: 1})
		}
	}
	return nil
}

// claim is the claim loop, every REDIS_CLAIM_INTERVAL: the due set, the
// rest of an unfinished sweep, and every REDIS_CLAIM_IDLE/2 a sweep. One
// goroutine runs it all, so the sources' cursors have one owner.
func (s *subscription) claim(ctx context.Context) {
	s.claimDue(ctx)
	if s.swept.IsZero() {
		s.swept = time.Now() // the first sweep a period after the start
	}
	if time.Since(s.swept) >= s.sweepEvery() {
		s.swept = time.Now()
		s.sweep(ctx)
	}
}

// sweep takes over, every REDIS_CLAIM_IDLE/2, the group's entries idle
// longer than REDIS_CLAIM_IDLE on each stream: those of a consumer that
// died or stalls (and naks the due set lost). It is the only read that
// visits every stream, so it runs at the pace of the claim idle, not of
// REDIS_CLAIM_INTERVAL; of the group's instances, the one that wins the
// round's lease of these streams sweeps (a group's consumers share its
// pending entries), its XAUTOCLAIMs in one pipeline. The lease is the
// subscription's streams' (sweepKey), not the group's: a bus's Subscribe and
// Serve are two subscriptions of one group on different streams.
func (s *subscription) sweep(ctx context.Context) {
	room := s.rt.Room()
	if room <= 0 {
		return
	}
	if len(s.t.leased([]string{s.sweepKey}, "sweep", s.sweepEvery())) == 0 {
		return // another instance of the group sweeps these streams this round
	}
	won := make([]string, len(s.sources))
	for i, src := range s.sources {
		won[i] = src.stream
	}
	pipe := s.t.rdb.Pipeline()
	cmds := make([]*redis.XAutoClaimCmd, len(won))
	for i, stream := range won {
		src := s.byStream[stream]
		start := src.cursor
		if start == "" {
			start = "0-0"
		}
		cmds[i] = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: s.group, Consumer: s.consumer, MinIdle: s.t.cfg.ClaimIdle, Start: start, Count: int64(min(room, s.batch)),
		})
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range cmds {
		src := s.byStream[won[i]]
		msgs, next, err := c.Result()
		if err != nil {
			if ctx.Err() == nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
				s.t.log.Debug("XAUTOCLAIM failed", zap.String("stream", src.stream), zap.String("error", scrub(err, s.t.cfg).Error()))
			}
			continue
		}
		s.claimed(src, msgs, next)
	}
}

// claimed starts what an XAUTOCLAIM of src took and keeps its cursor. A
// scan that has not reached the end of the pending entries (a dead
// consumer's backlog) goes on at the claim interval's pace (sweepMore)
// until it has.
func (s *subscription) claimed(src *source, msgs []redis.XMessage, next string) {
	src.cursor = next
	src.more = next != "0-0" && next != ""
	for _, m := range msgs {
		s.rt.Start(entry{src: src, msg: m, attempt: s.deliveries(src.stream, m.ID)})
	}
}

// sweepMore goes on with the sweep of each stream whose last scan stopped
// short of the end, one XAUTOCLAIM each, while there is room.
func (s *subscription) sweepMore(ctx context.Context) {
	for _, src := range s.sources {
		room := s.rt.Room()
		if room <= 0 {
			return
		}
		if !src.more {
			continue
		}
		msgs, next, err := s.t.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: src.stream, Group: s.group, Consumer: s.consumer, MinIdle: s.t.cfg.ClaimIdle, Start: src.cursor, Count: int64(min(room, s.batch)),
		}).Result()
		if err != nil {
			src.more = false // the next sweep starts it again
			continue
		}
		s.claimed(src, msgs, next)
	}
}

// sweepEvery is the sweep's period: half the claim idle, at least the
// claim interval.
func (s *subscription) sweepEvery() time.Duration {
	return max(s.t.cfg.ClaimIdle/2, s.t.cfg.ClaimInterval)
}

// claimDue takes, every REDIS_CLAIM_INTERVAL, the group's naked entries
// whose delay is over, from the group's due set (one ZRANGEBYSCORE, then an
// XCLAIM per stream that has some): a nak's redelivery comes within the
// claim interval of its delay whatever the number of streams. While the
// set has nothing due, this instance looks less often, down to once a
// second (dueLook); its own nak brings it back to every interval, so an
// entry it gave back is on time, and another instance's within a second. XCLAIM's
// minimum idle time makes one instance of the group win each entry; the
// members read are removed, claimed or not (an entry acked meanwhile, or
// taken by another instance).
func (s *subscription) claimDue(ctx context.Context) {
	s.sweepMore(ctx)
	room := s.rt.Room()
	if room <= 0 || !s.dueLook.Go() {
		return
	}
	due := s.t.k.due(s.group)
	now := time.Now()
	members, err := s.t.rdb.ZRangeByScoreWithScores(ctx, due, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(s.batch)}).Result()
	if err != nil || len(members) == 0 {
		s.dueLook.Idle()
		return
	}
	s.dueLook.Busy()
	// Members of streams this subscription does not read belong to another
	// subscription of the group (a bus's Serve beside its Subscribe): they
	// stay for it, unless so long overdue that the sweep has them anyway.
	stale := float64(now.Add(-s.t.cfg.ClaimIdle).UnixMilli())
	ids := map[string][]string{}
	var done []any
	for _, z := range members {
		m, _ := z.Member.(string)
		stream, id, ok := strings.Cut(m, " ")
		mine := ok && s.byStream[stream] != nil
		if mine && len(done) < room {
			ids[stream] = append(ids[stream], id)
		}
		if mine && len(done) < room || !mine && z.Score < stale {
			done = append(done, m)
		}
	}
	for stream, list := range ids {
		msgs, err := s.t.rdb.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: s.group, Consumer: s.consumer, MinIdle: s.t.cfg.ClaimIdle, Messages: list}).Result()
		if err != nil {
			continue // left to the sweep
		}
		for _, m := range msgs {
			s.rt.Start(entry{src: s.byStream[stream], msg: m, attempt: s.deliveries(stream, m.ID)})
		}
	}
	if len(done) > 0 {
		_ = s.t.rdb.ZRem(ctx, due, done...).Err()
	}
}

// dueMember is an entry's member of its group's due set.
func dueMember(stream, id string) string { return stream + " " + id }

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

// lookPace spaces a poll that keeps finding nothing: every tick at first,
// then every 2nd, 4th, ... up to every max-th, until Busy.
type lookPace struct {
	mu          sync.Mutex
	skip, every int
	max         int
}

// Go reports whether this tick looks.
func (p *lookPace) Go() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.skip > 0 {
		p.skip--
		return false
	}
	p.skip = p.every
	return true
}

// Idle spaces the looks further: nothing was found.
func (p *lookPace) Idle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.every = min(max(2*p.every, 1), p.max)
	p.skip = p.every
}

// Busy looks at every tick again.
func (p *lookPace) Busy() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.every, p.skip = 0, 0
}
