package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

func init() {
	register("RedisEvents", "watermill", wmRedisEvents)
}

// wmRedisEvents: watermill-redisstream on Redis Streams with go-redis v9.
// A publisher (XADD) and a subscriber in a consumer group (XREADGROUP,
// XACK per message), on a stream of their own per run. b.N JSON events
// from 16 publishers, each decoded, acked and counted by one consumer.
// The library's defaults throughout (one entry per XREADGROUP, BLOCK
// 100ms, no MAXLEN), but for ShouldStopOnReadErrors, which only stops the
// reader at once at Close instead of after a 500ms pause.
func wmRedisEvents(b *testing.B, env Env) {
	defer wmSettle(runtime.NumGoroutine())
	logger := watermill.NopLogger{}
	stream := fmt.Sprintf("watermill:%d:%s", b.N, watermill.NewShortUUID())
	// Publisher and subscriber each close their client: one each.
	pubClient := redis.NewClient(&redis.Options{Addr: env.Redis})
	subClient := redis.NewClient(&redis.Options{Addr: env.Redis})

	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: pubClient}, logger)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := pub.Close(); err != nil {
			b.Errorf("watermill redis publisher close: %v", err)
		}
	}()
	// Runs after the subscriber has closed: the stream goes with the run.
	defer func() {
		if err := pubClient.Del(context.Background(), stream).Err(); err != nil {
			b.Errorf("delete stream %s: %v", stream, err)
		}
	}()
	var closing atomic.Bool
	sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:                 subClient,
		ConsumerGroup:          "watermill",
		ShouldStopOnReadErrors: func(error) bool { return closing.Load() },
	}, logger)
	if err != nil {
		b.Fatal(err)
	}
	closeSub := func() {
		closing.Store(true)
		if err := sub.Close(); err != nil {
			b.Errorf("watermill redis subscriber close: %v", err)
		}
	}
	defer closeSub()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Subscribe returns once the consumer group exists (XGROUP CREATE MKSTREAM).
	msgs, err := sub.Subscribe(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for msg := range msgs {
			var e OrderPlaced
			if err := json.Unmarshal(msg.Payload, &e); err != nil {
				b.Error(err)
			}
			msg.Ack()
			handled.Add(1)
		}
	}()
	// The consumer loop ends when the subscriber closes its output.
	defer func() { <-consumed }()
	defer closeSub()

	b.ResetTimer()
	PublishParallel(b, func(int) error {
		payload, err := json.Marshal(OrderPlaced{OrderID: "o", Cents: 1})
		if err != nil {
			return err
		}
		return pub.Publish(stream, message.NewMessage(watermill.NewUUID(), payload))
	})
	WaitCount(b, &handled, b.N)
	b.StopTimer()
}
