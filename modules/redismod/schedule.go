package redismod

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Scheduled messages (transport.Scheduler) wait in their stream's own
// keys, in its hash slot: <stream>:scheduled, a sorted set of ids by due
// time (ms), and <stream>:scheduled:h and :p, hashes of their header
// blocks and payloads. A Lua script moves the due ones into the stream
// (XADD, ZREM, HDEL) atomically, so a message is either waiting or in the
// stream, never both or neither, on one server or a cluster.
//
// Which streams have messages waiting, and how soon, is an index of its
// own slot: <prefix>:{scheduled}, a sorted set of stream keys by the
// earliest due time (a lower bound: a scheduler may raise it only to what
// it read), with <prefix>:{scheduled}:gens, a counter per stream that
// every schedule to it bumps, and <prefix>:{scheduled}:id:<id>, the stream
// of a waiting id (for Cancel; it expires a week after the due time). A
// schedule adds to its stream's set first, then lowers the index (ZADD LT)
// and bumps the stream's counter; a scheduler raises or removes a stream's
// index entry only if that counter did not move since it read it, so no
// schedule can be left out of the index by a scheduler that read its
// stream an instant too early, and schedules to one stream never hold
// back the index of another. Due times are compared with Redis's clock
// (TIME in the scripts), so a scheduler whose clock runs fast moves
// nothing early; the due time itself is the publisher's clock's.
//
// Every started transport runs a scheduler: one script call reads the
// counter, the streams due and the earliest time; it moves what is due,
// and sleeps until the earliest time or REDIS_SCHEDULE_INTERVAL (1 s),
// whichever comes first, or until this transport schedules something
// sooner. So a message arrives within tens of milliseconds of its time,
// except one due sooner than the interval scheduled by another process,
// which may wait up to the interval. Idle, it is one command a second per
// instance.

// scheduleAdd adds a message to its stream's set, once per id.
// KEYS: set, headers, payloads; ARGV: id, due ms, header block, payload.
var scheduleAdd = redis.NewScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 1`)

// scheduleIndex lowers the index entry of a stream, bumps the stream's
// counter and records which stream an id waits in.
// KEYS: index, counters, id key; ARGV: stream, due ms, id key expiry (unix ms).
var scheduleIndex = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('SET', KEYS[3], ARGV[1], 'PXAT', ARGV[3])
return 1`)

// scheduleLook returns Redis's time in ms (every due time is compared with
// Redis's clock, not a scheduler's), up to ARGV[1] streams due by then
// with their index scores, each one's counter, and the earliest score
// after now ("" when none).
// KEYS: index, counters.
var scheduleLook = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, ARGV[1], 'WITHSCORES')
local gens = {}
for i = 1, #due, 2 do gens[#gens + 1] = redis.call('HGET', KEYS[2], due[i]) or '0' end
local later = redis.call('ZRANGE', KEYS[1], '(' .. now, '+inf', 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
return {tostring(now), due, gens, later[2] or ''}`)

// scheduleMove moves up to ARGV[2] messages due by ARGV[1] into the stream
// and returns their ids and the next due time in the set ("" when empty).
// KEYS: set, headers, payloads, stream.
var scheduleMove = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  local h = redis.call('HGET', KEYS[2], id)
  local p = redis.call('HGET', KEYS[3], id)
  if h and p then redis.call('XADD', KEYS[4], '*', 'h', h, 'payload', p) end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {ids, first[2] or ''}`)

// scheduleSettle sets a stream's index entry to the next due time it
// read, or removes it ("" for none), if the stream's counter is still
// ARGV[2].
// KEYS: index, counters; ARGV: stream, counter, next.
var scheduleSettle = redis.NewScript(`
if (redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1`)

