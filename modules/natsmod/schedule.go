package natsmod

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Scheduled messages (transport.Scheduler).
//
// On a server that schedules messages (2.12 and later) the server does it:
// a scheduled message is published to <prefix>.schedules.<kind>.<id> in
// its kind's stream with Nats-Schedule "@at <time>" and
// Nats-Schedule-Target its topic's subject; when due, the server publishes
// it to the target and purges the schedule. The server fires a schedule no
// earlier than its time and then waits at least 250 ms before it fires the
// next, so a message is late by up to about a quarter second. The stream
// keeps the schedule as any message, so one due further ahead than
// NATS_STREAM_MAX_AGE is refused at Publish (0: no limit).
//
// On an older server, or with NATS_SCHEDULES=stream (the fallback), a scheduled message goes to the
// <stream prefix>_SCHEDULES stream (a work queue with no age limit), on
// <prefix>.scheduled.<id>, with its target in a header. Every started
// transport consumes it through one durable consumer they share
// (catga_scheduler, no limit on acks pending, so a message due soon is
// never stuck behind many due later): a message not due yet is given back
// with a nak delayed until its time, and one that is due is published to
// its target with Nats-Msg-Id its id, then acknowledged; a scheduler that
// dies between the two leaves it to be redelivered after NATS_ACK_WAIT
// and published again, which the target stream's duplicate window drops.
// The server redelivers a delayed nak on time, so a message is late by
// milliseconds. A server upgraded to 2.12 keeps draining the fallback
// stream while one exists.
//
// Cancel deletes the schedule's message (the last on its subject), where
// either way may hold it. The fallback compares the due time with the
// clock of the instance that fires it: keep the instances' clocks in step
// (NTP), or a fast one fires early by its lead.

const (
	headerSchedule       = "Nats-Schedule"
	headerScheduleTarget = "Nats-Schedule-Target"
	headerTarget         = "Catga-Target" // the fallback's target subject
	schedulerConsumer    = "catga_scheduler"
)

// schedulesNative reports whether the server nc is connected to schedules
// messages itself (2.12 and later), unless NATS_SCHEDULES is "stream".
func (t *Transport) schedulesNative(nc *nats.Conn) bool {
	if t.cfg.Schedules == "stream" {
		return false
	}
	major, minor, ok := serverVersion(nc.ConnectedServerVersion())
	return ok && (major > 2 || major == 2 && minor >= 12)
}

// scheduledMessage is env, whose DeliverAt is ahead, as the message that
// holds it until then.
func (t *Transport) scheduledMessage(topic transport.Topic, env *transport.Envelope) (*nats.Msg, error) {
	h := headersOf(env)
	h[transport.HeaderID] = []string{env.ID} // the server drops Nats-Msg-Id when it fires
	target := t.subject(topic)
	if !t.native.Load() {
		h[headerTarget] = []string{target}
		return &nats.Msg{Subject: t.cfg.Prefix + ".scheduled." + env.ID, Header: h, Data: env.Payload}, nil
	}
	if in := time.Until(env.DeliverAt); t.cfg.MaxAge > 0 && in > t.cfg.MaxAge {
		return nil, cqrs.Permanent(fmt.Errorf("natsmod: %s %s is due in %v, beyond NATS_STREAM_MAX_AGE (%v), after which the stream drops it", topic, env.ID, in.Round(time.Second), t.cfg.MaxAge))
	}
	h[headerSchedule] = []string{"@at " + env.DeliverAt.UTC().Format(time.RFC3339Nano)}
	h[headerScheduleTarget] = []string{target}
	return &nats.Msg{Subject: t.cfg.Prefix + ".schedules." + topic.Kind.Plural() + "." + env.ID, Header: h, Data: env.Payload}, nil
}

// MaxScheduleAhead implements transport.ScheduleLimiter: on the server's
// scheduling, the stream keeps a schedule for NATS_STREAM_MAX_AGE; the
// fallback stream has no limit.
func (t *Transport) MaxScheduleAhead() time.Duration {
	if t.native.Load() {
		return t.cfg.MaxAge
	}
	return 0
}

