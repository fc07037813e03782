package redismod_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/modules/redismod/redistest"
)

// Trimming keeps every entry some group has not acknowledged.
func TestTrim_KeepsWhatAGroupHasNotAcked(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	tr := connect(t, cfg, "trim")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	key := cfg.Prefix + ":{events:Tick}"
	for _, g := range []string{"fast", "slow"} {
		if err := rdb.XGroupCreateMkStream(ctx, key, g, "$").Err(); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for range 100 {
		id, _ := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"k", "v"}}).Result()
		ids = append(ids, id)
	}
	read := func(g string, n int64) []string {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: g, Consumer: "c", Streams: []string{key, ">"}, Count: n}).Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range res[0].Messages {
			out = append(out, m.ID)
		}
		return out
	}
	rdb.XAck(ctx, key, "fast", read("fast", 100)...)
	slow := read("slow", 60)
	rdb.XAck(ctx, key, "slow", slow[:30]...) // 30 acked, 30 pending, 40 never read

	res, err := tr.Trim(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if res.Trimmed != 30 || res.DroppedUnacked != 0 {
		t.Fatalf("trim %+v, want 30 trimmed (acked by both groups) and none dropped", res)
	}
	first, _ := rdb.XRangeN(ctx, key, "-", "+", 1).Result()
	if first[0].ID != ids[30] {
		t.Fatalf("first entry after trim %s, want %s (the oldest the slow group has pending)", first[0].ID, ids[30])
	}
}
