package redismod

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
)

// Inbox is the idempotency store on Redis, shared by every instance and
// usable with any transport: a key per (service, handler, message id), set
// with an expiry once its handler succeeded.
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

// Done implements cqrs.IdempotencyStore.
func (s *Inbox) Done(ctx context.Context, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.k.inbox(key)).Result()
	if err != nil {
		return false, fmt.Errorf("redismod: inbox: %w", err)
	}
	return n == 1, nil
}

// MarkDone implements cqrs.IdempotencyStore.
func (s *Inbox) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.k.inbox(key), "done", ttl).Err(); err != nil {
		return fmt.Errorf("redismod: inbox: %w", err)
	}
	return nil
}
