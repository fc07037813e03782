package memory

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/consumer"
)

// Transport is one connection to a Broker.
type Transport struct {
	broker *Broker
	own    bool // New made the broker: Close closes it

	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

var (
	_ transport.Transport   = (*Transport)(nil)
	_ transport.DeadLetters = (*Transport)(nil)
	_ transport.Scheduler   = (*Transport)(nil)
)

// New returns a transport on a broker of its own.
func New(o Options) *Transport {
	t := NewTransport(NewBroker(o))
	t.own = true
	return t
}

// NewTransport returns a transport on a shared broker.
func NewTransport(b *Broker) *Transport {
	return &Transport{broker: b, subs: map[*subscription]struct{}{}}
}

// Broker returns the transport's broker.
func (t *Transport) Broker() *Broker { return t.broker }

// Close closes the transport's subscriptions (draining them until ctx ends)
// and, when New made its broker, the broker.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close(ctx))
	}
	if t.own {
		t.broker.Close()
	}
	return errors.Join(errs...)
}

func (t *Transport) track(s *subscription) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return cqrs.ErrClosed
	}
	t.subs[s] = struct{}{}
	return nil
}

func (t *Transport) untrack(s *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs, s)
}

// Publish implements transport.Transport: a copy of env goes to every group
// subscribed to topic; one whose DeliverAt is ahead is held until then (a
// timer heap) and goes to the groups subscribed at that time.
func (t *Transport) Publish(ctx context.Context, topic transport.Topic, env *transport.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if env.Scheduled() {
		return t.broker.schedule(topic, env)
	}
	qs, err := t.broker.groupsOf(topic)
	if err != nil {
		return err
	}
	for _, q := range qs {
		// Each group gets its own copy, as from a broker's store; the caller
		// may reuse env once Publish returns.
		if err := t.broker.enqueue(ctx, q, newItem(env)); err != nil {
			return err
		}
	}
	return nil
}

// Subscribe implements transport.Transport.
func (t *Transport) Subscribe(ctx context.Context, s transport.Subscription) (transport.Closer, error) {
	if err := validateSub(s.Group, s.Instance, len(s.Topics)); err != nil {
		return nil, err
	}
	sub := newSubscription(t, s.Concurrency)
	if err := t.track(sub); err != nil {
		return nil, err
	}
	sub.startWorkers()
	for _, th := range s.Topics {
		q := t.broker.queueFor(queueKey{topic: th.Topic, group: s.Group})
		sub.wg.Add(1)
		go sub.fetch(q, th.Handler)
	}
	return sub, nil
}

// Serve implements transport.Transport.
func (t *Transport) Serve(ctx context.Context, s transport.Responder) (transport.Closer, error) {
	if err := validateSub(s.Group, s.Instance, len(s.Endpoints)); err != nil {
		return nil, err
	}
	sub := newSubscription(t, s.Concurrency)
	if err := t.track(sub); err != nil {
		return nil, err
	}
	for _, ep := range s.Endpoints {
		srv := &server{sub: sub, h: ep.Handler}
		if err := t.broker.addServer(ep.Topic, s.Group, srv); err != nil {
			_ = sub.Close(ctx)
			return nil, err
		}
		topic := ep.Topic
		sub.onClose = append(sub.onClose, func() { t.broker.removeServer(topic, s.Group, srv) })
	}
	return sub, nil
}

func validateSub(group, instance string, n int) error {
	switch {
	case group == "":
		return errors.New("memory: subscription without a group")
	case instance == "":
		return errors.New("memory: subscription without an instance")
	case n == 0:
		return errors.New("memory: subscription without topics")
	}
	return nil
}

// Request implements transport.Transport: one instance of the first group
// serving topic answers, within ctx.
func (t *Transport) Request(ctx context.Context, topic transport.Topic, env *transport.Envelope) (*transport.Reply, error) {
	srv, err := t.broker.pickServer(topic)
	if err != nil {
		return nil, err
	}
	return srv.call(ctx, env.Clone())
}

// ListDeadLetters implements transport.DeadLetters.
func (t *Transport) ListDeadLetters(ctx context.Context, service string, limit int) ([]transport.DeadLetter, error) {
	return t.broker.ListDeadLetters(ctx, service, limit)
}

// GetDeadLetter implements transport.DeadLetters.
func (t *Transport) GetDeadLetter(ctx context.Context, id string) (transport.DeadLetter, error) {
	return t.broker.GetDeadLetter(ctx, id)
}

