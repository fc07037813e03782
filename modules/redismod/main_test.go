package redismod_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/catga-go/catga/modules/redismod"
)

// go-redis's pool, after many failed dials, probes the server once a
// second until the client is closed, and returns within that second: a
// transport whose scheduler looked while Redis was down (the last test
// stops it) may leave one sleeping for a moment after Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// testConfig is a Config on url (or addrs, a cluster) with keys of its own.
func testConfig(url string) redismod.Config {
	return redismod.Config{
		URL: url, Prefix: fmt.Sprintf("t%06x", rand.IntN(1<<24)), HashTags: true,
		ClaimIdle: 2 * time.Second, ClaimInterval: 20 * time.Millisecond, Block: 200 * time.Millisecond,
	}.WithDefaults()
}

// connect starts a transport on cfg with a client of its own, closed at cleanup.
func connect(t *testing.T, cfg redismod.Config, name string) *redismod.Transport {
	t.Helper()
	tr, err := redismod.New(cfg, nil, name, testLogger)
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

func newBenchTransport(b *testing.B, cfg redismod.Config) (*redismod.Transport, error) {
	tr, err := redismod.New(cfg, nil, "bench", nil)
	if err != nil {
		return nil, err
	}
	if err := tr.Start(context.Background()); err != nil {
		return nil, err
	}
	b.Cleanup(func() { _ = tr.Close(context.Background()) })
	return tr, nil
}

var testLogger = zapDebug()
