package flow_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow"
	"github.com/catga-go/catga/cqrs/flow/flowtest"
	"github.com/catga-go/catga/cqrs/transport"
)

func TestMemoryStoreConformance(t *testing.T) {
	flowtest.TestStore(t, func(t *testing.T) flowtest.Harness {
		rec := &flowtest.Recorder{}
		bus, err := cqrs.New(cqrs.Options{Service: "flowtest", Instance: "i1", Transport: rec})
		if err != nil {
			t.Fatal(err)
		}
		return flowtest.Harness{Store: flow.NewMemoryStore(rec), Bus: bus, Sent: func(*testing.T) int { return rec.Count() }}
	})
}

func BenchmarkFlowStep(b *testing.B) {
	rec := &flowtest.Recorder{}
	bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "i1", Transport: rec})
	if err != nil {
		b.Fatal(err)
	}
	flowtest.BenchmarkStep(b, flowtest.Harness{Store: flow.NewMemoryStore(rec), Bus: bus})
}

func TestMemoryStore_WithoutATransportRefusesWithTheFix(t *testing.T) {
	err := flow.NewMemoryStore(nil).Run(context.Background(), "f", "k", func(context.Context, *flow.Instance) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "NewMemoryStore(bus.Transport())") {
		t.Fatalf("Run on a store without a transport: %v, want an error saying what to give it", err)
	}
}

// A step whose messages cannot be sent is undone: the redelivery runs it
// again rather than finding it handled with its messages lost.
func TestMemoryStore_AFailedSendUndoesTheStep(t *testing.T) {
	tr := &failing{}
	bus, err := cqrs.New(cqrs.Options{Service: "s", Instance: "i", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	store := flow.NewMemoryStore(tr)
	step := func(ctx context.Context, in *flow.Instance) error {
		in.State = []byte(`{}`)
		in.History = append(in.History, flow.Entry{Step: "s", MessageID: "m1"})
		return bus.Publish(ctx, flowtest.Noted{Key: "k"})
	}
	if err := store.Run(context.Background(), "f", "k", step); err == nil {
		t.Fatal("Run whose messages could not be sent: no error")
	}
	if _, err := store.Get(context.Background(), "f", "k"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("the step was kept although its message was not sent: %v", err)
	}
}

// failing is a transport whose Publish fails.
type failing struct{ flowtest.Recorder }

func (*failing) Publish(context.Context, transport.Topic, *transport.Envelope) error {
	return errors.New("broker down")
}
