package natsmod_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

const roleEnv = "CATGA_TEST_ROLE"

// runService is the service process: catga.Module and natsmod.Module with a
// Tick handler that takes TICK_DELAY and writes "start N" and "done N"
// lines to TICK_LOG (appends survive a SIGKILL).
func runService() int {
	delay, _ := time.ParseDuration(os.Getenv("TICK_DELAY"))
	f, err := os.OpenFile(os.Getenv("TICK_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	who := os.Getenv("HOSTNAME")
	write := func(what string, n int) { fmt.Fprintf(f, "%s %s %d\n", who, what, n) }
	err = app.Run(catga.Module, natsmod.Module,
		cqrs.Event[Tick](func(ctx context.Context, e Tick) error {
			write("start", e.N)
			time.Sleep(delay) // a slow handler that does not look at ctx, as many don't
			write("done", e.N)
			return nil
		}))
	if err != nil {
		return 1
	}
	return 0
}

type service struct {
	cmd    *exec.Cmd
	addr   string
	exited chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startService runs this test binary as a service with env, ready.
func startService(t *testing.T, cfg natsmod.Config, instance, logFile string, env ...string) *service {
	t.Helper()
	s := &service{addr: freeAddr(t), exited: make(chan error, 1)}
	s.cmd = exec.Command(os.Args[0], "-test.run=^$")
	s.cmd.Env = append(os.Environ(), append([]string{
		roleEnv + "=service", "TICK_LOG=" + logFile, "HTTP_ADDR=" + s.addr, "HOSTNAME=" + instance, "CATGA_SERVICE=ticks",
		"NATS_URL=" + cfg.URL, "NATS_SUBJECT_PREFIX=" + cfg.Prefix, "NATS_STREAM_PREFIX=" + cfg.StreamPrefix,
		"LOG_LEVEL=warn", "CATGA_CONCURRENCY=256",
	}, env...)...)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	catgatest.Eventually(t, 20*time.Second, "service "+instance+" not ready", func() bool { return readyCode(s.addr) == http.StatusOK })
	return s
}

func readyCode(addr string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ticks reads the log: per instance and event kind, the Ns seen.
func ticks(t *testing.T, path string) (started, done map[int]int, byInstance map[string]int) {
	t.Helper()
	started, done, byInstance = map[int]int{}, map[int]int{}, map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var who, what string
		var n int
		if _, err := fmt.Sscan(sc.Text(), &who, &what, &n); err != nil {
			continue
		}
		if what == "start" {
			started[n]++
		} else {
			done[n]++
			byInstance[who]++
		}
	}
	return
}

func publishN(t *testing.T, cfg natsmod.Config, n int) {
	t.Helper()
	pub := connect(t, cfg, "publisher")
	var acked atomic.Int64
	publishTicks(pub, n, 0, &acked)
}

// SIGTERM with 200 messages in flight and a 10s stop timeout: /ready turns
// 503 first, the handlers in flight finish and ack, the process exits 0.
func TestSIGTERM_InFlightFinishAndAck(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	log := t.TempDir() + "/ticks.log"
	s := startService(t, cfg, "svc-1", log, "TICK_DELAY=2s", "CATGA_STOP_TIMEOUT=10s")
	const n = 200
	publishN(t, cfg, n)
	var started map[int]int
	if !catgatest.Poll(20*time.Second, func() bool { started, _, _ = ticks(t, log); return len(started) == n }) {
		t.Fatalf("only %d of %d handlers started", len(started), n)
	}
	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	saw503 := catgatest.Poll(time.Until(sent.Add(10*time.Second)), func() bool {
		switch readyCode(s.addr) {
		case http.StatusServiceUnavailable:
			return true
		case 0:
			t.Fatal("the server went away before /ready answered 503")
		}
		return false
	})
	_, doneAt503, _ := ticks(t, log)
	var exitErr error
	select {
	case exitErr = <-s.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the process did not exit within the stop timeout")
	}
	took := time.Since(sent)
	if !saw503 {
		t.Error("/ready never answered 503 after SIGTERM")
	}
	if exitErr != nil {
		t.Fatalf("exit: %v, want 0", exitErr)
	}
	_, done, _ := ticks(t, log)
	lost := 0
	for i := range n {
		if done[i] == 0 {
			lost++
		}
	}
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(context.Background(), cfg.StreamPrefix+"_EVENTS", "ticks_events")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := c.Info(context.Background())
	t.Logf("SIGTERM with %d in flight: /ready 503 with %d handlers done, exit 0 after %v; handled %d, lost %d, unacked %d, undelivered %d",
		n, len(doneAt503), took.Round(time.Millisecond), len(done), lost, info.NumAckPending, info.NumPending)
	if lost > 0 || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("lost %d, %d unacked, %d undelivered; want none", lost, info.NumAckPending, info.NumPending)
	}
}

// SIGKILL of a replica mid-handler: its messages go to the other replica
// after the ack wait; nothing is lost; duplicates are counted.
func TestSIGKILL_ReplicaMidHandler_MessagesGoToTheOther(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	log := t.TempDir() + "/ticks.log"
	env := []string{"TICK_DELAY=300ms", "NATS_ACK_WAIT=2s", "CATGA_CONCURRENCY=16"}
	a := startService(t, cfg, "a", log, env...)
	startService(t, cfg, "b", log, env...)
	const n = 200
	publishN(t, cfg, n)
	catgatest.Eventually(t, 20*time.Second, "handlers did not start", func() bool {
		started, _, _ := ticks(t, log)
		return len(started) >= 40
	})
	_ = a.cmd.Process.Kill()
	<-a.exited
	startedAtKill, doneAtKill, _ := ticks(t, log)
	var done map[int]int
	var by map[string]int
	catgatest.Poll(60*time.Second, func() bool { _, done, by = ticks(t, log); return len(done) == n })
	lost, dups := 0, 0
	for i := range n {
		switch c := done[i]; {
		case c == 0:
			lost++
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("replica a SIGKILLed with %d started and %d done: handled a=%d b=%d, lost %d, duplicates %d",
		len(startedAtKill), len(doneAtKill), by["a"], by["b"], lost, dups)
	if lost > 0 {
		t.Fatalf("lost %d of %d", lost, n)
	}
	if by["b"] == 0 {
		t.Fatal("the surviving replica handled nothing")
	}
}
