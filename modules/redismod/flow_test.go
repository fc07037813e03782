package redismod_test

import (
	"context"
	"testing"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow/flowtest"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func flowHarness(t *testing.T, cfg redismod.Config) flowtest.Harness {
	o := obNew(t, obClient(t, cfg), cfg, "svc")
	bus, err := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: &flowtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	return flowtest.Harness{Store: o.FlowStore(), Bus: bus, Sent: func(t *testing.T) int {
		n, err := o.Store().Depth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}}
}

func TestFlowStoreConformance(t *testing.T) {
	srv := redistest.Start(t)
	flowtest.TestStore(t, func(t *testing.T) flowtest.Harness { return flowHarness(t, testConfig(srv.URL())) })
}

func TestFlowStoreConformance_Cluster(t *testing.T) {
	cluster := redistest.StartCluster(t)
	flowtest.TestStore(t, func(t *testing.T) flowtest.Harness {
		cfg := testConfig("")
		cfg.Connection = cluster.Addrs()
		return flowHarness(t, cfg)
	})
}
