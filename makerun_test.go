package catga_test

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
)

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's reads.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// Ctrl-C on `make run` is what a terminal does: SIGINT to the foreground
// process group (make, its shell, the service). The service stops cleanly
// and exits 0, so make reports no error, and the log's last line says the
// service stopped. (make itself then dies of the SIGINT, as make does.)
//
// GNU make has a race of its own here: when its child exits as the SIGINT
// reaches make, make may report "Interrupt" or "wait: No child processes"
// for a child that exited 0 (seen about once in 15 runs on a loaded
// machine with the service exec'd; the Makefiles' run recipe now keeps a
// shell alive a moment after the service, which closes the window). An
// attempt that still ends so after the service's own "stopped" line is
// tried again, up to three times; any other error fails at once.
func TestMakeRun_CtrlCStopsCleanly(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed; install it (apt-get install make) to run this test")
	}
	for _, dir := range []string{".", "examples/order-service"} {
		t.Run(dir, func(t *testing.T) {
			for attempt := 1; ; attempt++ {
				text, err := ctrlC(t, dir)
				if attempt < 3 && makesOwnRace(text) {
					t.Logf("attempt %d: make's own SIGINT race, trying again:\n%s", attempt, text)
					continue
				}
				if err != nil && !killedBy(err, syscall.SIGINT) {
					t.Errorf("make: %v, want exit 0 or make's own death by SIGINT", err)
				}
				if strings.Contains(text, "make: ***") || strings.Contains(text, "exit status") {
					t.Errorf("make reported an error after Ctrl-C:\n%s", text)
				}
				lines := strings.Split(strings.TrimSpace(text), "\n")
				if last := lines[len(lines)-1]; !strings.Contains(last, "stopped") {
					t.Errorf("last line %q, want the service's \"stopped\" line:\n%s", last, text)
				}
				return
			}
		})
	}
}

// makesOwnRace reports whether text ends, after the service's "stopped"
// line, with make's own reports of its SIGINT race and nothing else.
func makesOwnRace(text string) bool {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	last := -1
	for i, l := range lines {
		if strings.Contains(l, "stopped") {
			last = i
		}
	}
	if last < 0 || last == len(lines)-1 {
		return false
	}
	for _, l := range lines[last+1:] {
		if !strings.HasPrefix(l, "make") || !(strings.HasSuffix(l, "] Interrupt") ||
			strings.Contains(l, "wait: No child processes") || strings.Contains(l, "Waiting for unfinished jobs")) {
			return false
		}
	}
	return true
}

// ctrlC runs make run in dir until the service is ready, sends SIGINT to
// its process group as a terminal does, and returns what make and the
// service wrote and make's exit.
func ctrlC(t *testing.T, dir string) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out := newSyncBuffer()
	cmd := exec.Command("make", "--no-print-directory", "-C", dir, "run")
	// As a terminal runs it: not a sub-make of the make running the tests.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HTTP_ADDR="+addr, "LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when make has exited, with its error in waitErr:
	// both this function and the cleanup wait on it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	if !catgatest.Poll(3*time.Minute, func() bool { // make run builds the example first
		if resp, err := http.Get("http://" + addr + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			t.Fatalf("make run exited (%v) before the service was ready:\n%s", waitErr, out)
		default:
		}
		return false
	}) {
		t.Fatalf("the service never became ready:\n%s", out)
	}
	http.DefaultClient.CloseIdleConnections()

	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run still running 30s after SIGINT:\n%s", out)
	}
	return out.String(), waitErr
}

func killedBy(err error, sig syscall.Signal) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
