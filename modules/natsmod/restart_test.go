package natsmod_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

type Tick struct {
	N int `json:"n"`
}

// Events published steadily while the server stops and starts again (same
// store) three times: every publish the broker acknowledged is handled.
func TestBrokerRestart_ThreeTimes_NothingAcknowledgedIsLost(t *testing.T) {
	total := 10_000
	if testing.Short() {
		total = 2_000
	}
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	var mu sync.Mutex
	handled := map[int]int{}
	consumer := connect(t, cfg, "consumer")
	bus, err := cqrs.New(cqrs.Options{Service: "ticks", Instance: "c1", Transport: consumer, Concurrency: 64,
		Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			mu.Lock()
			handled[e.N]++
			mu.Unlock()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })

	pub := connect(t, cfg, "publisher")
	topic := transport.Topic{Kind: transport.KindEvent, Name: "Tick"}
	var acked atomic.Int64
	var retries atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			env := &transport.Envelope{ID: cqrs.NewID(), Name: "Tick", Kind: transport.KindEvent, ContentType: "application/json",
				Time: time.Now(), Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
			// A publish that fails is retried with the same id: stored once.
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := pub.Publish(ctx, topic, env)
				cancel()
				if err == nil {
					acked.Add(1)
					break
				}
				retries.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	const restarts = 3
	for r := 1; r <= restarts; r++ {
		catgatest.Poll(30*time.Second, func() bool { return acked.Load() >= int64(r*total/(restarts+1)) })
		srv.Shutdown()
		time.Sleep(300 * time.Millisecond)
		srv.StartAgain(t)
	}
	<-done
	catgatest.Poll(60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == total
	})
	mu.Lock()
	defer mu.Unlock()
	var lost []int
	dups := 0
	for i := range total {
		switch c := handled[i]; {
		case c == 0:
			lost = append(lost, i)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d events, %d restarts: acknowledged %d, publish retries %d, lost %d, duplicates %d", total, restarts, acked.Load(), retries.Load(), len(lost), dups)
	if len(lost) > 0 {
		t.Fatalf("lost %d acknowledged events, first %v", len(lost), lost[:min(len(lost), 10)])
	}
}
