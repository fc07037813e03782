package consumer

import (
	"context"

	"github.com/catga-go/catga/cqrs/transport"
)

// Handlers is the context a subscription's handlers run in (cancellable,
// carrying the transport.WithDrain signal) and the wait of its Close, which lets
// handlers in flight finish until Close's context ends and then cancels
// theirs. Runtime uses it; a transport that runs handlers its own way (a
// request served in a client library's callback, the memory transport) uses
// it alone. Its zero value is not usable; make one with NewHandlers.
type Handlers struct {
	ctx   context.Context
	kill  context.CancelFunc
	drain func()
}

// NewHandlers returns a handler context with a drain signal, cancelled by
// Cancel.
func NewHandlers() Handlers {
	ctx, kill := context.WithCancel(context.Background())
	ctx, drain := transport.WithDrain(ctx)
	return Handlers{ctx: ctx, kill: kill, drain: drain}
}

// Context is the context to run handlers in.
func (h Handlers) Context() context.Context { return h.ctx }

// Drain tells behaviors that only wait (transport.Draining) that the
// subscription closes; handlers at work go on. Call it once the
// subscription takes no more messages.
func (h Handlers) Drain() { h.drain() }

// Cancel cancels the handlers' context.
func (h Handlers) Cancel() { h.kill() }

// Wait runs wait (which returns once the handlers in flight have) until
// ctx ends; then it cancels the handlers' context, lets wait return, and
// reports ctx's error. Either way the context is cancelled when Wait
// returns.
func (h Handlers) Wait(ctx context.Context, wait func()) error {
	defer h.kill()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.kill()
		<-done
		return ctx.Err()
	}
}
