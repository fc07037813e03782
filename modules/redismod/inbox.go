package redismod

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs/inbox"
)

// Inbox is the idempotency store on Redis, shared by every instance and
// usable with any transport: a key per (service, handler, message id),
// "busy" (SET NX with the run's lease) while a run holds it, "done" (with
// CATGA_IDEMPOTENCY_TTL) once it succeeded.
type Inbox struct {
	rdb redis.UniversalClient
	k   keys
}

var _ inbox.Store = (*Inbox)(nil)

// NewInbox returns an inbox on rdb under cfg's prefix.
func NewInbox(rdb redis.UniversalClient, cfg Config) *Inbox {
	cfg = cfg.WithDefaults()
	return &Inbox{rdb: rdb, k: keys{prefix: cfg.Prefix, tags: cfg.HashTags}}
}

var claim = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == 'done' then return 2 end
if v then return 3 end
redis.call('SET', KEYS[1], 'busy', 'PX', ARGV[1])
return 1`)

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'busy' then return redis.call('DEL', KEYS[1]) end
return 0`)

// Claim implements inbox.Store.
func (s *Inbox) Claim(ctx context.Context, key string, lease time.Duration) (inbox.State, error) {
	n, err := claim.Run(ctx, s.rdb, []string{s.k.inbox(key)}, max(lease.Milliseconds(), 1)).Int()
	if err != nil {
		return 0, fmt.Errorf("redismod: inbox: %w", err)
	}
	switch n {
	case 1:
		return inbox.StateNew, nil
	case 2:
		return inbox.StateDone, nil
	}
	return inbox.StateBusy, nil
}

// MarkDone implements inbox.Store.
func (s *Inbox) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.k.inbox(key), "done", ttl).Err(); err != nil {
		return fmt.Errorf("redismod: inbox: %w", err)
	}
	return nil
}

// Release implements inbox.Store.
func (s *Inbox) Release(ctx context.Context, key string) error {
	if err := release.Run(ctx, s.rdb, []string{s.k.inbox(key)}).Err(); err != nil && err != redis.Nil {
		return fmt.Errorf("redismod: inbox: %w", err)
	}
	return nil
}
