package redismod

import (
	"context"
	"encoding/json"
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

// Request/reply over Redis:
//
//   - a command or query has a request stream, catga:{rpc:commands:<Name>},
//     read by the owning service's consumer group, one instance per request;
//   - each serving instance writes a heartbeat (Redis's own clock) into
//     catga:{rpc:commands:<Name>}:servers every second;
//   - Request runs one script that adds the request only if some instance
//     beat within the last 3 seconds, so no responder fails at once with
//     cqrs.ErrNoHandler; the request names a reply list and its deadline;
//   - the responder pushes the reply on the caller's list
//     catga:{reply:<process>} (kept REDIS_REPLY_TTL), acks and deletes the
//     request; a request found past its deadline is dropped unanswered;
//   - each transport reads its reply list with BLPOP and hands each reply to
//     the request waiting for it; a reply for a request that gave up is
//     dropped, never given to another.

const (
	heartbeatEvery = time.Second
	heartbeatTTL   = 3 * time.Second
	fieldReplyTo   = "reply_to"
	fieldDeadline  = "deadline_ms"
)

var heartbeat = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 20)
return now`)

var requestIfServed = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf') == 0 then
  return false
end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))`)

// wireReply is a reply on a reply list.
type wireReply struct {
	ID          string    `json:"id"`
	ContentType string    `json:"ct,omitempty"`
	Payload     []byte    `json:"p,omitempty"`
	Code        cqrs.Code `json:"code,omitempty"`
	Message     string    `json:"msg,omitempty"`
}

// Serve implements transport.Transport.
func (t *Transport) Serve(ctx context.Context, sp transport.Responder) (transport.Closer, error) {
	if t.isClosed() {
		return nil, cqrs.ErrClosed
	}
	if sp.Group == "" || sp.Instance == "" || len(sp.Endpoints) == 0 {
		return nil, fmt.Errorf("redismod: service needs a group, an instance and endpoints (got %q, %q, %d)", sp.Group, sp.Instance, len(sp.Endpoints))
	}
	s := t.newSubscription(sp.Group, sp.Instance, sp.Concurrency)
	member := sp.Instance + ":" + t.owner
	var beats []string
	for _, ep := range sp.Endpoints {
		key := t.k.requests(ep.Topic)
		if err := t.startGroup(ctx, key, sp.Group, "$"); err != nil {
			return nil, err
		}
		h := ep.Handler
		s.addSource(key, func(ctx context.Context, e entry) { s.answer(ctx, e, h) })
		beats = append(beats, t.k.servers(ep.Topic))
	}
	// One pipeline of the endpoints' heartbeats: a round trip a beat, not
	// one per endpoint. EVALSHA, with the script loaded at Serve.
	if err := heartbeat.Load(ctx, t.rdb).Err(); err != nil {
		return nil, fmt.Errorf("redismod: load the heartbeat script: %w", scrub(err, t.cfg))
	}
	beatOnce := func(ctx context.Context) ([]redis.Cmder, error) {
		pipe := t.rdb.Pipeline()
		for _, key := range beats {
			heartbeat.EvalSha(ctx, pipe, []string{key}, member, heartbeatTTL.Milliseconds())
		}
		return pipe.Exec(ctx)
	}
	beat := func(ctx context.Context) error {
		cmds, err := beatOnce(ctx)
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// A server restarted without the script: load it, beat again.
			if err = heartbeat.Load(ctx, t.rdb).Err(); err == nil {
				cmds, err = beatOnce(ctx)
			}
		}
		for _, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("redismod: heartbeat %v: %w", c.Args()[3], scrub(c.Err(), t.cfg))
			}
		}
		if err != nil {
			return fmt.Errorf("redismod: heartbeat: %w", scrub(err, t.cfg))
		}
		return nil
	}
	if err := beat(ctx); err != nil { // served before Serve returns
		return nil, err
	}
	s.rt.Tick(heartbeatEvery, func(stop context.Context) {
		ctx, cancel := context.WithTimeout(stop, heartbeatEvery)
		defer cancel()
		if err := beat(ctx); err != nil && stop.Err() == nil {
			t.log.Debug("heartbeat failed", zap.String("error", err.Error()))
		}
	})
	s.onClose = append(s.onClose, func() {
		t.mu.Lock()
		delete(t.srvs, s)
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, key := range beats {
			_ = t.rdb.ZRem(ctx, key, member).Err()
		}
	})
	s.run()
	t.mu.Lock()
	t.srvs[s] = struct{}{}
	t.mu.Unlock()
	return s, nil
}

