package redismod

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// The race the index's counter is for, step by step: a scheduler reads
// the index and finds its stream's set empty; a schedule then adds to the
// set and lowers the index (ZADD LT leaves the older, lower score as it
// is); the scheduler's update comes last. Without the counter it removes
// the entry, and the new message would wait unseen; with it the entry
// stays and the message is moved when due.
func TestScheduleSettle_AnUpdateReadTooEarlyLeavesTheIndex(t *testing.T) {
	cfg := Config{URL: redistest.Start(t).URL(), Prefix: fmt.Sprintf("t%06x", rand.IntN(1<<24)), HashTags: true}.WithDefaults()
	tr, err := New(cfg, nil, "race", nil) // not started: the test is the scheduler
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	ctx := context.Background()
	topic := transport.Topic{Kind: transport.KindEvent, Name: "Race"}
	stream, _ := tr.streamOf(topic, &transport.Envelope{})
	idx := []string{tr.k.scheduleIndex(), tr.k.scheduleGen()}
	// An index entry left from a message already moved: due, its set empty.
	past := time.Now().Add(-time.Minute).UnixMilli()
	if err := tr.rdb.ZAdd(ctx, idx[0], redisZ(past, stream)).Err(); err != nil {
		t.Fatal(err)
	}
	// 1. The scheduler looks and moves: nothing in the set.
	look, err := scheduleLook.Run(ctx, tr.rdb, idx, 64).Slice()
	if err != nil {
		t.Fatal(err)
	}
	now, _ := strconv.ParseInt(look[0].(string), 10, 64)
	if due := look[1].([]any); len(due) != 2 || due[0] != stream {
		t.Fatalf("look found %v due, want %s", due, stream)
	}
	gen := look[2].([]any)[0].(string)
	mv, err := scheduleMove.Run(ctx, tr.rdb, append(scheduledKeys(stream), stream), now, moveBatch).Slice()
	if err != nil || len(mv[0].([]any)) != 0 || mv[1].(string) != "" {
		t.Fatalf("move of an empty set: %v, %v", mv, err)
	}
	// 2. A schedule lands in between.
	env := &transport.Envelope{ID: "01RACE", Name: "Race", Kind: transport.KindEvent, Time: time.Now(),
		DeliverAt: time.Now().Add(300 * time.Millisecond), Payload: []byte(`{}`)}
	if err := tr.schedule(ctx, stream, env); err != nil {
		t.Fatal(err)
	}
	// 3. The scheduler's update, from what it read before the schedule.
	if err := scheduleSettle.Run(ctx, tr.rdb, idx, stream, gen, "").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.rdb.ZScore(ctx, idx[0], stream).Result(); err != nil {
		t.Fatalf("the index lost the stream with a message waiting: %v", err)
	}
	// When due, a look moves it into the stream.
	time.Sleep(time.Until(env.DeliverAt) + 10*time.Millisecond)
	if _, more := tr.moveDue(); more {
		t.Fatal("more due after one look of one message")
	}
	entries, err := tr.rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("stream holds %d entries (%v), want the scheduled one", len(entries), err)
	}
	if got, _ := envelopeOf(entries[0].Values); got == nil || got.ID != env.ID {
		t.Fatalf("stream entry %v, want message %s", entries[0].Values, env.ID)
	}
	if n, _ := tr.rdb.ZCard(ctx, idx[0]).Result(); n != 0 {
		t.Errorf("index holds %d streams after the move, want 0", n)
	}
}

func redisZ(score int64, member string) redis.Z {
	return redis.Z{Score: float64(score), Member: member}
}
