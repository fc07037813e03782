package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// batch is how many events one PublishBatch carries in the pipelined
// publish comparisons: natsmod's default window (NATS_PUBLISH_WINDOW) and
// redismod's pipeline.
const batch = 256

// batches publishes b.N events in batches of batch with publish, which
// reports the first failure of its batch.
func batches(b *testing.B, publish func(n int) error) {
	for sent := 0; sent < b.N; {
		n := min(batch, b.N-sent)
		if err := publish(n); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
}

// orderEvents is n events for PublishBatch.
func orderEvents(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = OrderPlaced{OrderID: "o", Cents: 1}
	}
	return out
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func init() {
	// One op is one event stored by the broker (acked), from one producer;
	// nothing consumes: the publish path alone.
	register("NATSPublishBatch", "catga", func(b *testing.B, env Env) {
		pub, _ := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: natsTransport(b, natsConfig(env.NATS))})
		ctx := context.Background()
		b.ResetTimer()
		batches(b, func(n int) error { return firstErr(pub.PublishBatch(ctx, orderEvents(n)...)) })
	})

	// raw: nats.go jetstream's asynchronous publish, the same window of
	// pending acks, a message id each (as natsmod sends, for the stream's
	// dedup), the JSON payload; then the batch's acks awaited.
	register("NATSPublishBatch", "raw", func(b *testing.B, env Env) {
		cfg := natsConfig(env.NATS)
		natsTransport(b, cfg) // the streams, with natsmod's settings
		nc, err := nats.Connect(env.NATS)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(batch))
		subject := cfg.Prefix + ".events.OrderPlaced"
		futures := make([]jetstream.PubAckFuture, 0, batch)
		b.ResetTimer()
		batches(b, func(n int) error {
			futures = futures[:0]
			for range n {
				data, _ := json.Marshal(OrderPlaced{OrderID: "o", Cents: 1})
				f, err := js.PublishAsync(subject, data, jetstream.WithMsgID(cqrs.NewID()))
				if err != nil {
					return err
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return err
				}
			}
			return nil
		})
	})

	register("RedisPublishBatch", "catga", func(b *testing.B, env Env) {
		ctx := context.Background()
		pub, _ := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: redisTransport(b, env)})
		b.ResetTimer()
		batches(b, func(n int) error { return firstErr(pub.PublishBatch(ctx, orderEvents(n)...)) })
	})

	// raw: go-redis's pipeline of the batch's XADDs, one round trip a
	// batch (redismod caps streams from its janitor, not in the XADD).
	register("RedisPublishBatch", "raw", func(b *testing.B, env Env) {
		rdb := redis.NewClient(&redis.Options{Addr: env.Redis})
		defer rdb.Close()
		ctx := context.Background()
		key := fmt.Sprintf("raw:%06x", rand.IntN(1<<24))
		b.ResetTimer()
		batches(b, func(n int) error {
			pipe := rdb.Pipeline()
			for range n {
				data, _ := json.Marshal(OrderPlaced{OrderID: "o", Cents: 1})
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"p", data}})
			}
			_, err := pipe.Exec(ctx)
			return err
		})
	})
}

func BenchmarkNATSPublishBatch(b *testing.B) {
	compare(b, "NATSPublishBatch", Env{NATS: natstest.Start(b).URL()})
}

func BenchmarkRedisPublishBatch(b *testing.B) {
	compare(b, "RedisPublishBatch", Env{Redis: redistest.Start(b).Addr()})
}
