package natsmod_test

import (
	"os"
	"testing"

	"github.com/catga-go/catga/cqrs/cqrstest"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// TestConformance runs the suite on an embedded nats-server, the newest;
// CATGA_TEST_NATS_URL points it at another server instead (the 2.9 of a
// distribution, say), with streams and subjects unique to each case.
func TestConformance(t *testing.T) {
	cqrstest.TestTransport(t, cqrstest.Features{
		Persistent: true, MaxPayload: 512 << 10, BrokerGoroutines: []string{"nats-server/v2/server."},
	}, func(t *testing.T) cqrstest.Connect {
		url := os.Getenv("CATGA_TEST_NATS_URL")
		if url == "" {
			url = natstest.Start(t).URL()
		}
		cfg := testConfigAt(url)
		t.Cleanup(func() { deleteStreams(t, cfg) })
		return func(t *testing.T) transport.Transport { return connect(t, cfg, "conformance") }
	})
}

// TestConformance_ScheduleFallback runs the scheduled messages' cases
// through the fallback of servers before 2.12 (its own stream and
// scheduler), on the newest server.
func TestConformance_ScheduleFallback(t *testing.T) {
	cqrstest.TestScheduler(t, cqrstest.Features{
		Persistent: true, BrokerGoroutines: []string{"nats-server/v2/server."},
	}, func(t *testing.T) cqrstest.Connect {
		url := os.Getenv("CATGA_TEST_NATS_URL")
		if url == "" {
			url = natstest.Start(t).URL()
		}
		cfg := testConfigAt(url)
		cfg.Schedules = "stream"
		t.Cleanup(func() { deleteStreams(t, cfg) })
		return func(t *testing.T) transport.Transport {
			tr := connect(t, cfg, "fallback")
			if natsmod.SchedulesNative(tr) {
				t.Fatal("the fallback was asked for, and the server schedules")
			}
			return tr
		}
	})
}
