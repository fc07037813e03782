package natsmod_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// Scheduled messages survive a restart of the server (file storage) and
// of the service that scheduled them, both ways of scheduling: those due
// while the server was down arrive once it is back, the others on time.
func TestSchedule_SurvivesBrokerAndServiceRestart(t *testing.T) {
	for _, way := range []string{"server", "fallback"} {
		t.Run(way, func(t *testing.T) {
			srv := natstest.Start(t)
			cfg := testConfig(srv)
			if way == "fallback" {
				cfg.Schedules = "stream"
			}
			open := func(name string) *natsmod.Transport { return connect(t, cfg, name) }
			var mu sync.Mutex
			got := map[int][]time.Time{}
			consumer, err := cqrs.New(cqrs.Options{Service: "ticks", Instance: "c1", Transport: open("consumer")},
				cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
					mu.Lock()
					got[e.N] = append(got[e.N], time.Now())
					mu.Unlock()
					return nil
				})))
			if err != nil {
				t.Fatal(err)
			}
			if err := consumer.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = consumer.Stop(context.Background()) })

			pubTr := open("scheduler")
			pub, err := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: pubTr})
			if err != nil {
				t.Fatal(err)
			}
			const each = 25
			due := map[int]time.Time{}
			now := time.Now()
			for i := range 2 * each {
				at := now.Add(time.Second + time.Duration(i%each)*20*time.Millisecond) // due while the server is down
				if i >= each {
					at = at.Add(4 * time.Second) // due after it is back
				}
				if _, err := pub.PublishAt(context.Background(), at, Tick{N: i}); err != nil {
					t.Fatal(err)
				}
				due[i] = at
			}
			_ = pubTr.Close(context.Background()) // the service that scheduled them is gone
			srv.Shutdown()
			time.Sleep(time.Until(now.Add(2 * time.Second)))
			srv.StartAgain(t)
			back := time.Now()
			catgatest.Eventually(t, 30*time.Second, "scheduled messages handled after the restart", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) == len(due)
			})
			time.Sleep(500 * time.Millisecond) // a duplicate has time to show
			mu.Lock()
			defer mu.Unlock()
			var worstDown, worstOn time.Duration
			for n, at := range due {
				ts := got[n]
				if len(ts) != 1 {
					t.Errorf("tick %d handled %d times, want once", n, len(ts))
					continue
				}
				if ts[0].Before(at) {
					t.Errorf("tick %d arrived %v before its time", n, at.Sub(ts[0]))
				}
				if n < each {
					worstDown = max(worstDown, ts[0].Sub(back))
				} else {
					worstOn = max(worstOn, ts[0].Sub(at))
				}
			}
			if worstDown > 5*time.Second {
				t.Errorf("messages due while the server was down came up to %v after it was back, want within 5s", worstDown)
			}
			if worstOn > 1500*time.Millisecond {
				t.Errorf("messages due after the restart came up to %v late, want within 1.5s", worstOn)
			}
			t.Logf("%s: due while down: within %v of the server's return; due after: at most %v late", way, worstDown, worstOn)
		})
	}
}

// A system made before message scheduling (streams without its subjects,
// messages waiting in the fallback stream) keeps working once its server
// schedules: the streams take the subjects, the fallback's messages are
// still delivered, and new ones go through the server.
func TestSchedule_UpgradeFromStreamsOfAnOlderBuildOrServer(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	for _, s := range []jetstream.StreamConfig{
		{Name: cfg.StreamPrefix + "_EVENTS", Subjects: []string{cfg.Prefix + ".events.*"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage},
		{Name: cfg.StreamPrefix + "_COMMANDS", Subjects: []string{cfg.Prefix + ".commands.*"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage},
	} {
		if _, err := js.CreateStream(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Scheduled on the old way, as on a 2.9 server.
	oldCfg := cfg
	oldCfg.Schedules = "stream"
	old := connect(t, oldCfg, "old")
	oldBus, _ := cqrs.New(cqrs.Options{Service: "pub", Instance: "p0", Transport: old})
	oldDue := time.Now().Add(2 * time.Second)
	if _, err := oldBus.PublishAt(ctx, oldDue, Tick{N: 1}); err != nil {
		t.Fatal(err)
	}
	_ = old.Close(ctx)

	tr := connect(t, cfg, "new")
	if !natsmod.SchedulesNative(tr) {
		t.Fatal("the newest server does not schedule")
	}
	s, _ := js.Stream(ctx, cfg.StreamPrefix+"_EVENTS")
	if c := s.CachedInfo().Config; !c.AllowMsgSchedules || !slices.Contains(c.Subjects, cfg.Prefix+".schedules.events.*") {
		t.Fatalf("the events stream was not given scheduling: %+v", c)
	}
	var mu sync.Mutex
	got := map[int]time.Time{}
	b, err := cqrs.New(cqrs.Options{Service: "ticks", Instance: "c1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			mu.Lock()
			got[e.N] = time.Now()
			mu.Unlock()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(ctx) })
	newDue := time.Now().Add(time.Second)
	if _, err := b.PublishAt(ctx, newDue, Tick{N: 2}); err != nil {
		t.Fatal(err)
	}
	catgatest.Eventually(t, 15*time.Second, "both scheduled messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if got[1].Before(oldDue) || got[2].Before(newDue) {
		t.Fatalf("arrived early: %v before %v, %v before %v", got[1], oldDue, got[2], newDue)
	}
}

// On the server's scheduling a schedule lives in a stream with a max age:
// PublishAt refuses a time beyond it at once (before any transaction
// commits it); the fallback stream has no such limit.
func TestSchedule_BeyondTheStreamsMaxAgeIsRefusedAtPublishAt(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	cfg.MaxAge = time.Hour
	bus, err := cqrs.New(cqrs.Options{Service: "pub", Instance: "p1", Transport: connect(t, cfg, "server")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = bus.PublishAt(ctx, time.Now().Add(2*time.Hour), Tick{N: 1})
	if err == nil || !cqrs.IsPermanent(err) || !strings.Contains(err.Error(), "1h0m0s") {
		t.Fatalf("PublishAt 2h ahead of a 1h max age: %v, want a permanent error naming the limit", err)
	}
	if _, err := bus.PublishAt(ctx, time.Now().Add(30*time.Minute), Tick{N: 2}); err != nil {
		t.Fatalf("PublishAt within the max age: %v", err)
	}
	stream := cfg
	stream.Schedules = "stream"
	fb, _ := cqrs.New(cqrs.Options{Service: "pub", Instance: "p2", Transport: connect(t, stream, "fallback")})
	if _, err := fb.PublishAt(ctx, time.Now().Add(2*time.Hour), Tick{N: 3}); err != nil {
		t.Fatalf("PublishAt 2h ahead on the fallback stream: %v", err)
	}
}
