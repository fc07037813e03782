package flow

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// MemoryStore keeps instances in process, for tests and a service on the
// memory transport. Its transaction is a mutex per instance; the messages
// a step sends are held until the step's state is saved, then published
// on the transport in order (nothing is sent for a step that failed).
// Nothing survives the process.
type MemoryStore struct {
	tr transport.Transport // nil: the bus runs what is sent in process

	mu        sync.Mutex
	instances map[[2]string]*memInstance
}

type memInstance struct {
	mu sync.Mutex // held for a Run
	in *Instance  // nil until saved
}

// NewMemoryStore returns an empty store whose steps' messages go to tr
// (the bus's transport, bus.Transport(); nil for a bus without one).
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
	mi := s.instance(flow, key)
	mi.mu.Lock()
	defer mi.mu.Unlock()
	in := &Instance{Flow: flow, Key: key}
	if mi.in != nil {
		in = mi.in.clone()
	}
	var held []transport.Outgoing
	if s.tr != nil {
		ctx = transport.WithOutbox(ctx, transport.OutboxFunc(func(_ context.Context, t transport.Topic, env *transport.Envelope) error {
			held = append(held, transport.Outgoing{Topic: t, Envelope: env})
			return nil
		}))
	}
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
	mi.in = in.clone()
	if len(held) > 0 {
		errs := make([]error, len(held))
		transport.PublishBatch(context.WithoutCancel(ctx), s.tr, held, errs)
		for _, err := range errs {
			if err != nil {
				return err // saved, not all sent: the state is kept, as an outbox whose relay failed would
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
