package cqrs

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Idempotency defaults.
const (
	DefaultIdempotencyTTL   = 24 * time.Hour
	DefaultIdempotencyLease = 5 * time.Minute
	DefaultInboxSize        = 100_000
)

// IdempotencyState is what Begin found for a key.
type IdempotencyState uint8

// The states of a key.
const (
	StateNew  IdempotencyState = iota + 1 // claimed now: run the handler
	StateDone                             // a run succeeded before: skip it
	StateBusy                             // another run holds the lease: try later
)

// IdempotencyStore is the inbox behind the Idempotency behavior. Begin
// claims key for lease (so a crashed run frees it), Commit marks it done for
// ttl, Release frees it after a failed run. The memory store is the default;
// redismod provides one every instance shares.
type IdempotencyStore interface {
	Begin(ctx context.Context, key string, lease time.Duration) (IdempotencyState, error)
	Commit(ctx context.Context, key string, ttl time.Duration) error
	Release(ctx context.Context, key string) error
}

// MemoryInbox is an in-process IdempotencyStore holding at most Size keys;
// past that it forgets the oldest first. Its zero value holds
// DefaultInboxSize keys. It only dedupes within one process.
type MemoryInbox struct {
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

var _ IdempotencyStore = (*MemoryInbox)(nil)

// Begin implements IdempotencyStore.
func (s *MemoryInbox) Begin(_ context.Context, key string, lease time.Duration) (IdempotencyState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if e, ok := s.keys[key]; ok && now.Before(e.expires) {
		if e.done {
			return StateDone, nil
		}
		return StateBusy, nil
	}
	s.put(key, inboxEntry{expires: now.Add(lease)})
	return StateNew, nil
}

// Commit implements IdempotencyStore.
func (s *MemoryInbox) Commit(_ context.Context, key string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, inboxEntry{done: true, expires: time.Now().Add(ttl)})
	return nil
}

// Release implements IdempotencyStore.
func (s *MemoryInbox) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
	return nil
}

func (s *MemoryInbox) put(key string, e inboxEntry) {
	if s.keys == nil {
		s.keys = map[string]inboxEntry{}
	}
	if _, ok := s.keys[key]; !ok {
		size := s.Size
		if size <= 0 {
			size = DefaultInboxSize
		}
		// Evict the oldest keys; a key already released may still sit in
		// order, which only makes the bound conservative.
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

// compact drops from order the keys released or evicted, and repeats, so
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
