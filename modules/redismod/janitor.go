package redismod

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The janitor trims streams and removes idle consumers, every
// REDIS_TRIM_INTERVAL, for the streams this process publishes to or reads
// and of which it wins the round's lease (leased): one instance trims a
// stream per round, not every instance that reads it.
//
// Trimming policy: a stream is trimmed (XTRIM MINID) up to the oldest entry
// some group still needs: the lowest id a group has pending, or, for a
// group with none pending, the entry after the last it was given. So an
// entry leaves only when every group has acknowledged it. A stream without
// groups is left alone (a command waits for its owner). The trade-off: one
// stalled group makes its streams grow; REDIS_STREAM_MAX_LEN caps that, and
// entries dropped by the cap that a group had not acknowledged are counted
// (DroppedUnacked) and logged as an error, never dropped silently.
func (t *Transport) janitor() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		streams := make([]string, 0, len(t.streams))
		for s := range t.streams {
			streams = append(streams, s)
		}
		t.mu.Unlock()
		for _, s := range t.leased(streams, "trim", t.cfg.TrimInterval) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := t.Trim(ctx, s); err != nil {
				t.log.Debug("trim failed", zap.String("stream", s), zap.String("error", scrub(err, t.cfg).Error()))
			}
			cancel()
		}
	}
}

// leased returns the keys of which this process won a lease of what for
// d: one pipeline of SET NX PX, a lease per key, so that of the instances
// that would each do the same work on a key (trim a stream every instance
// reads, sweep a group's stream) one does it per round. A key whose lease
// cannot be asked for (the server unreachable) is not returned: the work
// waits for the next round.
func (t *Transport) leased(keys []string, what string, d time.Duration) []string {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := t.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.SetNX(ctx, k+":"+what, t.owner, d*9/10) // expires before the next round
	}
	_, _ = pipe.Exec(ctx)
	won := keys[:0:0]
	for i, c := range cmds {
		if ok, err := c.Result(); err == nil && ok {
			won = append(won, keys[i])
		}
	}
	return won
}

// TrimResult says what one trim did.
type TrimResult struct {
	Trimmed        int64 // entries every group had acknowledged
	DroppedUnacked int64 // entries over REDIS_STREAM_MAX_LEN that some group had not acknowledged
	RemovedIdle    int   // idle consumers with nothing pending, removed
}

// Trim trims stream by the policy of the janitor and removes its idle
// consumers; the janitor calls it, tests and tools may too.
func (t *Transport) Trim(ctx context.Context, stream string) (TrimResult, error) {
	var res TrimResult
	groups, err := t.rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return res, err
	}
	if len(groups) == 0 {
		return res, nil
	}
	floor := ""
	for _, g := range groups {
		f := nextID(g.LastDeliveredID)
		if g.Pending > 0 {
			p, err := t.rdb.XPending(ctx, stream, g.Name).Result()
			if err != nil {
				return res, err
			}
			f = p.Lower
		}
		if floor == "" || lessID(f, floor) {
			floor = f
		}
		removed, err := t.removeIdle(ctx, stream, g.Name)
		if err != nil {
			return res, err
		}
		res.RemovedIdle += removed
	}
	if floor != "" && floor != "0-0" {
		n, err := t.rdb.XTrimMinID(ctx, stream, floor).Result()
		if err != nil {
			return res, err
		}
		res.Trimmed = n
	}
	if n, err := t.rdb.XLen(ctx, stream).Result(); err == nil && n > t.cfg.MaxLen {
		dropped, err := t.rdb.XTrimMaxLen(ctx, stream, t.cfg.MaxLen).Result()
		if err != nil {
			return res, err
		}
		res.DroppedUnacked = dropped
		t.log.Error("stream over REDIS_STREAM_MAX_LEN: dropped entries a group had not acknowledged",
			zap.String("stream", stream), zap.Int64("dropped", dropped), zap.Int64("max_len", t.cfg.MaxLen))
	}
	return res, nil
}

func (t *Transport) removeIdle(ctx context.Context, stream, group string) (int, error) {
	cs, err := t.rdb.XInfoConsumers(ctx, stream, group).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if c.Pending == 0 && c.Idle > t.cfg.ConsumerIdle {
			if err := t.rdb.XGroupDelConsumer(ctx, stream, group, c.Name).Err(); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// parseID splits a stream id "ms-seq".
func parseID(id string) (uint64, uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ := strconv.ParseUint(a, 10, 64)
	seq, _ := strconv.ParseUint(b, 10, 64)
	return ms, seq
}

func lessID(a, b string) bool {
	am, as := parseID(a)
	bm, bs := parseID(b)
	return am < bm || am == bm && as < bs
}

// nextID is the smallest id after id.
func nextID(id string) string {
	ms, seq := parseID(id)
	if seq == math.MaxUint64 {
		return fmt.Sprintf("%d-0", ms+1)
	}
	return fmt.Sprintf("%d-%d", ms, seq+1)
}
