package natsmod_test

import (
	"os"
	"testing"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/cqrstest"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// TestConformance runs the suite on an embedded nats-server, the newest;
// CATGA_TEST_NATS_URL points it at another server instead (the 2.9 of a
// distribution, say), with streams and subjects unique to each case.
func TestConformance(t *testing.T) {
	cqrstest.TestTransport(t, cqrstest.Features{
		Persistent: true, MaxPayload: 512 << 10, BrokerGoroutines: []string{
			"nats-server/v2/server.",
			// Each pull is a Fetch with a goroutine of its own, so a
			// subscription still open (ConcurrentClose's warm-up one)
			// starts new ones as it pulls. One of a closed subscription
			// cannot outlive Close, which waits for the fetchers, each
			// until its Fetch has ended; goleak in TestMain still sees one
			// that would.
			"jetstream.(*pullConsumer).fetch.func1",
		},
	}, func(t *testing.T) cqrstest.Connect {
		url := os.Getenv("CATGA_TEST_NATS_URL")
		if url == "" {
			url = natstest.Start(t).URL()
		}
		cfg := testConfigAt(url)
		t.Cleanup(func() { deleteStreams(t, cfg) })
		return func(t *testing.T) cqrs.Transport { return connect(t, cfg, "conformance") }
	})
}
