package orders

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
)

// RedisStore is a Store every replica shares. An order is a JSON string;
// a set per status indexes them. All keys share one hash tag so the
// optimistic transaction of Apply works on a cluster too.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store on rdb under prefix.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: "{" + prefix + ":orders}"}
}

var _ Store = (*RedisStore)(nil)

func (s *RedisStore) key(id OrderID) string  { return s.prefix + ":order:" + string(id) }
func (s *RedisStore) index(st Status) string { return s.prefix + ":status:" + string(st) }
func (s *RedisStore) all() string            { return s.prefix + ":all" }

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, o Order, then func(context.Context) error) error {
	data, _ := json.Marshal(o)
	ok, err := s.rdb.SetNX(ctx, s.key(o.ID), data, 0).Result()
	if err != nil {
		return cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
	}
	if !ok {
		return cqrs.Errorf(cqrs.CodeConflict, "order %s exists", o.ID)
	}
	pipe := s.rdb.TxPipeline()
	pipe.SAdd(ctx, s.index(o.Status), string(o.ID))
	pipe.SAdd(ctx, s.all(), string(o.ID))
	if _, err = pipe.Exec(ctx); err != nil {
		return err
	}
	if err := then(ctx); err != nil {
		return errors.Join(err, s.delete(context.WithoutCancel(ctx), o.ID))
	}
	return nil
}

func (s *RedisStore) delete(ctx context.Context, id OrderID) error {
	o, err := s.Get(ctx, id)
	if err != nil {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, s.key(id))
	pipe.SRem(ctx, s.index(o.Status), string(id))
	pipe.SRem(ctx, s.all(), string(id))
	_, err = pipe.Exec(ctx)
	return err
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, id OrderID) (Order, error) {
	data, err := s.rdb.Get(ctx, s.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Order{}, notFound(id)
	}
	if err != nil {
		return Order{}, cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
	}
	var o Order
	if err := json.Unmarshal(data, &o); err != nil {
		return Order{}, err
	}
	if o.History == nil {
		o.History = []HistoryEntry{}
	}
	return o, nil
}

// List implements Store.
func (s *RedisStore) List(ctx context.Context, status Status) ([]Order, error) {
	set := s.all()
	if status != "" {
		set = s.index(status)
	}
	ids, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
	}
	sort.Strings(ids)
	out := []Order{}
	for _, id := range ids {
		o, err := s.Get(ctx, OrderID(id))
		if err == nil && (status == "" || o.Status == status) {
			out = append(out, o)
		}
	}
	return out, nil
}

// Apply implements Store with WATCH: an optimistic transaction retried
// when another replica changed the order meanwhile.
func (s *RedisStore) Apply(ctx context.Context, id OrderID, e HistoryEntry, status Status) error {
	key := s.key(id)
	for range 50 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return notFound(id)
			}
			if err != nil {
				return err
			}
			var o Order
			if err := json.Unmarshal(data, &o); err != nil {
				return err
			}
			for _, h := range o.History {
				if h.MessageID == e.MessageID {
					return nil
				}
			}
			old := o.Status
			o.History = append(o.History, e)
			o.Status = o.Status.Furthest(status)
			next, _ := json.Marshal(o)
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, next, 0)
				if o.Status != old {
					p.SRem(ctx, s.index(old), string(id))
					p.SAdd(ctx, s.index(o.Status), string(id))
				}
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return cqrs.Errorf(cqrs.CodeUnavailable, "order %s: too much contention", id)
}
