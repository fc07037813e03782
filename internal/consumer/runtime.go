// Package consumer is the consumer side of a broker transport, which natsmod
// and redismod share: a bounded pool of workers fed by one fetch loop per
// source, the failing sources for readiness, the deliveries in flight and
// the extension of their leases, settle-once deliveries, and the order of
// Close (stop fetching, drain, wait for the handlers, then stop extending).
//
// A transport supplies what only its broker knows: a Source per stream or
// consumer (one round of fetching), and a Broker (settling a message and
// extending its lease). A message M is whatever the transport hands a
// worker: a JetStream message with its consumer, a stream entry with its
// stream.
//
// It imports cqrs for the Delivery it implements, so it sits on cqrs's
// floor (see ARCHITECTURE.md), below the transports.
package consumer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// Broker is what the runtime asks of a transport's broker. Ack, Nak and
// DeadLetter settle a message; the runtime calls at most one of them for a
// delivery, once.
type Broker[M any] interface {
	Ack(ctx context.Context, m M) error
	Nak(ctx context.Context, m M, delay time.Duration) error
	DeadLetter(ctx context.Context, m M, dl *transport.DeadLetter) error
	// Extend tells the broker that the handlers of ms are still at work, so
	// it does not give their messages to another consumer.
	Extend(ms []M)
}

// Source is one stream or consumer a subscription reads.
type Source interface {
	// Name names it in logs and readiness errors.
	Name() string
	// Fetch is one round: it takes what the broker has (waiting for it
	// within the broker's own bound) and hands each message to
	// Runtime.Start. It returns nil when the round ended with nothing
	// wrong, whether or not anything came; an error is retried with
	// backoff and marks the source failing until a round succeeds. ctx
	// ends when the subscription closes.
	Fetch(ctx context.Context) error
}

// Options configures a Runtime.
type Options[M any] struct {
	Name            string // the transport, in errors: "natsmod"
	Group, Instance string // in the dead letter of a message no handler can read
	Concurrency     int    // workers; transport.DefaultConcurrency when 0
	// Lease is how long the broker waits for a settle before it gives the
	// message to another consumer: a delivery running longer than a third
	// of it is extended that often. 0: never.
	Lease  time.Duration
	Broker Broker[M]
	// Handle is a worker's job: it runs m's delivery (Runtime.Deliver) or
	// whatever else m asks for, in ctx, the handlers' context.
	Handle func(ctx context.Context, m M)
	// Failing is told once when a source starts failing: log it.
	Failing func(src Source, err error)
}

// Runtime runs one subscription: its sources' fetch loops, its workers, its
// deliveries in flight. Make it with New, start it with Run, stop it with
// Close.
type Runtime[M any] struct {
	opt        Options[M]
	h          Handlers
	stopCtx    context.Context // ends at Close: the fetch loops stop
	stop       context.CancelFunc
	room       chan struct{} // a worker's room, held from Start until its job returns
	work       chan M        // unbuffered: a message handed over is started
	fetchers   sync.WaitGroup
	workers    sync.WaitGroup
	keepStop   chan struct{}
	keepWG     sync.WaitGroup
	once       sync.Once
	err        error
	errSettled error

	mu       sync.Mutex
	inflight map[*Delivery[M]]time.Time
	failing  map[Source]error
}

// New returns a runtime for o, not running yet.
func New[M any](o Options[M]) *Runtime[M] {
	if o.Concurrency <= 0 {
		o.Concurrency = transport.DefaultConcurrency
	}
	r := &Runtime[M]{
		opt: o, h: NewHandlers(), room: make(chan struct{}, o.Concurrency), work: make(chan M), keepStop: make(chan struct{}),
		errSettled: fmt.Errorf("%s: %w", o.Name, ErrSettled),
		inflight:   map[*Delivery[M]]time.Time{}, failing: map[Source]error{},
	}
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	return r
}

// Concurrency is the number of workers.
func (r *Runtime[M]) Concurrency() int { return cap(r.room) }

// Context is the handlers' context (see Handlers).
func (r *Runtime[M]) Context() context.Context { return r.h.Context() }

// Run starts the workers, a fetch loop per source and the lease extension.
// Call it once; what Go adds, add before Close.
func (r *Runtime[M]) Run(sources ...Source) {
	for range cap(r.room) {
		r.workers.Add(1)
		go r.worker()
	}
	for _, src := range sources {
		r.Go(func(context.Context) { r.fetch(src) })
	}
	if r.opt.Lease > 0 {
		r.keepWG.Add(1)
		go r.keepAlive(r.opt.Lease / 3)
	}
}

