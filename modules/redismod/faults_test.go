package redismod_test

import (
	"context"
	"fmt"
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

type Tick struct {
	N int `json:"n"`
}

// counter is a bus on tr whose Tick handler counts each N.
func counter(t *testing.T, tr transport.Transport, service, instance string) (*sync.Mutex, map[int]int) {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	b, err := cqrs.New(cqrs.Options{Service: service, Instance: instance, Transport: tr, Concurrency: 64,
		Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			mu.Lock()
			got[e.N]++
			mu.Unlock()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return &mu, got
}

func waitAll(t *testing.T, mu *sync.Mutex, got map[int]int, want []int, within time.Duration) (lost []int, dups int) {
	t.Helper()
	catgatest.Poll(within, func() bool {
		mu.Lock()
		defer mu.Unlock()
		lost, dups = nil, 0
		for _, n := range want {
			switch c := got[n]; {
			case c == 0:
				lost = append(lost, n)
			case c > 1:
				dups += c - 1
			}
		}
		return len(lost) == 0
	})
	return lost, dups
}

func tickEnv(n int) *transport.Envelope {
	return &transport.Envelope{ID: cqrs.NewID(), Name: "Tick", Kind: transport.KindEvent, ContentType: "application/json",
		Time: time.Now(), Payload: fmt.Appendf(nil, `{"n":%d}`, n)}
}

var tickTopic = transport.Topic{Kind: transport.KindEvent, Name: "Tick"}

// An instance reads entries and dies without acking: another instance of
// the group claims them after REDIS_CLAIM_IDLE.
func TestConsumerCrash_PendingEntriesAreClaimed(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	const count = 50
	// The group exists before the events.
	first := connect(t, cfg, "first")
	sub, err := first.Subscribe(context.Background(), transport.Subscription{Group: "crashy", Instance: "dead",
		Topics: []transport.TopicHandler{{Topic: tickTopic, Handler: transport.DeliveryHandlerFunc(func(context.Context, transport.Delivery) {})}}})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.Close(context.Background())
	pub := connect(t, cfg, "pub")
	var want []int
	for i := range count {
		want = append(want, i)
		if err := pub.Publish(context.Background(), tickTopic, tickEnv(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The crashing consumer reads everything and never acks.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	key := cfg.Prefix + ":{events:Tick}"
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{Group: "crashy", Consumer: "dead", Streams: []string{key, ">"}, Count: count}).Result()
	if err != nil || len(res[0].Messages) != count {
		t.Fatalf("the crashing consumer read %v, %v; want %d", res, err, count)
	}
	start := time.Now()
	mu, got := counter(t, connect(t, cfg, "second"), "crashy", "alive")
	lost, dups := waitAll(t, mu, got, want, 20*time.Second)
	if len(lost) > 0 {
		t.Fatalf("lost %d of %d: %v", len(lost), count, lost)
	}
	t.Logf("%d entries of a dead consumer claimed by another %v after it started (claim idle %v); lost 0, duplicates %d",
		count, time.Since(start).Round(time.Millisecond), cfg.ClaimIdle, dups)
}

// Redis with AOF fsync always, killed (SIGKILL) and restarted three times
// while events are published steadily: every acknowledged publish is
// handled.
func TestRedisRestart_ThreeTimes_AOFAlwaysLosesNothingAcknowledged(t *testing.T) {
	total := 3000
	if testing.Short() {
		total = 600
	}
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	cfg := testConfig(srv.URL())
	cfg.DialTimeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, time.Second, time.Second
	mu, got := counter(t, connect(t, cfg, "consumer"), "ticks", "c1")
	pub := connect(t, cfg, "pub")
	var acked []int
	var ackedN, failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := pub.Publish(ctx, tickTopic, tickEnv(i))
			cancel()
			if err == nil {
				acked = append(acked, i)
				ackedN.Add(1)
			} else {
				failed.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(500 * time.Microsecond) // steady publishing, so the kill lands mid-stream
		}
	}()
	const restarts = 3
	var at []int64
	for r := 1; r <= restarts; r++ {
		catgatest.Eventually(t, time.Minute, fmt.Sprintf("not %d of %d publishes acknowledged before restart %d", r*total/(restarts+1), total, r),
			func() bool { return ackedN.Load() >= int64(r*total/(restarts+1)) })
		at = append(at, ackedN.Load())
		srv.Kill()
		time.Sleep(300 * time.Millisecond)
		srv.StartAgain(t)
	}
	before := at[0]
	<-done
	if before == 0 || before >= int64(total) {
		t.Fatalf("%d of %d acknowledged at the kill: it did not land while publishing", before, total)
	}
	lost, dups := waitAll(t, mu, got, acked, 30*time.Second)
	t.Logf("%d publishes, Redis (AOF always) SIGKILLed and restarted after %v acknowledged: acknowledged %d (go-redis retries across a restart), refused %d, lost %d, duplicates %d",
		total, at, len(acked), failed.Load(), len(lost), dups)
	if len(lost) > 0 {
		t.Fatalf("lost %d acknowledged events, first %v", len(lost), lost[:min(len(lost), 10)])
	}
}
