package memory

import (
	"context"
	"fmt"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// server is one instance serving one topic.
type server struct {
	sub *subscription
	h   transport.RequestHandler
}

// call runs the handler in the server's subscription and waits for its
// reply until ctx ends; a late reply is dropped with its goroutine.
func (s *server) call(ctx context.Context, env *transport.Envelope) (*transport.Reply, error) {
	select {
	case s.sub.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("memory: %s %s: %w", env.Kind, env.Name, ctx.Err())
	case <-s.sub.stop:
		return nil, cqrs.ErrClosed
	}
	hctx, cancel := s.sub.h.Context(), context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		hctx, cancel = context.WithDeadline(hctx, dl)
	}
	replies := make(chan *transport.Reply, 1)
	s.sub.wg.Add(1)
	go func() {
		defer s.sub.wg.Done()
		defer func() { <-s.sub.sem }()
		defer cancel()
		env.Attempt = 1
		replies <- s.h.HandleRequest(hctx, env)
	}()
	select {
	case r := <-replies:
		if err := ctx.Err(); err != nil { // it came as the deadline passed: late
			return nil, fmt.Errorf("memory: %s %s: %w", env.Kind, env.Name, err)
		}
		if r == nil {
			return nil, cqrs.Errorf(cqrs.CodeInternal, "memory: %s %s: handler gave no reply", env.Kind, env.Name)
		}
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("memory: %s %s: %w", env.Kind, env.Name, ctx.Err())
	}
}
