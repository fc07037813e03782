// Package lazyctx is a context deadline whose timer is made only when it
// is needed.
//
// context.WithTimeout costs a context, a timer and, under a cancellable
// parent, a place in the parent's children: about seven allocations each
// time, measured on the HTTP create-order path, where every request and
// every handler run set one and almost none waited on it. A Bound keeps
// only the time; the context.WithDeadline it stands for is made on the
// first Done, or once the deadline has passed, and from then on every
// method reads through it. So a caller that never waits pays one mutex
// and no timer, and one that waits gets exactly what context.WithDeadline
// gives (Err, Done, context.Cause and the cancellation of derived contexts
// included).
//
// Hand-written rather than a library: it is the standard library's own
// context, deferred; no maintained package does that.
package lazyctx

import (
	"context"
	"sync"
	"time"
)

// Bound is a deadline to put on a parent context, lazily. Its zero value
// is no bound. It is safe for concurrent use.
type Bound struct {
	mu       sync.Mutex
	at       time.Time       // zero: no bound
	canceled bool            // Cancel was called
	ctx      context.Context // context.WithDeadline(parent, at), once made
	cancel   context.CancelFunc
}

// Set bounds at at, unless a bound is set already (it reports false then:
// a second bound nests as a context of its own).
func (b *Bound) Set(at time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.at.IsZero() {
		return false
	}
	b.at = at
	return true
}

// Cancel ends the bounded context, as a WithDeadline's cancel does: it is
// done, its error context.Canceled (unless it ended before).
func (b *Bound) Cancel() {
	b.mu.Lock()
	b.canceled = true
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Deadline is the bound's time; zero without one.
func (b *Bound) Deadline() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.at
}

// Context is the bounded context of parent, made when need (someone waits
// on it) or once the bound has passed; nil without a bound, before either,
// and after a Cancel that came first (Ended says so: nothing is made for
// a context that ended unobserved).
func (b *Bound) Context(parent context.Context, need bool) context.Context {
	ctx, _ := b.state(parent, need)
	return ctx
}

// Ended reports whether Cancel was called.
func (b *Bound) Ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.canceled
}

// state is Context and Ended under one lock: each method of Ctx, on every
// call of a handler's context, takes it once.
func (b *Bound) state(parent context.Context, need bool) (context.Context, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil && !b.at.IsZero() && !b.canceled && (need || !time.Now().Before(b.at)) {
		b.ctx, b.cancel = context.WithDeadline(parent, b.at)
	}
	return b.ctx, b.canceled
}

// ended is the context a Cancel left when nobody had asked for Done: made
// now, canceled at once, for a caller that needs the real thing (a
// context derived from it, context.Cause).
func (b *Bound) ended(parent context.Context) context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil {
		b.ctx, b.cancel = context.WithDeadline(parent, b.at)
		b.cancel()
	}
	return b.ctx
}

// closed is the Done of a context that ended before anyone asked for it.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Ctx is Parent bounded by Bound, lazily: what WithDeadline returns, and
// a struct to embed in a type that is a context (it then needs no
// allocation of its own).
type Ctx struct {
	Parent context.Context
	Bound  Bound
}

// WithDeadline is context.WithDeadline(parent, at) with its timer made
// lazily. Call Cancel when the work is done, as with a CancelFunc.
func WithDeadline(parent context.Context, at time.Time) *Ctx {
	c := &Ctx{Parent: parent}
	c.Bound.at = at
	return c
}

// Cancel ends c and stops its timer.
func (c *Ctx) Cancel() { c.Bound.Cancel() }

// Deadline is the earlier of the parent's and c's own.
func (c *Ctx) Deadline() (time.Time, bool) {
	at := c.Bound.Deadline()
	pd, ok := c.Parent.Deadline()
	if at.IsZero() || ok && pd.Before(at) {
		return pd, ok
	}
	return at, true
}

// Done makes the bounded context. Once c ended unobserved it is a closed
// channel, the same every time.
func (c *Ctx) Done() <-chan struct{} {
	switch ctx, ended := c.Bound.state(c.Parent, true); {
	case ctx != nil:
		return ctx.Done()
	case ended:
		return closed
	}
	return c.Parent.Done() // no bound
}

// Err is nil until the deadline passes, c is canceled or its parent ends.
func (c *Ctx) Err() error {
	ctx, ended := c.Bound.state(c.Parent, false)
	if ctx != nil {
		return ctx.Err()
	}
	if err := c.Parent.Err(); err != nil || !ended {
		return err
	}
	return context.Canceled
}

// Value reads through the bounded context once it is made, so a context
// derived from c finds the cancellation it hangs on (and context.Cause
// the cause). After c ended unobserved, a value that is itself a context
// (what context.Cause and a derived context look up) is looked up in the
// ended context, made for it; others read the parent's at no cost.
func (c *Ctx) Value(key any) any {
	ctx, ended := c.Bound.state(c.Parent, false)
	if ctx != nil {
		return ctx.Value(key)
	}
	v := c.Parent.Value(key)
	if _, isCtx := v.(context.Context); isCtx && ended {
		return c.Bound.ended(c.Parent).Value(key)
	}
	return v
}

var _ context.Context = (*Ctx)(nil)
