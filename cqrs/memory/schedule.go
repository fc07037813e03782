package memory

import (
	"container/heap"
	"context"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// scheduled is a message held until its time, with its place in the heap.
type scheduled struct {
	at    time.Time
	topic transport.Topic
	env   *transport.Envelope // the broker's own copy
	only  *queue              // a retry for one group whose queue was full; nil: every group
	index int
}

// fullRetry is how soon a scheduled message that found a group's queue
// full tries that queue again: the scheduler never waits on one group.
const fullRetry = 50 * time.Millisecond

// timerHeap orders the scheduled messages by time (container/heap).
type timerHeap []*scheduled

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	s := x.(*scheduled)
	s.index = len(*h)
	*h = append(*h, s)
}
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}

// schedule holds a copy of env until env.DeliverAt, then delivers it to
// the groups subscribed to topic at that time. One goroutine, started with
// the first scheduled message and stopped by Close, waits on the earliest.
func (b *Broker) schedule(topic transport.Topic, env *transport.Envelope) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return cqrs.ErrClosed
	}
	if _, dup := b.byID[env.ID]; dup {
		return nil // the same message again (a retried publish): stored once
	}
	if b.byID == nil {
		b.byID = map[string]*scheduled{}
		b.wake = make(chan struct{}, 1)
		b.wg.Add(1)
		go b.fire()
	}
	s := &scheduled{at: env.DeliverAt, topic: topic, env: env.Clone()}
	heap.Push(&b.sched, s)
	b.byID[env.ID] = s
	if s.index == 0 {
		signal(b.wake) // the new earliest: the wait shortens
	}
	return nil
}

// cancel removes the scheduled message id, if it waits.
func (b *Broker) cancel(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.byID[id]
	if !ok {
		return false
	}
	heap.Remove(&b.sched, s.index)
	delete(b.byID, id)
	return true
}

// fire delivers each scheduled message when its time comes, until Close.
func (b *Broker) fire() {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		b.mu.Lock()
		now := time.Now()
		var due []*scheduled
		for len(b.sched) > 0 && !b.sched[0].at.After(now) {
			s := heap.Pop(&b.sched).(*scheduled)
			if s.only == nil {
				delete(b.byID, s.env.ID)
			}
			due = append(due, s)
		}
		wait := time.Hour
		if len(b.sched) > 0 {
			wait = b.sched[0].at.Sub(now)
		}
		b.mu.Unlock()
		for _, s := range due {
			qs := []*queue{s.only}
			if s.only == nil {
				var err error
				if qs, err = b.groupsOf(s.topic); err != nil {
					return // closed
				}
			}
			for _, q := range qs {
				if !q.push(newItem(s.env)) {
					b.retryFull(s, q)
				}
			}
		}
		if len(due) > 0 {
			continue // time passed while delivering
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-b.wake:
		case <-b.done:
			return
		}
	}
}

// retryFull schedules s again for q alone, fullRetry from now.
func (b *Broker) retryFull(s *scheduled, q *queue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		heap.Push(&b.sched, &scheduled{at: time.Now().Add(fullRetry), topic: s.topic, env: s.env, only: q})
	}
}

// Cancel implements transport.Scheduler.
func (t *Transport) Cancel(_ context.Context, id string) (bool, error) {
	return t.broker.cancel(id), nil
}