// Cancel implements transport.Scheduler.
func (t *Transport) Cancel(ctx context.Context, id string) (bool, error) {
	_, js, err := t.conn()
	if err != nil {
		return false, err
	}
	type place struct{ stream, subject string }
	var places []place
	if t.native.Load() {
		places = append(places,
			place{t.cfg.eventsStream(), t.cfg.Prefix + ".schedules.events." + id},
			place{t.cfg.commandsStream(), t.cfg.Prefix + ".schedules.commands." + id})
	}
	if t.fallback.Load() != nil || !t.native.Load() {
		places = append(places, place{t.cfg.schedulesStream(), t.cfg.Prefix + ".scheduled." + id})
	}
	for _, p := range places {
		s, err := js.Stream(ctx, p.stream)
		if err != nil {
			return false, fmt.Errorf("natsmod: cancel %s: stream %s: %w", id, p.stream, err)
		}
		m, err := s.GetLastMsgForSubject(ctx, p.subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("natsmod: cancel %s: %w", id, err)
		}
		switch err := s.DeleteMsg(ctx, m.Sequence); {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue // fired (or cancelled) meanwhile
		case err != nil:
			return false, fmt.Errorf("natsmod: cancel %s: %w", id, err)
		}
		return true, nil
	}
	return false, nil
}

// startFallback starts the fallback's scheduler on js: on a server that
// does not schedule, or one that does while the fallback stream exists.
func (t *Transport) startFallback(ctx context.Context, js jetstream.JetStream) error {
	if t.native.Load() {
		if _, err := js.Stream(ctx, t.cfg.schedulesStream()); errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("natsmod: look up stream %s: %w", t.cfg.schedulesStream(), err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, t.cfg.schedulesStream(), jetstream.ConsumerConfig{
		Durable: schedulerConsumer, Description: "catga: fires scheduled messages (servers before 2.12)",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: t.cfg.AckWait, MaxDeliver: -1, MaxAckPending: -1,
	})
	if err != nil {
		return fmt.Errorf("natsmod: scheduler consumer on %s: %w", t.cfg.schedulesStream(), err)
	}
	// The messages due are published by a few workers, so that many due
	// at once are not one round trip after another.
	// A message handed to no worker when the scheduler stops stays
	// unacknowledged and comes back after NATS_ACK_WAIT.
	f := &fallback{due: make(chan jetstream.Msg), stop: make(chan struct{})}
	for range fireWorkers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				select {
				case m := <-f.due:
					t.fire(js, m)
				case <-f.stop:
					return
				}
			}
		}()
	}
	f.cc, err = cons.Consume(func(m jetstream.Msg) {
		if t.wait(m) {
			select {
			case f.due <- m:
			case <-f.stop:
			}
		}
	}, jetstream.PullMaxMessages(t.cfg.FetchBatch))
	if err != nil {
		close(f.stop)
		f.wg.Wait()
		return fmt.Errorf("natsmod: scheduler on %s: %w", t.cfg.schedulesStream(), err)
	}
	t.fallback.Store(f)
	return nil
}

// fireWorkers is how many due messages of the fallback are published at once.
const fireWorkers = 8

// fallback is the running scheduler of the fallback stream.
type fallback struct {
	cc   jetstream.ConsumeContext
	due  chan jetstream.Msg
	stop chan struct{}  // closed by stopFallback: the callback and the workers give up
	wg   sync.WaitGroup // the workers
}

// stopFallback stops the fallback's scheduler, if it runs, and waits for
// its workers (a fire in progress ends within its publish timeout).
func (t *Transport) stopFallback() {
	if f := t.fallback.Swap(nil); f != nil {
		close(f.stop) // first: a callback blocked handing a message over returns
		f.cc.Stop()
		<-f.cc.Closed()
		f.wg.Wait()
	}
}

// wait reports whether m, a message of the fallback stream, is due; one
// that is not comes back at its time, one that cannot be read in an hour.
func (t *Transport) wait(m jetstream.Msg) bool {
	h := m.Headers()
	at, err := time.Parse(time.RFC3339Nano, h.Get(transport.HeaderDeliverAt))
	if err != nil || h.Get(headerTarget) == "" {
		// Only a transport writes here; a message without its time or
		// target cannot be delivered anywhere, so it is kept and logged.
		t.log.Error("scheduled message without its time or target; left in the stream", zap.String("subject", m.Subject()),
			zap.String("deliver_at", h.Get(transport.HeaderDeliverAt)), zap.String("target", h.Get(headerTarget)))
		_ = m.NakWithDelay(time.Hour)
		return false
	}
	if wait := time.Until(at); wait > 0 {
		_ = m.NakWithDelay(wait)
		return false
	}
	return true
}

// fire publishes m, a due message of the fallback stream, to its target
// and acknowledges it.
func (t *Transport) fire(js jetstream.JetStream, m jetstream.Msg) {
	h := m.Headers()
	target := h.Get(headerTarget)
	out := &nats.Msg{Subject: target, Header: nats.Header{}, Data: m.Data()}
	for k, v := range h {
		if k != headerTarget {
			out.Header[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, out); err != nil {
		t.log.Warn("scheduled message not published; trying again", zap.String("subject", target), zap.String("error", errText(err, t.cfg)))
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}
