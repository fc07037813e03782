package transport

import (
	"context"
	"errors"
	"sync"
)

// ErrDraining is returned by a behavior that gave a delivery back because its
// subscription is closing: the message was not handled here, and the bus
// returns it to the broker (a Nak without delay, never a dead letter) for
// another instance, or this one after a restart.
var ErrDraining = errors.New("cqrs: subscription closing; message given back")

type drainKey struct{}

type drainSignal struct {
	once sync.Once
	ch   chan struct{}
}

// WithDrain returns a copy of parent that Draining reports on, and drain,
// which closes that signal (once; later calls do nothing). A transport gives
// its handlers such a context and calls drain as Close begins: handlers that
// are working go on and settle, while a behavior that is only waiting (the
// Idempotency behavior waiting for another instance's run) stops waiting and
// returns ErrDraining, so a shutdown is never held by someone else's lease.
func WithDrain(parent context.Context) (ctx context.Context, drain func()) {
	s := &drainSignal{ch: make(chan struct{})}
	return context.WithValue(parent, drainKey{}, s), func() { s.once.Do(func() { close(s.ch) }) }
}

// Draining returns a channel closed once drain of the WithDrain context
// behind ctx was called; nil, which never becomes ready, when there is none.
func Draining(ctx context.Context) <-chan struct{} {
	if s, ok := ctx.Value(drainKey{}).(*drainSignal); ok {
		return s.ch
	}
	return nil
}
