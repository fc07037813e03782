package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// redisTransport is a started redismod transport on env's server, with
// keys of its own, closed at cleanup.
func redisTransport(b *testing.B, env Env) *redismod.Transport {
	b.Helper()
	cfg := redismod.Config{URL: "redis://" + env.Redis + "/0", Prefix: fmt.Sprintf("b%06x", rand.IntN(1<<24)), HashTags: true}.WithDefaults()
	tr, err := redismod.New(cfg, nil, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close(context.Background()) })
	return tr
}

func init() {
	register("RedisEvents", "catga", func(b *testing.B, env Env) {
		ctx := context.Background()
		tr := redisTransport(b, env)
		var handled atomic.Int64
		bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "c1", Transport: tr},
			cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderPlaced](func(context.Context, OrderPlaced) error { handled.Add(1); return nil })))
		if err != nil {
			b.Fatal(err)
		}
		if err := bus.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer bus.Stop(ctx)
		b.ResetTimer()
		PublishParallel(b, func(int) error { return bus.Publish(ctx, OrderPlaced{OrderID: "o", Cents: 1}) })
		WaitCount(b, &handled, b.N)
		b.StopTimer() // teardown is not the work
	})

	// raw: go-redis doing the same: XADD of the JSON payload, one consumer
	// reading XREADGROUP COUNT 100 with BLOCK, decoding each entry, and one
	// XACK per batch.
	register("RedisEvents", "raw", func(b *testing.B, env Env) {
		rdb := redis.NewClient(&redis.Options{Addr: env.Redis})
		defer rdb.Close()
		ctx := context.Background()
		key := fmt.Sprintf("raw:%06x", rand.IntN(1<<24))
		if err := rdb.XGroupCreateMkStream(ctx, key, "g", "$").Err(); err != nil {
			b.Fatal(err)
		}
		var handled atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: 100, Block: 100 * time.Millisecond}).Result()
				if err != nil {
					continue
				}
				ids := make([]string, 0, len(res[0].Messages))
				for _, m := range res[0].Messages {
					var e OrderPlaced
					_ = jsonUnmarshal([]byte(m.Values["payload"].(string)), &e)
					ids = append(ids, m.ID)
				}
				rdb.XAck(ctx, key, "g", ids...)
				handled.Add(int64(len(ids)))
			}
		}()
		b.ResetTimer()
		PublishParallel(b, func(int) error {
			payload, _ := jsonMarshal(OrderPlaced{OrderID: "o", Cents: 1})
			return rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"payload", payload}}).Err()
		})
		WaitCount(b, &handled, b.N)
		b.StopTimer() // teardown is not the work
		close(stop)
		wg.Wait()
	})
}

func BenchmarkRedisEvents(b *testing.B) {
	compare(b, "RedisEvents", Env{Redis: redistest.Start(b).Addr()})
}
