package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
)

// record is what an order's reservation came to, as stored.
type record struct {
	Status string           `json:"status"` // reserved, rejected, released
	Short  string           `json:"short,omitempty"`
	Qty    map[string]int64 `json:"qty,omitempty"` // what is reserved, by SKU
}

func (r record) outcome() Outcome {
	return Outcome{Reserved: r.Status == "reserved", Short: r.Short, Released: r.Status == "released"}
}

// MemoryStore keeps the stock in process memory.
type MemoryStore struct {
	cfg    Config
	mu     sync.Mutex
	stock  map[string]*Stock
	orders map[string]record
}

// NewMemoryStore returns a store with every SKU at its initial stock.
func NewMemoryStore(cfg Config) *MemoryStore {
	return &MemoryStore{cfg: cfg, stock: map[string]*Stock{}, orders: map[string]record{}}
}

func (s *MemoryStore) sku(sku string) *Stock {
	st, ok := s.stock[sku]
	if !ok {
		st = &Stock{SKU: sku, Available: s.cfg.initial(sku)}
		s.stock[sku] = st
	}
	return st
}

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, orderID string, items []contracts.Item) (Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.orders[orderID]; ok {
		return r.outcome(), nil
	}
	skus, qty := quantities(items)
	for _, sku := range skus {
		if s.sku(sku).Available < qty[sku] {
			r := record{Status: "rejected", Short: sku}
			s.orders[orderID] = r
			return r.outcome(), nil
		}
	}
	for _, sku := range skus {
		st := s.sku(sku)
		st.Available -= qty[sku]
		st.Reserved += qty[sku]
	}
	r := record{Status: "reserved", Qty: qty}
	s.orders[orderID] = r
	return r.outcome(), nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, orderID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.orders[orderID]
	switch {
	case ok && r.Status != "reserved":
		return false, nil
	case !ok:
		s.orders[orderID] = record{Status: "released"}
		return false, nil
	}
	for sku, n := range r.Qty {
		st := s.sku(sku)
		st.Available += n
		st.Reserved -= n
	}
	s.orders[orderID] = record{Status: "released"}
	return true, nil
}

// Stock implements Store.
func (s *MemoryStore) Stock(_ context.Context, sku string) (Stock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.sku(sku), nil
}

// RedisStore keeps the stock in Redis, in one hash slot (the tag
// {<prefix>:stock}): a hash per SKU (available, reserved) and a record per
// order (<tag>:reservation:<order id>). Reserve and Release are Lua
// scripts, so an order's items move all at once, or not at all.
type RedisStore struct {
	rdb redis.UniversalClient
	tag string
	cfg Config
}

// NewRedisStore returns the store on rdb under tag (with its braces).
func NewRedisStore(rdb redis.UniversalClient, tag string, cfg Config) *RedisStore {
	return &RedisStore{rdb: rdb, tag: tag, cfg: cfg}
}

func (s *RedisStore) skuKey(sku string) string       { return s.tag + ":sku:" + sku }
func (s *RedisStore) orderKey(orderID string) string { return s.tag + ":reservation:" + orderID }

// reserve: KEYS[1] the order's record, KEYS[2..] the SKUs' hashes; ARGV[1]
// the record if reserved, then each SKU's initial stock and quantity. It
// returns the record (the existing one, or the new reservation), or
// {'short', i} when the i-th SKU has too little (nothing recorded yet).
var reserve = redis.NewScript(`
local rec = redis.call('GET', KEYS[1])
if rec then return rec end
local n = #KEYS - 1
for i = 1, n do
  local k = KEYS[i + 1]
  if redis.call('EXISTS', k) == 0 then redis.call('HSET', k, 'available', ARGV[2 * i], 'reserved', 0) end
  if tonumber(redis.call('HGET', k, 'available')) < tonumber(ARGV[2 * i + 1]) then
    return {'short', i}
  end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i + 1], 'available', -tonumber(ARGV[2 * i + 1]))
  redis.call('HINCRBY', KEYS[i + 1], 'reserved', tonumber(ARGV[2 * i + 1]))
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`)