// ReplayDeadLetter implements transport.DeadLetters.
func (t *Transport) ReplayDeadLetter(ctx context.Context, id string) error {
	return t.broker.ReplayDeadLetter(ctx, id)
}

// subscription is a running Subscribe or Serve: its fetchers, its pool of
// workers (a delivery starts no goroutine, so a handler's grown stack is
// kept), and the requests it answers.
type subscription struct {
	t       *Transport
	h       consumer.Handlers // the handlers' context, its drain and Close's wait
	stop    chan struct{}
	sem     chan struct{} // requests in flight
	work    chan task
	wg      sync.WaitGroup // fetchers and requests
	workers sync.WaitGroup
	started sync.Once
	once    sync.Once
	onClose []func()
	conc    int
}

// task is one delivery for a worker.
type task struct {
	q  *queue
	it *item
	h  transport.DeliveryHandler
}

func newSubscription(t *Transport, concurrency int) *subscription {
	if concurrency <= 0 {
		concurrency = transport.DefaultConcurrency
	}
	return &subscription{t: t, h: consumer.NewHandlers(), stop: make(chan struct{}), sem: make(chan struct{}, concurrency),
		work: make(chan task), conc: concurrency}
}

// startWorkers starts the pool, once, for a Subscribe.
func (s *subscription) startWorkers() {
	s.started.Do(func() {
		for range s.conc {
			s.workers.Add(1)
			go func() {
				defer s.workers.Done()
				for t := range s.work {
					if s.stopped() { // taken but not started: a closing subscription takes nothing more
						s.giveBack(t.q, t.it)
						continue
					}
					s.deliver(t.q, t.it, t.h)
				}
			}()
		}
	})
}

// Close implements transport.Closer.
func (s *subscription) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		for _, f := range s.onClose {
			f()
		}
		close(s.stop)
		s.h.Drain() // after stop: a message given back is not taken again here
		err = s.h.Wait(ctx, func() {
			s.wg.Wait() // fetchers and requests
			close(s.work)
			s.workers.Wait()
		})
		s.t.untrack(s)
	})
	return err
}

// fetch takes messages off q for the workers: only as many as a worker
// is ready to take.
func (s *subscription) fetch(q *queue, h transport.DeliveryHandler) {
	defer s.wg.Done()
	for {
		it, ok := q.pop()
		if !ok {
			select {
			case <-s.stop:
				return
			case <-q.ready:
			}
			continue
		}
		if s.stopped() { // both were ready: stopping wins
			s.giveBack(q, it)
			return
		}
		select {
		case s.work <- task{q: q, it: it, h: h}:
		case <-s.stop:
			s.giveBack(q, it)
			return
		}
	}
}

func (s *subscription) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// giveBack puts a message taken but not started back on its queue, for
// another instance of the group (or this one reopened); not an attempt.
func (s *subscription) giveBack(q *queue, it *item) {
	if !q.push(it) {
		_ = s.t.broker.redeliver(q, it, 0)
	}
}

func (s *subscription) deliver(q *queue, it *item, h transport.DeliveryHandler) {
	d := &it.first
	if it.firstUsed {
		d = &delivery{}
	}
	it.firstUsed = true
	d.b, d.q, d.it, d.env = s.t.broker, q, it, it.env // each delivery sees its own headers
	d.env.Attempt = it.attempt
	h.HandleDelivery(s.h.Context(), d)
	if d.settled.CompareAndSwap(false, true) {
		// An unsettled delivery is not lost: it comes back, as an unacked
		// message does after the ack wait.
		it.attempt++
		_ = s.t.broker.redeliver(q, it, 0)
	}
}

type delivery struct {
	b       *Broker
	q       *queue
	it      *item
	env     transport.Envelope // its own copy, in the one allocation
	settled atomic.Bool
}

func (d *delivery) Envelope() *transport.Envelope { return &d.env }

func (d *delivery) Ack(context.Context) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	return nil
}

func (d *delivery) Nak(_ context.Context, delay time.Duration) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	d.it.attempt++
	return d.b.redeliver(d.q, d.it, delay)
}

func (d *delivery) DeadLetter(_ context.Context, dl *transport.DeadLetter) error {
	if !d.settled.CompareAndSwap(false, true) {
		return errSettled
	}
	return d.b.addDeadLetter(dl)
}

// System names the transport in telemetry (messaging.system).
func (t *Transport) System() string { return "memory" }
