package redismod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs/flow"
)

// FlowStore keeps flow instances (package cqrs/flow) in the outbox's hash
// slot, in the transactions of Outbox.Tx: an instance is a hash
// ({catga:orders}:_flow:<flow>:<key>: version, state, created, updated)
// and a list of its history entries (the same key with ":history"), so a
// step's state, history entry, outgoing messages and inbox mark commit in
// one MULTI/EXEC. Steps of one instance are serialised optimistically: the
// run WATCHes the instance, and one that lost the race runs again (up to
// REDIS_OUTBOX_ATTEMPTS times).
type FlowStore struct{ o *Outbox }

var _ flow.Store = (*FlowStore)(nil)

// FlowStore returns the store of flow instances on the outbox o.
func (o *Outbox) FlowStore() *FlowStore { return &FlowStore{o: o} }

func (k outboxKeys) flow(name, key string) string        { return k.tag + ":_flow:" + name + ":" + key }
func (k outboxKeys) flowHistory(name, key string) string { return k.flow(name, key) + ":history" }

// errFlowSkip ends a run whose function returned flow.ErrSkip.
var errFlowSkip = errors.New("redismod: flow run skipped")

// Run implements flow.Store.
func (s *FlowStore) Run(ctx context.Context, name, key string, fn func(ctx context.Context, in *flow.Instance) error) error {
	ik, hk := s.o.k.flow(name, key), s.o.k.flowHistory(name, key)
	err := s.o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
		in, err := s.load(ctx, s.o.Reader(ctx), name, key)
		if err != nil {
			return err
		}
		had, version := len(in.History), in.Version
		if err := fn(ctx, in); err != nil {
			if errors.Is(err, flow.ErrSkip) {
				return errFlowSkip
			}
			return err
		}
		now := time.Now().UTC()
		created := in.Created
		if version == 0 {
			created = now
		}
		pipe.HSet(ctx, ik, "version", version+1, "state", []byte(in.State),
			"created", created.Format(time.RFC3339Nano), "updated", now.Format(time.RFC3339Nano))
		for _, e := range in.History[had:] {
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("redismod: flow %s/%s: history: %w", name, key, err)
			}
			pipe.RPush(ctx, hk, b)
		}
		return nil
	}, Watch(ik))
	if errors.Is(err, errFlowSkip) {
		return nil
	}
	return err
}

// Get implements flow.Store.
func (s *FlowStore) Get(ctx context.Context, name, key string) (*flow.Instance, error) {
	in, err := s.load(ctx, s.o.rdb, name, key)
	if err != nil {
		return nil, err
	}
	if in.Version == 0 {
		return nil, flow.ErrNotFound
	}
	return in, nil
}

// load reads an instance and its history through r.
func (s *FlowStore) load(ctx context.Context, r redis.Cmdable, name, key string) (*flow.Instance, error) {
	h, err := r.HGetAll(ctx, s.o.k.flow(name, key)).Result()
	if err != nil {
		return nil, fmt.Errorf("redismod: flow %s/%s: %w", name, key, err)
	}
	in := &flow.Instance{Flow: name, Key: key}
	if len(h) == 0 {
		return in, nil
	}
	if in.Version, err = strconv.ParseInt(h["version"], 10, 64); err != nil {
		return nil, fmt.Errorf("redismod: flow %s/%s: version %q: %w", name, key, h["version"], err)
	}
	in.State = json.RawMessage(h["state"])
	in.Created, _ = time.Parse(time.RFC3339Nano, h["created"])
	in.Updated, _ = time.Parse(time.RFC3339Nano, h["updated"])
	entries, err := r.LRange(ctx, s.o.k.flowHistory(name, key), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redismod: flow %s/%s: history: %w", name, key, err)
	}
	for _, raw := range entries {
		var e flow.Entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("redismod: flow %s/%s: history entry %q: %w", name, key, raw, err)
		}
		in.History = append(in.History, e)
	}
	return in, nil
}
