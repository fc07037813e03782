package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
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

	wmEvents(b, pub, sub, stream, closeSub) // Subscribe returns once the consumer group exists (XGROUP CREATE MKSTREAM)
}
