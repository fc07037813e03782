package flow_test

import (
	"testing"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow"
	"github.com/catga-go/catga/cqrs/flow/flowtest"
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
