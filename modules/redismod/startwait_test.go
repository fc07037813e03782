package redismod_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/internal/brokertest"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// A service started while Redis is down waits for it (the scenario is
// brokertest's): probes answer meanwhile, start completes once Redis is
// up, without a restart, and an event published then is handled.
func TestStart_WaitsForAServerThatIsNotUpYet(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	brokertest.StartWaitsForTheBroker(t, "Redis", func() { srv.StartAgain(t) }, catga.Module, redismod.Module, fx.Replace(testConfig(srv.URL())))
}

// freeAddr is a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// When the start context ends with Redis still unreachable, Start fails
// with one error naming the server (not its password) and the attempts,
// having logged each at warn with its number, wait and error.
func TestStart_DeadlinePassingWhileUnreachableFailsNamingServerAndAttempts(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig("redis://svc:pw-start-secret@" + addr + "/0")
	var logs logBuffer
	tr, err := redismod.New(cfg, nil, "deadline", bufferLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	began := time.Now()
	err = tr.Start(ctx)
	took := time.Since(began)
	_ = tr.Close(context.Background())
	if err == nil {
		t.Fatal("Start succeeded with nothing listening")
	}
	t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
	if took < 2900*time.Millisecond || took > 4*time.Second {
		t.Errorf("Start returned after %v, want at its 3s deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not wrap context.DeadlineExceeded", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, addr) {
		t.Errorf("error %q does not name the server %s", msg, addr)
	}
	// Each PING takes go-redis's own dial retries (about 1.7 s refused).
	n := strings.Count(logs.String(), `"attempt"`)
	if n < 1 {
		t.Errorf("%d attempts logged in 3s, want one or more; logs:\n%s", n, logs.String())
	}
	if !strings.Contains(msg, fmt.Sprintf("%d attempts", n+1)) && !strings.Contains(msg, fmt.Sprintf("%d attempts", n)) {
		t.Errorf("error %q does not give the number of attempts (%d logged)", msg, n)
	}
	for _, want := range []string{`"level":"warn"`, `"wait"`, `"error"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("attempt logs lack %s:\n%s", want, logs.String())
		}
	}
	assertSecretFree(t, "the error", msg, []string{"pw-start-secret"})
	assertSecretFree(t, "the logs", logs.String(), []string{"pw-start-secret"})
}

// A bus started while Redis is away (between the transport's start and
// its own) waits for it to create its groups, rather than failing start,
// and consumes once it is back.
func TestSubscribe_AtStartWaitsForTheServer(t *testing.T) {
	srv := redistest.Start(t)
	tr := connect(t, testConfig(srv.URL()), "late")
	got := make(chan int, 1)
	bus, err := cqrs.New(cqrs.Options{Service: "late", Instance: "i1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error {
			select {
			case got <- e.N:
			default:
			}
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- bus.Start(ctx) }()
	select {
	case err := <-started:
		t.Fatalf("bus start ended while Redis is down: %v", err)
	case <-time.After(2 * time.Second):
	}
	srv.StartAgain(t)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("bus start after Redis came back: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bus start not done 15s after Redis came back")
	}
	defer bus.Stop(context.Background())
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := bus.Publish(pctx, Tick{N: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery after the wait")
	}
}