// scheduleCancel removes a waiting id from its stream's set.
// KEYS: set, headers, payloads; ARGV: id.
var scheduleCancel = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`)

// scheduledKeys are a stream's keys of waiting messages, in its slot.
func scheduledKeys(stream string) []string {
	return []string{stream + ":scheduled", stream + ":scheduled:h", stream + ":scheduled:p"}
}

func (k keys) scheduleIndex() string       { return k.tagged("scheduled", "") }
func (k keys) scheduleGen() string         { return k.tagged("scheduled", "gens") }
func (k keys) scheduleID(id string) string { return k.tagged("scheduled", "id:"+id) }

// idKeep is how long after its due time a waiting id's stream is kept for
// Cancel: a message that waits longer (no scheduler ran for a week) is
// still delivered, but Cancel no longer finds it.
const idKeep = 7 * 24 * time.Hour

// moveBatch bounds the messages one script call moves.
const moveBatch = 256

// schedule stores env in stream's set until env.DeliverAt, with Publish's
// outcomes: the set's script is the store; if the index update after it
// fails, the outcome is unknown, and publishing the same envelope again
// (its id is stored once) completes it.
func (t *Transport) schedule(ctx context.Context, stream string, env *transport.Envelope) error {
	due := (env.DeliverAt.UnixNano() + 999_999) / 1e6 // in ms, rounded up: never early
	// Sent once (go-redis does not retry it): a retry's error could hide
	// that the first attempt ran, as for XADD (Publish).
	add := t.evalOnce(ctx, scheduleAdd, scheduledKeys(stream), env.ID, due, headerBlock(env), env.Payload)
	if _, err := t.outcome(stream, add, false); err != nil {
		return err
	}
	err := scheduleIndex.Run(ctx, t.rdb, []string{t.k.scheduleIndex(), t.k.scheduleGen(), t.k.scheduleID(env.ID)},
		stream, due, env.DeliverAt.Add(idKeep).UnixMilli()).Err()
	if err != nil {
		// Stored, and not in the index: unknown, whatever the cause, so
		// the caller publishes it again (stored once: the id is checked).
		return fmt.Errorf("redismod: %s stored for %v, not yet indexed; publish it again: %w: %w", env.ID, env.DeliverAt, cqrs.ErrOutcomeUnknown, scrub(err, t.cfg))
	}
	t.wakeScheduler(env.DeliverAt)
	return nil
}

// onceCmd is a command go-redis does not retry.
type onceCmd struct{ *redis.Cmd }

// NoRetry tells go-redis not to send the command again.
func (onceCmd) NoRetry() bool { return true }

// evalOnce runs script once and returns its error: EVALSHA, and when
// Redis does not know the script (NOSCRIPT: nothing ran), SCRIPT LOAD and
// EVALSHA again.
func (t *Transport) evalOnce(ctx context.Context, script *redis.Script, keys []string, args ...any) error {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", script.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	for attempt := 0; ; attempt++ {
		cmd := onceCmd{redis.NewCmd(ctx, cmdArgs...)}
		err := t.rdb.Process(ctx, cmd)
		if err == nil || attempt > 0 || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return err
		}
		if err := script.Load(ctx, t.rdb).Err(); err != nil {
			return err
		}
	}
}

// Cancel implements transport.Scheduler.
func (t *Transport) Cancel(ctx context.Context, id string) (bool, error) {
	idKey := t.k.scheduleID(id)
	stream, err := t.rdb.Get(ctx, idKey).Result()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redismod: cancel %s: %w", id, scrub(err, t.cfg))
	}
	n, err := scheduleCancel.Run(ctx, t.rdb, scheduledKeys(stream), id).Int()
	if err != nil {
		return false, fmt.Errorf("redismod: cancel %s: %w", id, scrub(err, t.cfg))
	}
	_ = t.rdb.Del(ctx, idKey).Err() // it expires anyway
	return n == 1, nil
}

// wakeScheduler makes the scheduler look again now if at is sooner than
// it would.
func (t *Transport) wakeScheduler(at time.Time) {
	t.mu.Lock()
	sooner := t.schedNext.IsZero() || at.Before(t.schedNext)
	t.mu.Unlock()
	if sooner {
		select {
		case t.schedWake <- struct{}{}:
		default:
		}
	}
}

// scheduler moves due messages into their streams until Close.
func (t *Transport) scheduler() {
	defer t.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-t.schedWake:
		case <-timer.C:
		}
		t.mu.Lock()
		t.schedNext = time.Time{} // looking: a schedule meanwhile wakes it again
		t.mu.Unlock()
		next, more := t.moveDue()
		wait := t.cfg.ScheduleInterval
		if more {
			wait = 0
		} else if next > 0 {
			wait = min(wait, next)
		}
		t.mu.Lock()
		t.schedNext = time.Now().Add(wait)
		t.mu.Unlock()
		timer.Reset(wait)
	}
}

// lookStreams bounds the streams one look moves.
const lookStreams = 64

// moveDue is one look: it moves what is due and returns how long until the
// earliest due time left by Redis's clock (0: none known) and whether
// more is due now.
func (t *Transport) moveDue() (next time.Duration, more bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idx := []string{t.k.scheduleIndex(), t.k.scheduleGen()}
	res, err := scheduleLook.Run(ctx, t.rdb, idx, lookStreams).Slice()
	if err != nil || len(res) != 4 {
		t.logScheduler("look", "", err)
		return 0, false
	}
	nowS, _ := res[0].(string)
	now, _ := strconv.ParseInt(nowS, 10, 64)
	due, _ := res[1].([]any)
	gens, _ := res[2].([]any)
	soonest := int64(-1) // the earliest due time left, Redis ms
	if ms, ok := scoreMS(res[3]); ok {
		soonest = ms
	}
	for i := 0; i+1 < len(due); i += 2 {
		stream, _ := due[i].(string)
		gen := "0"
		if i/2 < len(gens) {
			gen, _ = gens[i/2].(string)
		}
		mv, err := scheduleMove.Run(ctx, t.rdb, append(scheduledKeys(stream), stream), now, moveBatch).Slice()
		if err != nil || len(mv) != 2 {
			t.logScheduler("move", stream, err)
			continue
		}
		if ids, _ := mv[0].([]any); len(ids) > 0 {
			t.touch(stream)
			pipe := t.rdb.Pipeline()
			for _, id := range ids {
				s, _ := id.(string)
				pipe.Del(ctx, t.k.scheduleID(s))
			}
			_, _ = pipe.Exec(ctx)
			if len(ids) == moveBatch {
				more = true
				continue // the rest of what is due first; the index stays
			}
		}
		nextS, _ := mv[1].(string)
		if err := scheduleSettle.Run(ctx, t.rdb, idx, stream, gen, nextS).Err(); err != nil {
			t.logScheduler("index update", stream, err)
		}
		if ms, ok := scoreMS(nextS); ok && (soonest < 0 || ms < soonest) {
			soonest = ms
		}
	}
	if len(due) >= 2*lookStreams {
		more = true
	}
	if soonest >= 0 {
		next = max(time.Duration(soonest-now)*time.Millisecond, time.Millisecond)
	}
	return next, more
}

// logScheduler logs a failed step of a look: at warn for Redis's error
// reply (a script or a key gone wrong: it will not mend by itself), at
// debug for the connection (Check reports the server down).
func (t *Transport) logScheduler(step, stream string, err error) {
	if err == nil {
		err = errors.New("an answer of the wrong shape")
	}
	var rerr redis.Error
	log := t.log.Debug
	if errors.As(err, &rerr) {
		log = t.log.Warn
	}
	log("scheduled messages: "+step+" failed", zap.String("stream", stream), zap.String("error", scrub(err, t.cfg).Error()))
}

// scoreMS reads a score in ms (a string from Lua); false for "".
func scoreMS(v any) (int64, bool) {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if s == "" || err != nil {
		return 0, false
	}
	return int64(f), true
}
