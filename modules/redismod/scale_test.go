package redismod_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func manyTopics(n int, got *sync.Map) []transport.TopicHandler {
	out := make([]transport.TopicHandler, n)
	for i := range out {
		out[i] = transport.TopicHandler{Topic: transport.Topic{Kind: transport.KindEvent, Name: fmt.Sprintf("Type%03d", i)},
			Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
				c, _ := got.LoadOrStore(d.Envelope().Name, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
				_ = d.Ack(ctx)
			})}
	}
	return out
}

// commands is the server's count of commands processed.
func commands(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_commands_processed")
	return 0
}

// A subscription's cost does not grow with its message types: subscribed
// to 200 event types it runs as many goroutines as subscribed to 2, and
// sends the server as many commands per second while idle (one read of all
// its streams, one look at the due set per claim interval; only the sweep
// for dead consumers, every REDIS_CLAIM_IDLE/2, visits each stream). Events
// of the first and the last type are delivered.
func TestSubscribe_CostDoesNotGrowWithTypes(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	cfg := testConfig(srv.URL())
	cfg.ClaimIdle, cfg.ClaimInterval = 30*time.Second, 100*time.Millisecond // the defaults: no sweep in the window
	measure := func(group string, n int) (goroutines int, perSecond float64, got *sync.Map) {
		tr := connect(t, cfg, group)
		got = &sync.Map{}
		g0 := runtime.NumGoroutine()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sub, err := tr.Subscribe(ctx, transport.Subscription{Group: group, Instance: "i1", Concurrency: 4, Topics: manyTopics(n, got)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // settled
		goroutines = runtime.NumGoroutine() - g0
		c0 := commands(t, rdb)
		time.Sleep(2 * time.Second)
		perSecond = float64(commands(t, rdb)-c0-1) / 2
		if group == "few" {
			_ = sub.Close(context.Background()) // not counted in the next one's window
		} else {
			t.Cleanup(func() { _ = sub.Close(context.Background()) })
		}
		return goroutines, perSecond, got
	}
	fewG, fewC, _ := measure("few", 2)
	manyG, manyC, got := measure("many", 200)
	t.Logf("goroutines: %d with 2 types, %d with 200; idle commands per second: %.1f with 2 types, %.1f with 200", fewG, manyG, fewC, manyC)
	if manyG > fewG+2 {
		t.Errorf("%d goroutines with 200 types against %d with 2: want no goroutine per type", manyG, fewG)
	}
	if manyC > fewC+5 {
		t.Errorf("%.1f idle commands/s with 200 types against %.1f with 2: want no growth with the types", manyC, fewC)
	}
	pub := connect(t, cfg, "pub")
	for _, name := range []string{"Type000", "Type199"} {
		env := &transport.Envelope{ID: cqrs.NewID(), Name: name, Kind: transport.KindEvent, ContentType: "application/json", Time: time.Now(), Payload: []byte(`{}`)}
		if err := pub.Publish(context.Background(), transport.Topic{Kind: transport.KindEvent, Name: name}, env); err != nil {
			t.Fatal(err)
		}
	}
	catgatest.Eventually(t, 10*time.Second, "Type000 and Type199 delivered", func() bool {
		_, a := got.Load("Type000")
		_, b := got.Load("Type199")
		return a && b
	})
}
