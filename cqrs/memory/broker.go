package memory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Options tune a Broker. The zero value works.
type Options struct {
	QueueSize      int // messages per group queue; default 65536
	MaxDeadLetters int // dead letters kept; default 100000
}

// Broker is the in-process message store that Transports share.
type Broker struct {
	opts Options

	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	queues  map[queueKey]*queue
	byTopic map[transport.Topic][]*queue // the queues of each topic, for a publish
	servers map[transport.Topic]map[string]*serverGroup
	timers  map[*time.Timer]struct{}
	sched   timerHeap             // scheduled messages, earliest first
	byID    map[string]*scheduled // the same by id; nil until the first
	wake    chan struct{}         // the earliest changed: fire looks again
	dead    []transport.DeadLetter
	dropped int
	nextDL  atomic.Uint64
	wg      sync.WaitGroup // redelivery timers in flight, and fire
}

type queueKey struct {
	topic transport.Topic
	group string
}

// queue is a group's FIFO of one topic, shared by the group's instances.
// It grows as messages wait, up to its limit, rather than holding a buffer
// of the limit's size from the start (a channel of 65,536 items is 512 KiB
// per topic and group, waiting or not).
type queue struct {
	key   queueKey
	limit int
	mu    sync.Mutex
	items []*item
	head  int           // items[head:] wait
	ready chan struct{} // a token when items wait: a fetcher wakes
	room  chan struct{} // a token when one was taken: a full enqueue retries
}

func newQueue(k queueKey, limit int) *queue {
	return &queue{key: k, limit: limit, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push adds it unless the queue is full.
func (q *queue) push(it *item) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items)-q.head >= q.limit {
		return false
	}
	q.items = append(q.items, it)
	signal(q.ready)
	return true
}

// pop takes the oldest item, if any.
func (q *queue) pop() (*item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return nil, false
	}
	it := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items): // empty: start over, keeping the array
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && q.head >= len(q.items)/2: // mostly taken: move the rest down
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	if q.head < len(q.items) {
		signal(q.ready) // more wait: wake another fetcher too
	}
	signal(q.room)
	return it, true
}

type item struct {
	env     transport.Envelope // the queue's own copy
	attempt int
	// first is the item's first delivery, made with it: most messages are
	// delivered once, and then cost no allocation of their own. A later
	// delivery (a redelivery, or one after a give-back) is a new one, so a
	// handler that kept an old one settles nothing new with it.
	first     delivery
	firstUsed bool
}

// newItem is a first delivery of a copy of env that shares nothing mutable
// with it, in two allocations (the item, the payload).
func newItem(env *transport.Envelope) *item {
	it := &item{env: *env, attempt: 1}
	it.env.Payload = append([]byte(nil), env.Payload...)
	return it
}

// NewBroker returns an empty broker.
func NewBroker(o Options) *Broker {
	if o.QueueSize <= 0 {
		o.QueueSize = 1 << 16
	}
	if o.MaxDeadLetters <= 0 {
		o.MaxDeadLetters = 100_000
	}
	return &Broker{
		opts:    o,
		done:    make(chan struct{}),
		queues:  map[queueKey]*queue{},
		byTopic: map[transport.Topic][]*queue{},
		servers: map[transport.Topic]map[string]*serverGroup{},
		timers:  map[*time.Timer]struct{}{},
	}
}

// Close stops the broker: pending redeliveries are dropped and publishers
// waiting for room fail. Close the transports' subscriptions first.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.done)
	for t := range b.timers {
		if t.Stop() {
			b.wg.Done()
		}
	}
	b.timers = nil
	b.mu.Unlock()
	b.wg.Wait()
}

// queueFor returns the queue of a group on a topic, creating it.
func (b *Broker) queueFor(k queueKey) *queue {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[k]
	if !ok {
		q = newQueue(k, b.opts.QueueSize)
		b.queues[k] = q
		b.byTopic[k.topic] = append(b.byTopic[k.topic], q)
	}
	return q
}

// groupsOf returns the queues subscribed to topic.
func (b *Broker) groupsOf(t transport.Topic) ([]*queue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, cqrs.ErrClosed
	}
	return b.byTopic[t], nil // only ever appended to: a caller's view stays whole
}

// enqueue puts it on q, waiting for room until ctx ends.
func (b *Broker) enqueue(ctx context.Context, q *queue, it *item) error {
	for !q.push(it) {
		select {
		case <-q.room:
		case <-ctx.Done():
			return fmt.Errorf("memory: %s queue of %s is full (%d): %w", q.key.topic, q.key.group, q.limit, ctx.Err())
		case <-b.done:
			return cqrs.ErrClosed
		}
	}
	return nil
}