// answer handles one request entry and replies to it.
func (s *subscription) answer(ctx context.Context, e entry, h transport.RequestHandler) {
	t := s.t
	replyTo, _ := e.msg.Values[fieldReplyTo].(string)
	dlMs, _ := strconv.ParseInt(fmt.Sprint(e.msg.Values[fieldDeadline]), 10, 64)
	done := func() {
		sctx, cancel := settleCtx()
		defer cancel()
		pipe := t.rdb.Pipeline()
		pipe.XAck(sctx, e.src.stream, s.group, e.msg.ID)
		pipe.XDel(sctx, e.src.stream, e.msg.ID)
		_, _ = pipe.Exec(sctx)
	}
	deadline := time.UnixMilli(dlMs)
	if dlMs == 0 || time.Now().After(deadline) || replyTo == "" {
		done() // its caller has given up: nobody reads the answer
		return
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	env, err := envelopeOf(e.msg.Values)
	var rep *transport.Reply
	if err != nil {
		rep = transport.Failed(string(cqrs.CodeInvalid), fmt.Sprintf("redismod: bad request: %v", err))
	} else {
		env.Attempt = e.attempt
		rep = h.HandleRequest(ctx, env)
	}
	if rep == nil {
		rep = transport.Failed(string(cqrs.CodeInternal), "redismod: handler gave no reply")
	}
	w := wireReply{ID: env.ID, ContentType: rep.ContentType, Payload: rep.Payload}
	if rep.Err != nil {
		w.Code, w.Message, w.Payload = cqrs.Code(rep.Err.Code), rep.Err.Message, nil
	}
	data, _ := json.Marshal(w)
	sctx, scancel := settleCtx()
	defer scancel()
	pipe := t.rdb.Pipeline()
	pipe.LPush(sctx, replyTo, data)
	pipe.PExpire(sctx, replyTo, t.cfg.ReplyTTL)
	if _, err := pipe.Exec(sctx); err != nil {
		t.log.Debug("reply not sent; the caller times out", zap.String("error", scrub(err, t.cfg).Error()))
	}
	done()
}

// Request implements transport.Transport.
func (t *Transport) Request(ctx context.Context, topic transport.Topic, env *transport.Envelope) (*transport.Reply, error) {
	if t.isClosed() {
		return nil, cqrs.ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.RequestTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	ch := t.await(env.ID)
	defer t.forget(env.ID)
	argv := append([]any{heartbeatTTL.Milliseconds()},
		fields(env, fieldReplyTo, t.k.replies(t.owner), fieldDeadline, strconv.FormatInt(dl.UnixMilli(), 10))...)
	err := requestIfServed.Run(ctx, t.rdb, []string{t.k.servers(topic), t.k.requests(topic)}, argv...).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("%w for %s: no instance serves it", cqrs.ErrNoHandler, topic)
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("redismod: %s: %w", topic, ctx.Err())
	case err != nil:
		return nil, t.requestFailed(topic, err)
	}
	select {
	case rep := <-ch:
		return rep, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("redismod: %s: %w", topic, ctx.Err())
	}
}

// requestFailed is the error of a request whose script failed, by what
// its error shows (see classify): not sent (no connection: refused, timed
// out, closed) is cqrs.ErrUnavailable, 503, as is Redis answering it is
// not ready (LOADING, ...); written with no reply back is
// cqrs.ErrOutcomeUnknown, 504: a handler may run it; another error reply
// is Redis refusing the script, as it is.
func (t *Transport) requestFailed(topic transport.Topic, err error) error {
	switch o := classify(err, false); {
	case o == notSent, o == refused && notYet(err):
		return fmt.Errorf("redismod: request %s: not sent: %w: %w", topic, cqrs.ErrUnavailable, scrub(err, t.cfg))
	case o == unknown:
		return fmt.Errorf("redismod: request %s: %w: %w", topic, cqrs.ErrOutcomeUnknown, scrub(err, t.cfg))
	}
	return fmt.Errorf("redismod: request %s: %w", topic, scrub(err, t.cfg))
}

// await registers a waiter for the reply to id and starts the reply reader.
func (t *Transport) await(id string) chan *transport.Reply {
	ch := make(chan *transport.Reply, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waiting[id] = ch
	if !t.replyOn && !t.closed {
		t.replyOn = true
		t.wg.Add(1)
		go t.readReplies()
	}
	return ch
}

func (t *Transport) forget(id string) {
	t.mu.Lock()
	delete(t.waiting, id)
	t.mu.Unlock()
}

// readReplies hands each reply on this transport's list to its waiter.
func (t *Transport) readReplies() {
	defer t.wg.Done()
	key := t.k.replies(t.owner)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.stop
		cancel()
	}()
	for {
		res, err := t.rdb.BLPop(ctx, time.Second, key).Result()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			select {
			case <-t.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		var w wireReply
		if len(res) != 2 || json.Unmarshal([]byte(res[1]), &w) != nil {
			continue
		}
		t.mu.Lock()
		ch := t.waiting[w.ID]
		delete(t.waiting, w.ID)
		t.mu.Unlock()
		if ch == nil {
			continue // its request gave up: a late reply goes nowhere
		}
		rep := &transport.Reply{ContentType: w.ContentType, Payload: w.Payload}
		if w.Code != "" {
			rep = &transport.Reply{Err: &transport.Failure{Code: string(w.Code), Message: w.Message}}
		}
		ch <- rep
	}
}