// Go runs f as one more fetch loop (a claimer, a heartbeat): ctx ends at
// Close, which waits for f to return before it drains. Call it before Close.
func (r *Runtime[M]) Go(f func(ctx context.Context)) {
	r.fetchers.Add(1)
	go func() {
		defer r.fetchers.Done()
		f(r.stopCtx)
	}()
}

// Tick runs f every d, as Go does, until Close.
func (r *Runtime[M]) Tick(d time.Duration, f func(ctx context.Context)) {
	r.Go(func(ctx context.Context) {
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f(ctx)
			}
		}
	})
}

// worker runs jobs until Close: a fixed pool, so a delivery starts no
// goroutine and handlers keep their grown stacks.
func (r *Runtime[M]) worker() {
	defer r.workers.Done()
	for m := range r.work {
		r.opt.Handle(r.h.Context(), m)
		<-r.room
	}
}

// Start hands m to a worker once one is free. It reports false, having
// handed nothing, when the subscription closes first: m was taken but not
// started, and the caller gives it back (or leaves it to be redelivered).
// Only a Source's Fetch and a Go func may call it.
func (r *Runtime[M]) Start(m M) bool {
	if r.Stopped() {
		return false
	}
	select {
	case r.room <- struct{}{}:
	case <-r.stopCtx.Done():
		return false
	}
	select {
	case r.work <- m:
		return true
	case <-r.stopCtx.Done():
		<-r.room
		return false
	}
}

// Room is how many workers are free now.
func (r *Runtime[M]) Room() int { return cap(r.room) - len(r.room) }

// WaitRoom waits until a worker is free and returns how many are (at
// least 1); false when the subscription closes first.
func (r *Runtime[M]) WaitRoom() (int, bool) {
	select {
	case r.room <- struct{}{}:
		<-r.room
	case <-r.stopCtx.Done():
		return 0, false
	}
	return max(r.Room(), 1), true
}

// Stopped reports whether Close has begun.
func (r *Runtime[M]) Stopped() bool { return r.stopCtx.Err() != nil }

// Close stops the fetch loops and waits for them, drains (behaviors that
// only wait give their messages back), lets handlers in flight finish until
// ctx ends, then cancels their context and stops extending leases. The
// drain comes after the fetch loops end, so a message given back is not
// taken again here. It reports ctx's error when handlers outlived it.
func (r *Runtime[M]) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.stop()
		r.fetchers.Wait()
		r.h.Drain()
		close(r.work)
		r.err = r.h.Wait(ctx, r.workers.Wait)
		close(r.keepStop)
		r.keepWG.Wait()
	})
	return r.err
}

// fetch runs src's rounds until Close, waiting after a failed one:
// 100 ms doubling to 5 s while it keeps failing.
func (r *Runtime[M]) fetch(src Source) {
	for fails := 0; !r.Stopped(); {
		err := src.Fetch(r.stopCtx)
		if r.Stopped() {
			return
		}
		r.setFailing(src, err)
		if err == nil {
			fails = 0
			continue
		}
		if !r.sleep(refetchWait(fails)) {
			return
		}
		fails++
	}
}

// refetchWait is the wait after n+1 failed rounds in a row.
func refetchWait(n int) time.Duration { return min(100*time.Millisecond<<min(n, 6), 5*time.Second) }

// sleep waits d unless Close begins first; it reports whether it slept the
// whole time.
func (r *Runtime[M]) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopCtx.Done():
		return false
	}
}

func (r *Runtime[M]) setFailing(src Source, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.failing, src)
		return
	}
	if _, was := r.failing[src]; !was && r.opt.Failing != nil {
		r.opt.Failing(src, err)
	}
	r.failing[src] = err
}

// Failing returns a source whose last round failed, with its error; nil
// when every source fetches.
func (r *Runtime[M]) Failing() (Source, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for src, err := range r.failing {
		return src, err
	}
	return nil, nil
}

// keepAlive extends, every period, the leases of deliveries whose
// handlers have run that long, so the broker does not give them to another
// consumer while they work. It runs until Close has waited for every
// handler.
func (r *Runtime[M]) keepAlive(every time.Duration) {
	defer r.keepWG.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.keepStop:
			return
		case <-tick.C:
		}
		if ms := r.running(every); len(ms) > 0 {
			r.opt.Broker.Extend(ms)
		}
	}
}

// running returns the messages of unsettled deliveries started at least
// olderThan ago.
func (r *Runtime[M]) running(olderThan time.Duration) []M {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []M
	now := time.Now()
	for d, since := range r.inflight {
		if now.Sub(since) >= olderThan && !d.settled.Load() {
			out = append(out, d.msg)
		}
	}
	return out
}

func (r *Runtime[M]) track(d *Delivery[M], on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.inflight[d] = time.Now()
	} else {
		delete(r.inflight, d)
	}
}
