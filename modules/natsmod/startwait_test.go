package natsmod_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/internal/brokertest"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// A service started while NATS is down waits for it (the scenario is
// brokertest's): probes answer meanwhile, start completes once NATS is
// up, without a restart, and an event published then is handled.
func TestStart_WaitsForAServerThatIsNotUpYet(t *testing.T) {
	srv := natstest.Start(t)
	srv.Shutdown()
	brokertest.StartWaitsForTheBroker(t, "NATS", func() { srv.StartAgain(t) }, catga.Module, natsmod.Module, fx.Replace(testConfig(srv)))
}

// When the start context ends with NATS still unreachable, Start fails
// with one error naming the server (not its password) and the attempts,
// having logged each at warn with its number, wait and error.
func TestStart_DeadlinePassingWhileUnreachableFailsNamingServerAndAttempts(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfigAt("nats://svc:pw-start-secret@" + addr)
	var logs logBuffer
	tr, err := natsmod.New(cfg, "deadline", bufferLogger(&logs))
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
	n := strings.Count(logs.String(), `"attempt"`)
	if n < 3 {
		t.Errorf("%d attempts logged in 3s, want several; logs:\n%s", n, logs.String())
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

// A bus started while the server is away (between the transport's start
// and its own) waits for it to create its consumers, rather than failing
// start, and consumes once it is back.
func TestSubscribe_AtStartWaitsForTheServer(t *testing.T) {
	srv := natstest.Start(t)
	tr := connect(t, testConfig(srv), "late")
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
	srv.Shutdown()
	catgatest.Eventually(t, 3*time.Second, "the transport still reads connected", func() bool { return tr.Check(context.Background()) != nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- bus.Start(ctx) }()
	select {
	case err := <-started:
		t.Fatalf("bus start ended while the server is down: %v", err)
	case <-time.After(2 * time.Second):
	}
	srv.StartAgain(t)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("bus start after the server came back: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bus start not done 15s after the server came back")
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

// A server that is up without JetStream yet (JetStream not answering) is
// asked again until it answers; the streams are made then.
func TestStart_WaitsForJetStream(t *testing.T) {
	plain := natstest.Start(t, func(o *server.Options) { o.JetStream = false })
	port := plain.Port()
	cfg := testConfig(plain)
	tr, err := natsmod.New(cfg, "js-late", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- tr.Start(ctx) }()
	select {
	case err := <-started:
		t.Fatalf("start ended on a server without JetStream: %v", err)
	case <-time.After(2 * time.Second):
	}
	plain.Shutdown()
	natstest.Start(t, func(o *server.Options) { o.Port = port })
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start once JetStream is up: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("start not done 15s after JetStream came up")
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := tr.Publish(pctx, tickTopic, tickEnv(1)); err != nil {
		t.Fatalf("publish once started: %v", err)
	}
}
