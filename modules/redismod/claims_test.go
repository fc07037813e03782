package redismod_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func eventEnv(name string) *transport.Envelope {
	return &transport.Envelope{ID: cqrs.NewID(), Name: name, Kind: transport.KindEvent, ContentType: "application/json", Time: time.Now(), Payload: []byte(`{}`)}
}

// Two subscriptions of one group reading different streams (as a bus's
// Subscribe and Serve do): each takes over the entries a dead consumer of
// the group left on its own streams. The sweep's lease is the
// subscription's, not the group's: with one lease per group, the
// subscription that asked first each round swept, and the other never did.
func TestSweep_EachSubscriptionOfAGroupSweepsItsStreams(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	cfg := testConfig(srv.URL()) // REDIS_CLAIM_IDLE 2s: a sweep every second
	tr := connect(t, cfg, "live")
	ctx := context.Background()
	got := sync.Map{}
	for _, name := range []string{"Left", "Right"} {
		key := cfg.Prefix + ":{events:" + name + "}"
		if err := rdb.XGroupCreateMkStream(ctx, key, "g", "$").Err(); err != nil {
			t.Fatal(err)
		}
		if err := tr.Publish(ctx, transport.Topic{Kind: transport.KindEvent, Name: name}, eventEnv(name)); err != nil {
			t.Fatal(err)
		}
		// A consumer of the group takes it and dies.
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{key, ">"}, Count: 1}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"Left", "Right"} {
		sub, err := tr.Subscribe(ctx, transport.Subscription{Group: "g", Instance: "i-" + name, Topics: []transport.TopicHandler{{
			Topic: transport.Topic{Kind: transport.KindEvent, Name: name},
			Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
				got.Store(d.Envelope().Name, true)
				_ = d.Ack(ctx)
			}),
		}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close(context.Background()) })
	}
	catgatest.Eventually(t, 10*time.Second, "both dead consumer's entries taken over", func() bool {
		_, l := got.Load("Left")
		_, r := got.Load("Right")
		return l && r
	})
}

// A nak's redelivery comes from the group's due set within the claim
// interval of its delay, also when another subscription of the group reads
// the same due set: it leaves the members of streams it does not read to
// their own subscription (it removed them, so they came back only with the
// sweep, up to REDIS_CLAIM_IDLE/2 later).
func TestNak_RedeliveredOnTimeBesideAnotherSubscriptionOfTheGroup(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.ClaimIdle = 30 * time.Second // the sweep every 15 s: too late to hide a lost due entry
	tr := connect(t, cfg, "naks")
	ctx := context.Background()
	other, err := tr.Subscribe(ctx, transport.Subscription{Group: "g", Instance: "other", Topics: []transport.TopicHandler{{
		Topic:   transport.Topic{Kind: transport.KindEvent, Name: "Other"},
		Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) { _ = d.Ack(ctx) }),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	type arrival struct {
		attempt int
		at      time.Time
	}
	arrivals := make(chan arrival, 100)
	sub, err := tr.Subscribe(ctx, transport.Subscription{Group: "g", Instance: "naker", Topics: []transport.TopicHandler{{
		Topic: transport.Topic{Kind: transport.KindEvent, Name: "Naked"},
		Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
			arrivals <- arrival{d.Envelope().Attempt, time.Now()}
			if d.Envelope().Attempt == 1 {
				_ = d.Nak(ctx, 200*time.Millisecond)
				return
			}
			_ = d.Ack(ctx)
		}),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	for i := range 6 {
		if err := tr.Publish(ctx, transport.Topic{Kind: transport.KindEvent, Name: "Naked"}, eventEnv("Naked")); err != nil {
			t.Fatal(err)
		}
		first := <-arrivals
		select {
		case second := <-arrivals:
			if late := second.at.Sub(first.at); second.attempt != 2 || late > 3*time.Second {
				t.Fatalf("message %d: attempt %d after %v, want attempt 2 within 3 s of a 200 ms nak", i, second.attempt, late)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: naked for 200 ms, not redelivered within 5 s", i)
		}
	}
}

// Lag reports, per topic of a subscription, what waits for the group and
// what it holds unacknowledged.
func TestLag_PendingAndUnackedPerTopic(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	tr := connect(t, cfg, "lag")
	ctx := context.Background()
	release := make(chan struct{})
	sub, err := tr.Subscribe(ctx, transport.Subscription{Group: "g", Instance: "i1", Concurrency: 1, Topics: []transport.TopicHandler{{
		Topic: transport.Topic{Kind: transport.KindEvent, Name: "Slow"},
		Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
			<-release
			_ = d.Ack(ctx)
		}),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(release); _ = sub.Close(context.Background()) }()
	for range 5 {
		if err := tr.Publish(ctx, transport.Topic{Kind: transport.KindEvent, Name: "Slow"}, eventEnv("Slow")); err != nil {
			t.Fatal(err)
		}
	}
	var last []transport.ConsumerLag
	catgatest.Eventually(t, 5*time.Second, "lag of Slow: 5 pending or unacked, one in the handler", func() bool {
		lags, err := tr.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = lags
		return len(lags) == 1 && lags[0].Group == "g" && lags[0].Topic.Name == "Slow" && lags[0].Pending+lags[0].Unacked == 5 && lags[0].Unacked >= 1
	})
	t.Logf("lag %+v", last)
}
