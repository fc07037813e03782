// Package brokertest holds the test scenarios the broker modules (natsmod,
// redismod) share, so each states its broker's part (how to stop and start
// it, how long "at once" is) and the scenario is written once.
package brokertest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

// Tick is the event the scenarios publish and handle.
type Tick struct{ N int }

// Reserve is a command no instance of the scenarios serves.
type Reserve struct{ SKU string }

// statusOf is the status of GET url, or 0 when nothing answers.
func statusOf(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// StartWaitsForTheBroker is the scenario of a service started while its
// broker is down: its HTTP server answers meanwhile (/health 200, /ready
// 503); once the broker is up (up is called 5 s into the start) start
// completes without a restart, /ready turns 200 and an event published
// then is handled. opts are the service's modules (catga.Module, the
// broker's module, its config) with the broker stopped; broker names it in
// failures.
func StartWaitsForTheBroker(t *testing.T, broker string, up func(), opts ...fx.Option) {
	t.Helper()
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("CATGA_SERVICE", "waits")
	got := make(chan int, 1)
	var (
		hs  *httpmod.Server
		bus *cqrs.Bus
	)
	app := fxtest.New(t, append(opts,
		cqrs.Event[Tick](func(_ context.Context, e Tick) error {
			select {
			case got <- e.N:
			default:
			}
			return nil
		}),
		fx.Populate(&hs, &bus),
	)...)
	defer http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	started := make(chan error, 1)
	go func() { started <- app.Start(ctx) }()
	ended := false // Start has returned
	defer func() {
		if !ended {
			<-started
			_ = app.Stop(context.Background())
		}
	}()

	if !catgatest.Poll(time.Until(began.Add(3*time.Second)), func() bool { return hs.Addr() != "" }) {
		t.Fatalf("the HTTP server is not listening 3s into a start waiting for %s", broker)
	}
	base := "http://" + hs.Addr()
	for time.Since(began) < 5*time.Second {
		select {
		case err := <-started:
			ended = true
			t.Fatalf("start ended while %s is down: %v", broker, err)
		default:
		}
		if s := statusOf(base + "/health"); s != http.StatusOK {
			t.Fatalf("/health %d while waiting for %s, want 200", s, broker)
		}
		if s := statusOf(base + "/ready"); s != http.StatusServiceUnavailable {
			t.Fatalf("/ready %d while waiting for %s, want 503", s, broker)
		}
		time.Sleep(250 * time.Millisecond) // the probes sampled over the wait
	}

	up()
	upAt := time.Now()
	select {
	case err := <-started:
		ended = true
		if err != nil {
			t.Fatalf("start after %s came up: %v", broker, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("start not done 15s after %s came up", broker)
	}
	t.Logf("started %v after %s came up", time.Since(upAt).Round(time.Millisecond), broker)
	defer app.RequireStop()
	catgatest.Eventually(t, 5*time.Second, "/ready not 200 since the start", func() bool { return statusOf(base+"/ready") == http.StatusOK })

	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := bus.Publish(pctx, Tick{N: 42}); err != nil {
		t.Fatalf("publish once started: %v", err)
	}
	select {
	case n := <-got:
		if n != 42 {
			t.Fatalf("handled %d, want 42", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an event published after the wait was not handled within 10s")
	}
}

// CallsAreUnavailable is the scenario of a bus whose broker is down: every
// call over the transport (Send, Ask, Publish, Dispatch) fails with
// CodeUnavailable (503) within within.
func CallsAreUnavailable(t *testing.T, bus *cqrs.Bus, within time.Duration) {
	t.Helper()
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Send", func(ctx context.Context) error { _, err := cqrs.Send[string](ctx, bus, Reserve{SKU: "a"}); return err }},
		{"Ask", func(ctx context.Context) error { _, err := cqrs.Ask[string](ctx, bus, Tick{N: 1}); return err }},
		{"Publish", func(ctx context.Context) error { return bus.Publish(ctx, Tick{N: 1}) }},
		{"Dispatch", func(ctx context.Context) error { return bus.Dispatch(ctx, Reserve{SKU: "a"}) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			began := time.Now()
			err := c.call(ctx)
			if got := cqrs.CodeOf(err); got != cqrs.CodeUnavailable {
				t.Fatalf("got %s (%v), want %s", got, err, cqrs.CodeUnavailable)
			}
			if took := time.Since(began); took > within {
				t.Errorf("failed after %v, want within %v", took, within)
			}
		})
	}
}
