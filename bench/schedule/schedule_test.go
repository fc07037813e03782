// Package schedule measures scheduled messages end to end: how fast a
// service schedules them (Bus.PublishAt from 16 goroutines, ns/op) and how
// late they arrive (each is due 500 ms after it was scheduled; the
// lateness of every one is measured from its due time to its handler),
// on each transport and each of natsmod's two ways.
package schedule

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

type Reminder struct {
	N   int   `json:"n"`
	Due int64 `json:"due"` // unix ns
}

const (
	publishers = 16
	delay      = 500 * time.Millisecond
)

// run schedules b.N reminders on tr and reports the lateness of their
// arrival (p50, p99, max, in ms) beside the time per schedule.
func run(b *testing.B, tr transport.Transport) {
	var mu sync.Mutex
	late := make([]time.Duration, 0, b.N)
	var handled atomic.Int64
	ctx := context.Background()
	bus, err := cqrs.New(cqrs.Options{Service: "bench", Instance: "i1", Transport: tr, Concurrency: 64},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Reminder](func(_ context.Context, r Reminder) error {
			d := time.Since(time.Unix(0, r.Due))
			mu.Lock()
			late = append(late, d)
			mu.Unlock()
			handled.Add(1)
			return nil
		})))
	if err != nil {
		b.Fatal(err)
	}
	if err := bus.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer bus.Stop(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= b.N {
				due := time.Now().Add(delay)
				if _, err := bus.PublishAt(ctx, due, Reminder{Due: due.UnixNano()}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	deadline := time.Now().Add(time.Minute)
	for handled.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d scheduled messages arrived within a minute", handled.Load(), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(late)
	if late[0] < 0 {
		b.Errorf("a message arrived %v before its time", -late[0])
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(late[len(late)/2]), "late-p50-ms")
	b.ReportMetric(ms(late[len(late)*99/100]), "late-p99-ms")
	b.ReportMetric(ms(late[len(late)-1]), "late-max-ms")
}

func BenchmarkSchedule(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		tr := memory.New(memory.Options{})
		defer tr.Close(context.Background())
		run(b, tr)
	})
	for _, way := range []string{"auto", "stream"} {
		name := map[string]string{"auto": "nats-server", "stream": "nats-stream"}[way]
		b.Run(name, func(b *testing.B) {
			id := fmt.Sprintf("%06x", rand.IntN(1<<24))
			cfg := natsmod.Config{URL: natstest.Start(b).URL(), Prefix: "s" + id, StreamPrefix: "S" + id, Schedules: way}.WithDefaults()
			tr, err := natsmod.New(cfg, "bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := tr.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer tr.Close(context.Background())
			run(b, tr)
		})
	}
	b.Run("redis", func(b *testing.B) {
		cfg := redismod.Config{URL: redistest.Start(b).URL(), Prefix: fmt.Sprintf("s%06x", rand.IntN(1<<24)), HashTags: true}.WithDefaults()
		tr, err := redismod.New(cfg, nil, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer tr.Close(context.Background())
		run(b, tr)
	})
}
