package flow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// MemoryStore keeps instances in process, for tests and a service on the
// memory transport. Its transaction is a mutex per instance; the messages
// a step sends are held until the step's state is saved, then published
// on the transport in order (nothing is sent for a step that failed). If
// that publish fails, the step is undone and its error returned, so the
// redelivery runs it again: what the failed publish had sent already may
// then go twice, with new ids. Nothing survives the process.
type MemoryStore struct {
	tr transport.Transport

	mu        sync.Mutex
	instances map[[2]string]*memInstance
}

type memInstance struct {
	mu sync.Mutex // held for a Run
	in *Instance  // nil until saved
}

// NewMemoryStore returns an empty store whose steps' messages go to tr,
// the bus's transport (bus.Transport()). A bus without a transport runs
// what a step sends in its handlers at once, inside the step, where a
// reply to the same instance would wait for the step to end: such a store
// refuses every Run (give the bus the memory transport).
func NewMemoryStore(tr transport.Transport) *MemoryStore {
	return &MemoryStore{tr: tr, instances: map[[2]string]*memInstance{}}
}

func (s *MemoryStore) instance(flow, key string) *memInstance {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{flow, key}
	mi, ok := s.instances[k]
	if !ok {
		mi = &memInstance{}
		s.instances[k] = mi
	}
	return mi
}

// Run implements Store.
func (s *MemoryStore) Run(ctx context.Context, flow, key string, fn func(ctx context.Context, in *Instance) error) error {
	if s.tr == nil {
		return fmt.Errorf("flow: %s/%s: the MemoryStore has no transport to send a step's messages through (NewMemoryStore(bus.Transport()), on a bus with the memory transport)", flow, key)
	}
	mi := s.instance(flow, key)
	mi.mu.Lock()
	defer mi.mu.Unlock()
	in := &Instance{Flow: flow, Key: key}
	if mi.in != nil {
		// fn's copy shares the saved state and history: fn replaces State
		// rather than writing into it, and an append to the capped history
		// copies, so the saved instance stays as it was until fn succeeds.
		c := *mi.in
		c.History = c.History[:len(c.History):len(c.History)]
		in = &c
	}
	var held []transport.Outgoing
	ctx = transport.WithOutbox(ctx, transport.OutboxFunc(func(_ context.Context, t transport.Topic, env *transport.Envelope) error {
		held = append(held, transport.Outgoing{Topic: t, Envelope: env})
		return nil
	}))
	switch err := fn(ctx, in); {
	case errors.Is(err, ErrSkip):
		return nil
	case err != nil:
		return err
	}
	now := time.Now().UTC()
	if in.Version == 0 {
		in.Created = now
	}
	in.Version++
	in.Updated = now
	prev := mi.in
	mi.in = in // Get hands out clones; fn's caller keeps nothing of it
	if len(held) > 0 {
		errs := make([]error, len(held))
		transport.PublishBatch(context.WithoutCancel(ctx), s.tr, held, errs)
		for _, err := range errs {
			if err != nil {
				mi.in = prev // undone: the redelivery runs the step again
				return fmt.Errorf("flow: %s/%s: sending the step's messages: %w", flow, key, err)
			}
		}
	}
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, flow, key string) (*Instance, error) {
	s.mu.Lock()
	mi, ok := s.instances[[2]string{flow, key}]
	s.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	mi.mu.Lock()
	defer mi.mu.Unlock()
	if mi.in == nil {
		return nil, ErrNotFound
	}
	return mi.in.clone(), nil
}

func (in *Instance) clone() *Instance {
	c := *in
	c.State = slices.Clone(in.State)
	c.History = slices.Clone(in.History)
	return &c
}
