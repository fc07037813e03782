package redismod

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
)

// Inbox is the idempotency store on Redis, shared by every instance and
// usable with any transport: a key per (service, handler, message id) set
// with SET NX and an expiry; "busy" while a run holds it (for its lease),
// "done" after success (for the TTL).
type Inbox struct {
	rdb redis.UniversalClient
	k   keys
}

var _ cqrs.IdempotencyStore = (*Inbox)(nil)

// NewInbox returns an inbox on rdb under cfg's prefix.
func NewInbox(rdb redis.UniversalClient, cfg Config) *Inbox {
	cfg = cfg.WithDefaults()
	return &Inbox{rdb: rdb, k: keys{prefix: cfg.Prefix, tags: cfg.HashTags}}
}

var begin = redis.NewScript(`
if redis.call('SET', KEYS[1], 'busy', 'NX', 'PX', ARGV[1]) then return 1 end
if redis.call('GET', KEYS[1]) == 'done' then return 2 end
return 3`)

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'busy' then return redis.call('DEL', KEYS[1]) end
return 0`)

// Begin implements cqrs.IdempotencyStore.
func (s *Inbox) Begin(ctx context.Context, key string, lease time.Duration) (cqrs.IdempotencyState, error) {
	n, err := begin.Run(ctx, s.rdb, []string{s.k.inbox(key)}, max(lease.Milliseconds(), 1)).Int()
	if err != nil {
		return 0, fmt.Errorf("redismod: inbox: %w", err)
	}
	switch n {
	case 1:
		return cqrs.StateNew, nil
	case 2:
		return cqrs.StateDone, nil
	}
	return cqrs.StateBusy, nil
}

// Commit implements cqrs.IdempotencyStore.
func (s *Inbox) Commit(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.k.inbox(key), "done", ttl).Err(); err != nil {
		return fmt.Errorf("redismod: inbox: %w", err)
	}
	return nil
}

// Release implements cqrs.IdempotencyStore.
func (s *Inbox) Release(ctx context.Context, key string) error {
	if err := release.Run(ctx, s.rdb, []string{s.k.inbox(key)}).Err(); err != nil && err != redis.Nil {
		return fmt.Errorf("redismod: inbox: %w", err)
	}
	return nil
}
