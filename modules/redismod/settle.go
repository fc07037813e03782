package redismod

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs/transport"
)

func settleCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// ackReq is one entry to acknowledge (and delete, for replays).
type ackReq struct {
	stream, id string
	del        bool
}

// Ack implements consumer.Broker with XACK (and XDEL for replays, which no
// other group reads), queued for the acker.
func (s *subscription) Ack(_ context.Context, e entry) error {
	s.acks <- ackReq{stream: e.src.stream, id: e.msg.ID, del: strings.Contains(e.src.stream, "replay:")}
	return nil
}

// acker acknowledges in batches: whatever is queued goes out as one XACK
// per stream, pipelined, instead of a round trip per message. An ack is
// fire-and-forget, as on NATS: one lost with a crash is a redelivery the
// inbox absorbs. It drains the queue when the subscription closes.
func (s *subscription) acker() {
	defer s.ackWG.Done()
	for first := range s.acks {
		acks, dels := map[string][]string{}, map[string][]string{}
		add := func(a ackReq) {
			acks[a.stream] = append(acks[a.stream], a.id)
			if a.del {
				dels[a.stream] = append(dels[a.stream], a.id)
			}
		}
		add(first)
	more:
		for n := 1; n < 1000; n++ {
			select {
			case a, ok := <-s.acks:
				if !ok {
					break more
				}
				add(a)
			default:
				break more
			}
		}
		s.flushAcks(acks, dels)
	}
}

// flushAcks sends one batch of the acker's in one pipeline.
func (s *subscription) flushAcks(acks, dels map[string][]string) {
	ctx, cancel := settleCtx()
	defer cancel()
	pipe := s.t.rdb.Pipeline()
	for stream, ids := range acks {
		pipe.XAck(ctx, stream, s.group, ids...)
	}
	for stream, ids := range dels {
		pipe.XDel(ctx, stream, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.t.log.Debug("XACK failed; the entries will be claimed again", zap.String("group", s.group), zap.String("error", scrub(err, s.t.cfg).Error()))
	}
}

// Nak implements consumer.Broker: the entry stays pending, its idle time
// set so that an XCLAIM with REDIS_CLAIM_IDLE (of any instance) takes it
// again after delay, and it joins the group's due set at that time, where
// every instance's claimDue looks (one pipeline, one round trip).
func (s *subscription) Nak(_ context.Context, e entry, delay time.Duration) error {
	ctx, cancel := settleCtx()
	defer cancel()
	now := time.Now()
	idleFrom := now.Add(delay - s.t.cfg.ClaimIdle)
	pipe := s.t.rdb.Pipeline()
	pipe.Do(ctx, "XCLAIM", e.src.stream, s.group, s.consumer, 0, e.msg.ID, "TIME", msTime(idleFrom), "JUSTID")
	pipe.ZAdd(ctx, s.t.k.due(s.group), redis.Z{Score: float64(now.Add(delay).UnixMilli()), Member: dueMember(e.src.stream, e.msg.ID)})
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redismod: nak %s: %w", e.src.stream, err)
	}
	s.dueLook.Busy()
	return nil
}

// DeadLetter implements consumer.Broker: the record goes to the dead-letter
// stream, then the entry is acked. If storing fails the entry stays pending
// and comes back.
func (s *subscription) DeadLetter(ctx context.Context, e entry, dl *transport.DeadLetter) error {
	if err := s.t.storeDeadLetter(dl); err != nil {
		_ = s.Nak(ctx, e, time.Second)
		return err
	}
	return s.Ack(ctx, e)
}

// Extend implements consumer.Broker: it resets the idle time of entries
// whose handlers run long, one XCLAIM a stream, so no other consumer takes
// them over.
func (s *subscription) Extend(es []entry) {
	byStream := map[string][]string{}
	for _, e := range es {
		byStream[e.src.stream] = append(byStream[e.src.stream], e.msg.ID)
	}
	for stream, ids := range byStream {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.t.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: stream, Group: s.group, Consumer: s.consumer, Messages: ids}).Err()
		cancel()
	}
}
