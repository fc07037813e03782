package natsmod_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// An instance that takes messages and dies without acking: a second
// instance of its group gets them after the ack wait.
func TestConsumerCrash_UnackedGoToAnotherInstance(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	cfg.AckWait = time.Second
	const count = 50
	var mu sync.Mutex
	got := map[int]int{}
	done := make(chan struct{})
	handler := cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
		mu.Lock()
		defer mu.Unlock()
		got[e.N]++
		if len(got) == count {
			close(done)
		}
		return nil
	}))
	// The group and its consumer exist; nothing is taken yet.
	first := connect(t, cfg, "first")
	b1, err := cqrs.New(cqrs.Options{Service: "crashy", Instance: "i1", Transport: first}, handler)
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	pub := connect(t, cfg, "pub")
	for i := range count {
		env := &transport.Envelope{ID: cqrs.NewID(), Name: "Tick", Kind: transport.KindEvent, ContentType: "application/json", Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
		if err := pub.Publish(context.Background(), transport.Topic{Kind: transport.KindEvent, Name: "Tick"}, env); err != nil {
			t.Fatal(err)
		}
	}
	// The crashing instance: it pulls everything on the group's consumer
	// and its process dies, acking nothing.
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(context.Background(), cfg.StreamPrefix+"_EVENTS", "crashy_events")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(count, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for range batch.Messages() {
		taken++
	}
	nc.Close()
	if taken != count {
		t.Fatalf("the crashing instance took %d, want %d", taken, count)
	}

	second := connect(t, cfg, "second")
	b2, err := cqrs.New(cqrs.Options{Service: "crashy", Instance: "i2", Transport: second}, handler)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := b2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b2.Stop(context.Background()) })
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the second instance got %d of %d", len(got), count)
	}
	t.Logf("%d unacked messages reached the second instance %v after it started (ack wait %v); lost 0", count, time.Since(start).Round(time.Millisecond), cfg.AckWait)
}