// rejectOnce records a rejection unless the order has a record already.
var rejectOnce = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return ARGV[1] end
return redis.call('GET', KEYS[1])`)

// release: KEYS[1] the order's record, KEYS[2..] the SKUs' hashes; ARGV[1]
// the record as read (reserved), ARGV[2] the released record, then each
// SKU's quantity. It acts only if the record is still ARGV[1].
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'available', tonumber(ARGV[i + 1]))
  redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(ARGV[i + 1]))
end
redis.call('SET', KEYS[1], ARGV[2])
return 1`)

func decodeRecord(v string) (record, error) {
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return r, fmt.Errorf("inventory: reservation record %q: %w", v, err)
	}
	return r, nil
}

// Reserve implements Store.
func (s *RedisStore) Reserve(ctx context.Context, orderID string, items []contracts.Item) (Outcome, error) {
	skus, qty := quantities(items)
	keys := []string{s.orderKey(orderID)}
	reserved, _ := json.Marshal(record{Status: "reserved", Qty: qty})
	args := []any{string(reserved)}
	for _, sku := range skus {
		keys = append(keys, s.skuKey(sku))
		args = append(args, s.cfg.initial(sku), qty[sku])
	}
	res, err := reserve.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return Outcome{}, cqrs.Errorf(cqrs.CodeUnavailable, "inventory: reserve %s: %w", orderID, err)
	}
	if short, ok := res.([]any); ok && len(short) == 2 {
		i, _ := short[1].(int64)
		rejected, _ := json.Marshal(record{Status: "rejected", Short: skus[i-1]})
		v, err := rejectOnce.Run(ctx, s.rdb, keys[:1], string(rejected)).Text()
		if err != nil {
			return Outcome{}, cqrs.Errorf(cqrs.CodeUnavailable, "inventory: reserve %s: %w", orderID, err)
		}
		res = v
	}
	r, err := decodeRecord(fmt.Sprint(res))
	return r.outcome(), err
}

// Release implements Store.
func (s *RedisStore) Release(ctx context.Context, orderID string) (bool, error) {
	key := s.orderKey(orderID)
	released, _ := json.Marshal(record{Status: "released"})
	for {
		v, err := s.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			ok, err := s.rdb.SetNX(ctx, key, string(released), 0).Result()
			if err != nil {
				return false, cqrs.Errorf(cqrs.CodeUnavailable, "inventory: release %s: %w", orderID, err)
			}
			if ok {
				return false, nil // released before it reserved: it never will
			}
			continue // a reservation came meanwhile
		}
		if err != nil {
			return false, cqrs.Errorf(cqrs.CodeUnavailable, "inventory: release %s: %w", orderID, err)
		}
		r, err := decodeRecord(v)
		if err != nil || r.Status != "reserved" {
			return false, err
		}
		keys, args := []string{key}, []any{v, string(released)}
		for sku, n := range r.Qty {
			keys = append(keys, s.skuKey(sku))
			args = append(args, n)
		}
		done, err := release.Run(ctx, s.rdb, keys, args...).Int()
		if err != nil {
			return false, cqrs.Errorf(cqrs.CodeUnavailable, "inventory: release %s: %w", orderID, err)
		}
		if done == 1 {
			return true, nil
		}
	}
}

// Stock implements Store.
func (s *RedisStore) Stock(ctx context.Context, sku string) (Stock, error) {
	h, err := s.rdb.HGetAll(ctx, s.skuKey(sku)).Result()
	if err != nil {
		return Stock{}, cqrs.Errorf(cqrs.CodeUnavailable, "inventory: stock of %s: %w", sku, err)
	}
	if len(h) == 0 {
		return Stock{SKU: sku, Available: s.cfg.initial(sku)}, nil
	}
	var st Stock
	st.SKU = sku
	_, err = fmt.Sscan(h["available"], &st.Available)
	if err == nil {
		_, err = fmt.Sscan(h["reserved"], &st.Reserved)
	}
	return st, err
}