// redeliver puts it back on q after delay.
func (b *Broker) redeliver(q *queue, it *item, delay time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return cqrs.ErrClosed
	}
	b.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		defer b.wg.Done()
		b.mu.Lock()
		delete(b.timers, t)
		b.mu.Unlock()
		_ = b.enqueue(context.Background(), q, it) // fails only when the broker closes
	})
	b.timers[t] = struct{}{}
	return nil
}

func (b *Broker) addDeadLetter(dl *transport.DeadLetter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return cqrs.ErrClosed
	}
	dl.ID = fmt.Sprintf("dl-%d", b.nextDL.Add(1))
	if len(b.dead) >= b.opts.MaxDeadLetters {
		b.dead = b.dead[1:]
		b.dropped++
	}
	b.dead = append(b.dead, *dl)
	return nil
}

// DroppedDeadLetters returns how many dead letters were dropped to keep the
// list within Options.MaxDeadLetters.
func (b *Broker) DroppedDeadLetters() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// ListDeadLetters implements transport.DeadLetters.
func (b *Broker) ListDeadLetters(_ context.Context, service string, limit int) ([]transport.DeadLetter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []transport.DeadLetter
	for _, dl := range b.dead {
		if service != "" && dl.Service != service {
			continue
		}
		if limit > 0 && len(out) >= limit {
			break
		}
		dl.Envelope.Payload = append([]byte(nil), dl.Envelope.Payload...)
		out = append(out, dl)
	}
	return out, nil
}

// GetDeadLetter implements transport.DeadLetters.
func (b *Broker) GetDeadLetter(_ context.Context, id string) (transport.DeadLetter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, dl := range b.dead {
		if dl.ID == id {
			dl.Envelope.Payload = append([]byte(nil), dl.Envelope.Payload...)
			return dl, nil
		}
	}
	return transport.DeadLetter{}, cqrs.Errorf(cqrs.CodeNotFound, "memory: no dead letter %q", id)
}

// ReplayDeadLetter implements transport.DeadLetters: the envelope goes back on
// its group's queue only, with its attempts counted from 1 again.
func (b *Broker) ReplayDeadLetter(ctx context.Context, id string) error {
	b.mu.Lock()
	idx := -1
	for j := range b.dead {
		if b.dead[j].ID == id {
			idx = j
			break
		}
	}
	if idx < 0 {
		b.mu.Unlock()
		return cqrs.Errorf(cqrs.CodeNotFound, "memory: no dead letter %q", id)
	}
	dl := b.dead[idx]
	b.dead = append(b.dead[:idx:idx], b.dead[idx+1:]...)
	b.mu.Unlock()
	env := dl.Envelope
	q := b.queueFor(queueKey{topic: transport.Topic{Kind: env.Kind, Name: env.Name}, group: dl.Service})
	if err := b.enqueue(ctx, q, &item{env: env, attempt: 1}); err != nil {
		b.mu.Lock()
		b.dead = append(b.dead, dl) // put it back; replay did not happen
		b.mu.Unlock()
		return err
	}
	return nil
}

var _ transport.DeadLetters = (*Broker)(nil)

// serverGroup is the instances of one group serving one topic.
type serverGroup struct {
	instances []*server
	next      atomic.Uint64
}

func (b *Broker) addServer(t transport.Topic, group string, s *server) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return cqrs.ErrClosed
	}
	groups := b.servers[t]
	if groups == nil {
		groups = map[string]*serverGroup{}
		b.servers[t] = groups
	}
	g := groups[group]
	if g == nil {
		g = &serverGroup{}
		groups[group] = g
	}
	g.instances = append(g.instances, s)
	return nil
}

func (b *Broker) removeServer(t transport.Topic, group string, s *server) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.servers[t][group]
	if g == nil {
		return
	}
	for i, x := range g.instances {
		if x == s {
			g.instances = append(g.instances[:i:i], g.instances[i+1:]...)
			break
		}
	}
	if len(g.instances) == 0 {
		delete(b.servers[t], group)
	}
}

// pickServer chooses one instance of one group serving t: the first group
// by name, instances in turn.
func (b *Broker) pickServer(t transport.Topic) (*server, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, cqrs.ErrClosed
	}
	var names []string
	for name, g := range b.servers[t] {
		if len(g.instances) > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w for %s", cqrs.ErrNoHandler, t)
	}
	sort.Strings(names)
	g := b.servers[t][names[0]]
	return g.instances[g.next.Add(1)%uint64(len(g.instances))], nil
}

var errSettled = errors.New("memory: delivery already settled")
