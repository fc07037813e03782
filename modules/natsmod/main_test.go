package natsmod_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "service" {
		os.Exit(runService()) // this test binary re-executed as a service process
	}
	goleak.VerifyTestMain(m)
}

// testConfig is a Config on srv with subjects and streams of its own.
func testConfig(srv *natstest.Server) natsmod.Config { return testConfigAt(srv.URL()) }

// deleteStreams removes cfg's streams, for a server the test shares.
func deleteStreams(t *testing.T, cfg natsmod.Config) {
	nc, err := nats.Connect(cfg.URL)
	if err != nil {
		return // an embedded server is gone already
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, s := range []string{"_EVENTS", "_COMMANDS", "_DLQ", "_SCHEDULES"} {
		_ = js.DeleteStream(context.Background(), cfg.StreamPrefix+s)
	}
}

func testConfigAt(url string) natsmod.Config {
	id := fmt.Sprintf("%06x", rand.IntN(1<<24))
	return natsmod.Config{
		URL: url, Prefix: "t" + id, StreamPrefix: "T" + id,
		AckWait: 5 * time.Second, ReconnectWait: 100 * time.Millisecond, PingInterval: 500 * time.Millisecond,
	}.WithDefaults()
}

// connect starts a transport on cfg, closed at cleanup.
func connect(t *testing.T, cfg natsmod.Config, name string) *natsmod.Transport {
	t.Helper()
	tr, err := natsmod.New(cfg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
	})
	return tr
}
