package redismod_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// arrivalsOf is a bus on tr whose Tick handler records when each N came.
func arrivalsOf(t *testing.T, tr transport.Transport, service string) (*sync.Mutex, map[int][]time.Time) {
	t.Helper()
	var mu sync.Mutex
	got := map[int][]time.Time{}
	b, err := cqrs.New(cqrs.Options{Service: service, Instance: "i1", Transport: tr, Concurrency: 64},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			mu.Lock()
			got[e.N] = append(got[e.N], time.Now())
			mu.Unlock()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return &mu, got
}

// checkArrivals fails for each N of due not handled exactly once within
// [due, due+precision].
func checkArrivals(t *testing.T, mu *sync.Mutex, got map[int][]time.Time, due map[int]time.Time, precision time.Duration) {
	t.Helper()
	catgatest.Eventually(t, 30*time.Second, "scheduled messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(due)
	})
	time.Sleep(300 * time.Millisecond) // a duplicate has time to show
	mu.Lock()
	defer mu.Unlock()
	var worst time.Duration
	for n, at := range due {
		ts := got[n]
		if len(ts) != 1 {
			t.Errorf("tick %d handled %d times, want once", n, len(ts))
			continue
		}
		late := ts[0].Sub(at)
		if late < 0 || late > precision {
			t.Errorf("tick %d arrived %v after its time, want within [0, %v]", n, late, precision)
		}
		worst = max(worst, late)
	}
	t.Logf("%d scheduled messages, the latest %v after its time", len(due), worst)
}

// Scheduled messages survive a SIGKILL of Redis (AOF, fsync always) and a
// restart of the service that scheduled them: all arrive once, on time.
func TestSchedule_SurvivesRedisKillAndServiceRestart(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	cfg := testConfig(srv.URL())
	pubTr := connect(t, cfg, "scheduler")
	pub, err := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: pubTr})
	if err != nil {
		t.Fatal(err)
	}
	mu, got := arrivalsOf(t, connect(t, cfg, "consumer"), "ticks")
	count := 50
	due := map[int]time.Time{}
	start := time.Now().Add(3 * time.Second)
	for i := range count {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		if _, err := pub.PublishAt(context.Background(), at, Tick{N: i}); err != nil {
			t.Fatal(err)
		}
		due[i] = at
	}
	// The service that scheduled them stops; Redis dies and comes back.
	_ = pubTr.Close(context.Background())
	srv.Kill()
	time.Sleep(300 * time.Millisecond)
	srv.StartAgain(t)
	checkArrivals(t, mu, got, due, cfg.ScheduleInterval+500*time.Millisecond)
}

// Four processes schedule at once, with due times close together, while
// their schedulers move: the index's counter keeps every message in view,
// so each arrives once, on time.
func TestSchedule_ConcurrentSchedulersLoseNothing(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	mu, got := arrivalsOf(t, connect(t, cfg, "consumer"), "ticks")
	per := 200
	if testing.Short() {
		per = 50
	}
	var dmu sync.Mutex
	due := map[int]time.Time{}
	var wg sync.WaitGroup
	for p := range 4 {
		b, err := cqrs.New(cqrs.Options{Service: "pub", Instance: fmt.Sprint("p", p), Transport: connect(t, cfg, fmt.Sprint("pub", p))})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				n := p*per + i
				at := time.Now().Add(time.Duration(50+(n*7)%400) * time.Millisecond)
				if _, err := b.PublishAt(context.Background(), at, Tick{N: n}); err != nil {
					t.Error(err)
					return
				}
				dmu.Lock()
				due[n] = at
				dmu.Unlock()
			}
		}()
	}
	wg.Wait()
	checkArrivals(t, mu, got, due, cfg.ScheduleInterval+500*time.Millisecond)
}
