package consumer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Handlers that finish in time: Wait returns nil and the context ends after.
func TestWait_HandlersFinish(t *testing.T) {
	h := NewHandlers()
	var running sync.WaitGroup
	running.Add(1)
	go func() { defer running.Done(); time.Sleep(10 * time.Millisecond) }()
	if err := h.Wait(context.Background(), running.Wait); err != nil {
		t.Fatalf("Wait: %v, want nil", err)
	}
	if h.Context().Err() == nil {
		t.Fatal("the handlers' context is still live after Wait")
	}
}

// A handler that outlives Close's context sees its own cancelled, returns,
// and Wait reports the deadline.
func TestWait_DeadlineCancelsHandlers(t *testing.T) {
	h := NewHandlers()
	var running sync.WaitGroup
	running.Add(1)
	go func() { defer running.Done(); <-h.Context().Done() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.Wait(ctx, running.Wait); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v, want the deadline", err)
	}
}

// Drain reaches transport.Draining through the handlers' context, once.
func TestDrain_SignalsWaitingBehaviors(t *testing.T) {
	h := NewHandlers()
	defer h.Cancel()
	select {
	case <-transport.Draining(h.Context()):
		t.Fatal("draining before Drain")
	default:
	}
	h.Drain()
	h.Drain()
	select {
	case <-transport.Draining(h.Context()):
	default:
		t.Fatal("not draining after Drain")
	}
	if h.Context().Err() != nil {
		t.Fatal("Drain cancelled the handlers' context; it must not")
	}
}
