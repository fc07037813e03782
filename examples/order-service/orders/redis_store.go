package orders

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/redismod"
)

// RedisStore is a Store every replica shares. An order is a JSON string;
// a set per status indexes them. Every key is in the service outbox's hash
// slot (Outbox.Key), so Create writes the order and its OrderCreated in
// one MULTI/EXEC, on a Redis Cluster too.
type RedisStore struct {
	o *redismod.Outbox
}

// NewRedisStore returns a store on the outbox's client and slot.
func NewRedisStore(o *redismod.Outbox) *RedisStore { return &RedisStore{o: o} }

var _ Store = (*RedisStore)(nil)

func (s *RedisStore) key(id OrderID) string  { return s.o.Key("order", string(id)) }
func (s *RedisStore) index(st Status) string { return s.o.Key("status", string(st)) }
func (s *RedisStore) all() string            { return s.o.Key("all") }

// Create implements Store: the order, its indexes and then's messages in
// one transaction.
func (s *RedisStore) Create(ctx context.Context, o Order, then func(context.Context) error) error {
	data, _ := json.Marshal(o)
	key := s.key(o.ID)
	return s.o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
		n, err := s.o.Reader(ctx).Exists(ctx, key).Result()
		if err != nil {
			return cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
		}
		if n > 0 {
			return cqrs.Errorf(cqrs.CodeConflict, "order %s exists", o.ID)
		}
		pipe.Set(ctx, key, data, 0)
		pipe.SAdd(ctx, s.index(o.Status), string(o.ID))
		pipe.SAdd(ctx, s.all(), string(o.ID))
		return then(ctx)
	}, redismod.Watch(key), redismod.Key(string(o.ID)))
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, id OrderID) (Order, error) {
	data, err := s.o.Client().Get(ctx, s.key(id)).Bytes()
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
	ids, err := s.o.Client().SMembers(ctx, set).Result()
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

// Apply implements Store: an optimistic transaction on the order (Watch),
// run again when another replica changed it meanwhile.
func (s *RedisStore) Apply(ctx context.Context, id OrderID, e HistoryEntry, status Status) error {
	key := s.key(id)
	return s.o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
		data, err := s.o.Reader(ctx).Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return notFound(id)
		}
		if err != nil {
			return cqrs.Errorf(cqrs.CodeUnavailable, "orders store: %w", err)
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
		pipe.Set(ctx, key, next, 0)
		if o.Status != old {
			pipe.SRem(ctx, s.index(old), string(id))
			pipe.SAdd(ctx, s.index(o.Status), string(id))
		}
		return nil
	}, redismod.Watch(key))
}
