package catga_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Ping struct{ N int }
type Pinged struct{ N int }

func TestModule_StartsServesAndStops(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	got := make(chan int, 1)
	var bus *cqrs.Bus
	var srv *httpmod.Server
	app := fxtest.New(t, catga.Module,
		cqrs.Command[Ping, int](func(ctx context.Context, p Ping) (int, error) { return p.N + 1, nil }),
		cqrs.Event[Pinged](func(_ context.Context, e Pinged) error { got <- e.N; return nil }),
		fx.Populate(&bus, &srv),
	)
	app.RequireStart()
	if n, err := cqrs.Send[int](context.Background(), bus, Ping{N: 41}); err != nil || n != 42 {
		t.Fatalf("Send = %d, %v; want 42", n, err)
	}
	if err := bus.Publish(context.Background(), Pinged{N: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 7 {
			t.Fatalf("event %d, want 7", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event not delivered through the memory transport")
	}
	if code, body := get(t, "http://"+srv.Addr()+"/ready"); code != http.StatusOK {
		t.Fatalf("/ready = %d %s, want 200", code, body)
	}
	app.RequireStop()
}

// The shutdown order of app's package doc: /ready turns 503 while the bus drains, the
// handler in flight finishes (its context alive), and HTTP answers to the end.
func TestModule_ShutdownDrainsInOrder(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	started, release := make(chan struct{}), make(chan struct{})
	var finished, cancelled atomic.Bool
	var bus *cqrs.Bus
	var srv *httpmod.Server
	app := fxtest.New(t, catga.Module,
		cqrs.Event[Pinged](func(ctx context.Context, _ Pinged) error {
			close(started)
			<-release
			cancelled.Store(ctx.Err() != nil)
			finished.Store(true)
			return nil
		}),
		fx.Populate(&bus, &srv),
	)
	app.RequireStart()
	if err := bus.Publish(context.Background(), Pinged{}); err != nil {
		t.Fatal(err)
	}
	<-started
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- app.Stop(ctx)
	}()
	var code int
	if !catgatest.Poll(5*time.Second, func() bool {
		var body string
		code, body = get(t, "http://"+srv.Addr()+"/ready")
		if code != http.StatusServiceUnavailable {
			return false
		}
		var rep struct{ State string }
		_ = json.Unmarshal([]byte(body), &rep)
		if rep.State != "draining" {
			t.Fatalf("/ready state %q, want draining", rep.State)
		}
		return true
	}) {
		t.Fatalf("/ready still %d during shutdown", code)
	}
	if code, _ := get(t, "http://"+srv.Addr()+"/health"); code != http.StatusOK {
		t.Fatalf("/health = %d while draining, want 200", code)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the handler in flight finished", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() || cancelled.Load() {
		t.Fatalf("handler finished=%v cancelled=%v; want it to finish with a live context", finished.Load(), cancelled.Load())
	}
}

func TestModule_TwoHandlersForOneCommandFailStart(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	h := func(context.Context, Ping) (int, error) { return 0, nil }
	app := fx.New(catga.Module, fx.NopLogger,
		cqrs.Command[Ping, int](h, cqrs.HandlerName("first")),
		cqrs.Command[Ping, int](h, cqrs.HandlerName("second")),
	)
	err := app.Err()
	if err == nil {
		err = app.Start(context.Background())
		defer app.Stop(context.Background())
	}
	if err == nil {
		t.Fatal("two handlers for Ping started")
	}
	for _, want := range []string{"Ping", "first", "second"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var buf [4096]byte
	n, _ := resp.Body.Read(buf[:])
	return resp.StatusCode, string(buf[:n])
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}
