package pgmod_test

import (
	"context"
	"testing"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow/flowtest"
)

func TestFlowStoreConformance(t *testing.T) {
	flowtest.TestStore(t, func(t *testing.T) flowtest.Harness {
		db := newDB(t, "svc")
		bus, err := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: &flowtest.Recorder{}})
		if err != nil {
			t.Fatal(err)
		}
		return flowtest.Harness{Store: db.FlowStore(), Bus: bus, Sent: func(t *testing.T) int {
			n, err := db.Outbox().Depth(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}}
	})
}
