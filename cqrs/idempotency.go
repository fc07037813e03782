package cqrs

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Idempotency defaults.
const (
	DefaultIdempotencyTTL = 24 * time.Hour
	DefaultInboxSize      = 100_000
)

// IdempotencyStore is the inbox behind the Idempotency behavior: it
// remembers, for a TTL, the keys of messages whose handler succeeded. The
// memory store is the default; redismod provides one every instance shares.
//
// It records success only, not a run in progress: a message whose handler
// crashed must run again when it comes back, at once, not after a lease
// runs out (by then the broker may have given up on it). Two instances run
// the same message at once only when a broker hands it over while its
// handler still runs, which the transports prevent with in-progress acks.
type IdempotencyStore interface {
	Done(ctx context.Context, key string) (bool, error)
	MarkDone(ctx context.Context, key string, ttl time.Duration) error
}

// MemoryInbox is an in-process IdempotencyStore holding at most Size keys;
// past that it forgets the oldest first. Its zero value holds
// DefaultInboxSize keys. It only dedupes within one process.
type MemoryInbox struct {
	Size int

	mu    sync.Mutex
	keys  map[string]time.Time // key -> expiry
	order []string             // insertion order, for eviction
	head  int
}

var _ IdempotencyStore = (*MemoryInbox)(nil)

// Done implements IdempotencyStore.
func (s *MemoryInbox) Done(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.keys[key]
	if ok && time.Now().After(exp) {
		delete(s.keys, key)
		return false, nil
	}
	return ok, nil
}

// MarkDone implements IdempotencyStore.
func (s *MemoryInbox) MarkDone(_ context.Context, key string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]time.Time{}
	}
	if _, ok := s.keys[key]; !ok {
		size := s.Size
		if size <= 0 {
			size = DefaultInboxSize
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
	s.keys[key] = time.Now().Add(ttl)
	return nil
}

// compact drops from order the keys expired or evicted, and repeats, so
// order stays within twice the bound whatever the traffic.
func (s *MemoryInbox) compact() {
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
func (s *MemoryInbox) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}
