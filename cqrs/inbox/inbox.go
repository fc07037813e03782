package inbox

import (
	"context"
	"slices"
	"sync"
	"time"
)

// defaultSize is how many keys a zero Memory holds.
const defaultSize = 100_000

// State is what Claim found for a key.
type State uint8

// The states of a key.
const (
	StateNew  State = iota + 1 // claimed now: run the handler
	StateDone                  // a run succeeded: skip it
	StateBusy                  // another run holds it: wait for it
)

// Store is the inbox behind cqrs's Idempotency behavior. Claim
// takes key for lease (so a crashed run frees it), MarkDone records
// success for ttl, Release frees the key after a failed run. The memory
// store is the default; redismod provides one every instance shares.
type Store interface {
	Claim(ctx context.Context, key string, lease time.Duration) (State, error)
	MarkDone(ctx context.Context, key string, ttl time.Duration) error
	Release(ctx context.Context, key string) error
}

// Memory is an in-process Store holding at most Size keys;
// past that it forgets the oldest first. Its zero value holds
// defaultSize keys. It only dedupes within one process.
type Memory struct {
	Size int

	mu    sync.Mutex
	keys  map[string]inboxEntry
	order []string // insertion order, for eviction
	head  int
}

type inboxEntry struct {
	done    bool
	expires time.Time
}

var _ Store = (*Memory)(nil)

// Claim implements Store.
func (s *Memory) Claim(_ context.Context, key string, lease time.Duration) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.keys[key]; ok && time.Now().Before(e.expires) {
		if e.done {
			return StateDone, nil
		}
		return StateBusy, nil
	}
	s.put(key, inboxEntry{expires: time.Now().Add(lease)})
	return StateNew, nil
}

// MarkDone implements Store.
func (s *Memory) MarkDone(_ context.Context, key string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, inboxEntry{done: true, expires: time.Now().Add(ttl)})
	return nil
}

// Release implements Store.
func (s *Memory) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.keys[key]; ok && !e.done {
		delete(s.keys, key)
	}
	return nil
}

func (s *Memory) put(key string, e inboxEntry) {
	if s.keys == nil {
		s.keys = map[string]inboxEntry{}
	}
	if _, ok := s.keys[key]; !ok {
		size := s.Size
		if size <= 0 {
			size = defaultSize
		}
		for len(s.keys) >= size && s.head < len(s.order) {
			delete(s.keys, s.order[s.head])
			s.order[s.head] = ""
			s.head++
		}
		if live := len(s.order) - s.head; live > 2*size || (s.head > 1024 && s.head > live) {
			s.compact()
		}
		s.order = append(s.order, key)
	}
	s.keys[key] = e
}

// compact drops from order the keys expired or evicted, and repeats, so
// order stays within twice the bound whatever the traffic.
func (s *Memory) compact() {
	seen := make(map[string]bool, len(s.keys))
	kept := make([]string, 0, len(s.keys))
	for i := len(s.order) - 1; i >= s.head; i-- {
		k := s.order[i]
		if _, live := s.keys[k]; live && !seen[k] {
			seen[k] = true
			kept = append(kept, k)
		}
	}
	slices.Reverse(kept)
	s.order, s.head = kept, 0
}

// Len returns the number of keys held.
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}
