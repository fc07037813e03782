package memory_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var topic = transport.Topic{Kind: transport.KindEvent, Name: "Thing"}

func env(id string) *transport.Envelope {
	return &transport.Envelope{ID: id, Name: "Thing", Kind: transport.KindEvent, Payload: []byte(`{}`)}
}

func TestRequest_NoServerFailsAtOnce(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	start := time.Now()
	_, err := tr.Request(context.Background(), transport.Topic{Kind: transport.KindCommand, Name: "X"}, env("1"))
	if !errors.Is(err, cqrs.ErrNoHandler) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("err %v after %v, want ErrNoHandler at once", err, time.Since(start))
	}
}

func TestPublish_FullQueueWaitsForContext(t *testing.T) {
	tr := memory.New(memory.Options{QueueSize: 1})
	defer tr.Close(context.Background())
	// A group that subscribed once and is gone keeps its queue.
	sub, err := tr.Subscribe(context.Background(), transport.Subscription{Group: "g", Instance: "i", Topics: []transport.TopicHandler{{
		Topic: topic, Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) { _ = d.Ack(ctx) }),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Publish(context.Background(), topic, env("1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := tr.Publish(ctx, topic, env("2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to a full queue: %v, want the context's deadline", err)
	}
}

func TestDelivery_UnsettledComesBack(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	attempts := make(chan int, 2)
	sub, err := tr.Subscribe(context.Background(), transport.Subscription{Group: "g", Instance: "i", Topics: []transport.TopicHandler{{
		Topic: topic, Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
			attempts <- d.Envelope().Attempt
			if d.Envelope().Attempt == 2 {
				_ = d.Ack(ctx)
			} // the first delivery is left unsettled, as by a crashed handler
		}),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	if err := tr.Publish(context.Background(), topic, env("1")); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		select {
		case got := <-attempts:
			if got != want {
				t.Fatalf("attempt %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("attempt %d never came", want)
		}
	}
}

func TestReplay_GoesToItsGroupOnly(t *testing.T) {
	b := memory.NewBroker(memory.Options{})
	defer b.Close()
	got := map[string]chan string{"a": make(chan string, 4), "b": make(chan string, 4)}
	var deadLettered atomic.Bool
	for g, ch := range got {
		tr := memory.NewTransport(b)
		sub, err := tr.Subscribe(context.Background(), transport.Subscription{Group: g, Instance: "i", Topics: []transport.TopicHandler{{
			Topic: topic, Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
				if g == "a" && deadLettered.CompareAndSwap(false, true) {
					_ = d.DeadLetter(ctx, &transport.DeadLetter{Envelope: *d.Envelope(), Service: g, Attempts: 1})
				} else {
					_ = d.Ack(ctx)
				}
				ch <- d.Envelope().ID // after settling
			}),
		}}})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close(context.Background())
	}
	if err := memory.NewTransport(b).Publish(context.Background(), topic, env("m1")); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"a", "b"} {
		<-got[g]
	}
	dls, _ := b.ListDeadLetters(context.Background(), "a", 0)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters for a, want 1", len(dls))
	}
	if err := b.ReplayDeadLetter(context.Background(), dls[0].ID); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got["a"]:
		if id != "m1" {
			t.Fatalf("replayed %s, want m1", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replay never reached group a")
	}
	select {
	case id := <-got["b"]:
		t.Fatalf("group b got %s again; a replay is for its group only", id)
	case <-time.After(50 * time.Millisecond):
	}
	if left, _ := b.ListDeadLetters(context.Background(), "", 0); len(left) != 0 {
		t.Fatalf("%d dead letters after replay, want 0", len(left))
	}
	if _, err := b.GetDeadLetter(context.Background(), dls[0].ID); cqrs.CodeOf(err) != cqrs.CodeNotFound {
		t.Fatalf("get after replay: %v, want not_found", err)
	}
}

// A queue holds what waits, not a buffer of its limit: 200 topics
// subscribed by one group take well under a MiB (a channel of the default
// 65,536 items was 512 KiB each, 100 MiB here), and a queue still takes up
// to its limit and delivers in order.
func TestQueues_DoNotPreallocate(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	var got []string
	var mu sync.Mutex
	topics := make([]transport.TopicHandler, 200)
	for i := range topics {
		topics[i] = transport.TopicHandler{Topic: transport.Topic{Kind: transport.KindEvent, Name: fmt.Sprintf("T%03d", i)},
			Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
				mu.Lock()
				got = append(got, d.Envelope().ID)
				mu.Unlock()
				_ = d.Ack(ctx)
			})}
	}
	before := heapInuse()
	sub, err := tr.Subscribe(context.Background(), transport.Subscription{Group: "g", Instance: "i", Concurrency: 1, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	grown := max(int64(heapInuse())-int64(before), 0)
	t.Logf("200 topics subscribed: heap grew %.2f MiB", float64(grown)/(1<<20))
	if grown > 1<<20 {
		t.Errorf("200 topics subscribed: heap grew %.1f MiB, want under 1 MiB", float64(grown)/(1<<20))
	}
	tp := transport.Topic{Kind: transport.KindEvent, Name: "T007"}
	for i := range 3000 {
		e := env(fmt.Sprint(i))
		e.Name = "T007"
		if err := tr.Publish(context.Background(), tp, e); err != nil {
			t.Fatal(err)
		}
	}
	catgatest.Eventually(t, 10*time.Second, "3000 delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3000 })
	for i, id := range got {
		if id != fmt.Sprint(i) {
			t.Fatalf("delivery %d is message %s: want the queue's order", i, id)
		}
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A group whose queue is full (its instance stopped) holds back none of
// the other groups' scheduled messages.
func TestSchedule_AFullGroupHoldsBackNoOther(t *testing.T) {
	b := memory.NewBroker(memory.Options{QueueSize: 1})
	defer b.Close()
	tr := memory.NewTransport(b)
	defer tr.Close(context.Background())
	topic := transport.Topic{Kind: transport.KindEvent, Name: "Due"}
	stalled, err := tr.Subscribe(context.Background(), transport.Subscription{Group: "stalled", Instance: "i", Topics: []transport.TopicHandler{{Topic: topic,
		Handler: transport.DeliveryHandlerFunc(func(context.Context, transport.Delivery) {})}}}) // never settles
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	if _, err := tr.Subscribe(context.Background(), transport.Subscription{Group: "live", Instance: "i", Topics: []transport.TopicHandler{{Topic: topic,
		Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) { got <- d.Envelope().ID; _ = d.Ack(ctx) })}}}); err != nil {
		t.Fatal(err)
	}
	_ = stalled.Close(context.Background()) // its queue fills and stays full
	due := time.Now().Add(100 * time.Millisecond)
	for i := range 5 {
		env := &transport.Envelope{ID: fmt.Sprint("m", i), Name: "Due", Kind: transport.KindEvent, DeliverAt: due, Payload: []byte(`{}`)}
		if err := tr.Publish(context.Background(), topic, env); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		select {
		case <-got:
		case <-time.After(2 * time.Second):
			t.Fatalf("the live group got %d of 5 scheduled messages: the full group held the rest back", i)
		}
	}
}
