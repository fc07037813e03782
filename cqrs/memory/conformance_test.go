package memory_test

import (
	"context"
	"testing"

	"github.com/catga-go/catga/cqrs/cqrstest"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

func TestConformance(t *testing.T) {
	cqrstest.TestTransport(t, cqrstest.Features{Persistent: true}, func(t *testing.T) cqrstest.Connect {
		b := memory.NewBroker(memory.Options{})
		t.Cleanup(b.Close)
		return func(t *testing.T) transport.Transport {
			tr := memory.NewTransport(b)
			t.Cleanup(func() { _ = tr.Close(context.Background()) })
			return tr
		}
	})
}
