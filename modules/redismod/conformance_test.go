package redismod_test

import (
	"testing"

	"github.com/catga-go/catga/cqrs/cqrstest"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func TestConformance(t *testing.T) {
	cqrstest.TestTransport(t, cqrstest.Features{Persistent: true}, func(t *testing.T) cqrstest.Connect {
		cfg := testConfig(redistest.Start(t).URL())
		return func(t *testing.T) transport.Transport { return connect(t, cfg, "conformance") }
	})
}

func TestConformance_Cluster(t *testing.T) {
	cluster := redistest.StartCluster(t)
	cqrstest.TestTransport(t, cqrstest.Features{Persistent: true}, func(t *testing.T) cqrstest.Connect {
		cfg := testConfig("")
		cfg.Connection = cluster.Addrs()
		return func(t *testing.T) transport.Transport { return connect(t, cfg, "conformance") }
	})
}
