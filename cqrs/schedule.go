package cqrs

import (
	"context"
	"fmt"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// PublishAt publishes event to be delivered at at, not before: it returns
// once the transport has stored it (as Publish does), with the message's
// id, which Cancel takes. Every group subscribed to the event gets it once,
// as any other event; a time already past delivers it at once. Inside a
// transaction's outbox it is written there, and the relay schedules it
// after commit, so a flow's state and its timeout are stored together.
//
// It needs a transport that schedules (transport.Scheduler: the memory
// transport, natsmod, redismod); otherwise it fails with
// ErrSchedulingUnsupported. How late a message may arrive is the
// transport's (each package's doc states and measures it).
func (b *Bus) PublishAt(ctx context.Context, at time.Time, event any) (string, error) {
	if err := b.schedulable("PublishAt", at); err != nil {
		return "", err
	}
	key := keyOf(event)
	if rt, ok := b.reg.routes[key]; ok && rt.topic().Kind != transport.KindEvent {
		return "", fmt.Errorf("cqrs: %v is a %s, not an event", rt.goType(), rt.topic().Kind)
	}
	return b.enqueue(ctx, transport.KindEvent, key, event, at)
}

// DispatchAt dispatches command cmd as durable work to be done at at, not
// before, with PublishAt's meaning: one instance of the owning service
// handles it, at least once; the id it returns is Cancel's.
func (b *Bus) DispatchAt(ctx context.Context, at time.Time, cmd any) (string, error) {
	if err := b.schedulable("DispatchAt", at); err != nil {
		return "", err
	}
	key := keyOf(cmd)
	if rt, ok := b.reg.routes[key]; ok && rt.topic().Kind != transport.KindCommand {
		return "", fmt.Errorf("cqrs: %v is a %s, not a command", rt.goType(), rt.topic().Kind)
	}
	return b.enqueue(ctx, transport.KindCommand, key, cmd, at)
}

// Cancel removes the message PublishAt or DispatchAt scheduled with id
// before it is delivered. It fails with ErrNotScheduled when none waits
// under id (never scheduled, cancelled already, or delivered). A message
// whose time came while Cancel ran may still be delivered: a handler that
// must not act on a cancelled timeout checks its own state too.
//
// Cancel acts on the broker at once; it is no part of a transaction. One
// scheduled inside a transaction is not there until the relay has
// scheduled it (Cancel before that finds nothing, and the message goes),
// and a Cancel inside a transaction is not undone if it rolls back. In a
// flow, let the timeout's step read the state instead (package flow).
func (b *Bus) Cancel(ctx context.Context, id string) error {
	s, err := b.scheduler("Cancel")
	if err != nil {
		return err
	}
	if !validID(id) {
		return fmt.Errorf("cqrs: Cancel: %q is not a message id (1-64 of A-Z, a-z, 0-9, - and _)", id)
	}
	ok, err := s.Cancel(ctx, id)
	switch {
	case err != nil:
		return fmt.Errorf("cqrs: cancel %s: %w", id, err)
	case !ok:
		return fmt.Errorf("%w: %s", ErrNotScheduled, id)
	}
	return nil
}

func (b *Bus) scheduler(op string) (transport.Scheduler, error) {
	if b.transport == nil {
		return nil, fmt.Errorf("%w: %s needs a transport, and the bus has none", ErrSchedulingUnsupported, op)
	}
	s, ok := b.transport.(transport.Scheduler)
	if !ok {
		return nil, fmt.Errorf("%w: %s: the transport %T does not schedule messages", ErrSchedulingUnsupported, op, b.transport)
	}
	return s, nil
}

func (b *Bus) schedulable(op string, at time.Time) error {
	s, err := b.scheduler(op)
	if err != nil {
		return err
	}
	if l, ok := s.(transport.ScheduleLimiter); ok {
		if max := l.MaxScheduleAhead(); max > 0 && time.Until(at) > max {
			return Permanent(fmt.Errorf("cqrs: %s: %v is %v ahead, beyond the %v the transport holds a scheduled message", op, at, time.Until(at).Round(time.Second), max))
		}
	}
	if at.IsZero() {
		return fmt.Errorf("cqrs: %s: the zero time is no time to deliver at (give time.Now().Add(d))", op)
	}
	if y := at.UTC().Year(); y > 9999 {
		return fmt.Errorf("cqrs: %s: %v is after year 9999", op, at)
	}
	return nil
}

// validID reports whether id can be a message id: what NewID makes, or
// what a transport can use in a subject or key as it is.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
