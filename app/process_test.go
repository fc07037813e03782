package app_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/catga-go/catga/catgatest"
)

// The process tests run testdata/service, a tiny main, in both of its
// forms: app.Run and fx.New(catga.Module, ...).Run().
var forms = []string{"run", "fxnew"}

var service struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if service.dir != "" {
		_ = os.RemoveAll(service.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// serviceBinary builds testdata/service once for the package's tests.
func serviceBinary(t *testing.T) string {
	t.Helper()
	service.once.Do(func() {
		service.dir, service.err = os.MkdirTemp("", "catga-app-test-")
		if service.err != nil {
			return
		}
		service.path = filepath.Join(service.dir, "service")
		out, err := exec.Command("go", "build", "-o", service.path, "./testdata/service").CombinedOutput()
		if err != nil {
			service.err = fmt.Errorf("go build ./testdata/service: %v\n%s", err, out)
		}
	})
	if service.err != nil {
		t.Fatal(service.err)
	}
	return service.path
}

// proc is a running service and the lines of its stderr.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	exited chan struct{}
	err    error // the exit, once exited is closed
	at     time.Time
}

// startService runs the service in form with env added to the test's.
func startService(t *testing.T, form string, env ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(serviceBinary(t), form), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), append([]string{"HTTP_ADDR=127.0.0.1:0", "HOSTNAME=pod-1", "CATGA_SERVICE=svc",
		"LOG_LEVEL=info", "LOG_FORMAT=json"}, env...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		p.at = time.Now()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitLine waits for a line of stderr that contains s.
func (p *proc) waitLine(t *testing.T, s string) {
	t.Helper()
	if !catgatest.Poll(30*time.Second, func() bool {
		for _, l := range p.output() {
			if strings.Contains(l, s) {
				return true
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("the service exited (%v) before logging %q:\n%s", p.err, s, strings.Join(p.output(), "\n"))
		default:
		}
		return false
	}) {
		t.Fatalf("no line with %q in 30s:\n%s", s, strings.Join(p.output(), "\n"))
	}
}

// wait waits up to d for the exit and returns its code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("still running after %v:\n%s", d, strings.Join(p.output(), "\n"))
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Fatalf("exit: %v", p.err)
	return -1
}

func lastLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// A stop hook that never returns: SIGTERM ends the process after
// CATGA_STOP_TIMEOUT, not fx's default 15 s, with one line saying why.
func TestService_StopIsBoundedByCATGA_STOP_TIMEOUT(t *testing.T) {
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			p := startService(t, form, "CATGA_TEST_CASE=slow-stop", "CATGA_STOP_TIMEOUT=1s")
			p.waitLine(t, `"msg":"started"`)
			sent := time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			code := p.wait(t, 10*time.Second)
			took := p.at.Sub(sent)
			if took < time.Second || took > 4*time.Second {
				t.Errorf("stopped %v after SIGTERM, want about CATGA_STOP_TIMEOUT=1s", took)
			}
			if code != 1 {
				t.Errorf("exit %d, want 1 after a stop that timed out", code)
			}
			if l := lastLine(p.output()); !strings.HasPrefix(l, "catga: stop: ") || !strings.Contains(l, "CATGA_STOP_TIMEOUT (1s)") {
				t.Errorf("last line %q, want one that starts catga: stop: and names CATGA_STOP_TIMEOUT (1s)", l)
			}
		})
	}
}

// A start hook that never returns: the process gives up after
// CATGA_START_TIMEOUT, not fx's default 15 s.
func TestService_StartIsBoundedByCATGA_START_TIMEOUT(t *testing.T) {
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			began := time.Now()
			p := startService(t, form, "CATGA_TEST_CASE=slow-start", "CATGA_START_TIMEOUT=1s")
			code := p.wait(t, 10*time.Second)
			if took := p.at.Sub(began); took < time.Second || took > 4*time.Second {
				t.Errorf("exited %v after launch, want about CATGA_START_TIMEOUT=1s", took)
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if l := lastLine(p.output()); !strings.HasPrefix(l, "catga: start: ") || !strings.Contains(l, "CATGA_START_TIMEOUT (1s)") {
				t.Errorf("last line %q, want one that starts catga: start: and names CATGA_START_TIMEOUT (1s)", l)
			}
		})
	}
}

// A SIGTERM that comes while the app is starting (before fx relays
// signals: the last start hook sends it here) is a clean stop too, not
// the end of the process by the signal with no drain. app.Run only: a
// bare fx.New(...).Run() has fx's own window.
func TestService_SIGTERMWhileStartingStopsCleanly(t *testing.T) {
	p := startService(t, "run", "CATGA_TEST_CASE=sigterm-in-start")
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0 (a clean stop):\n%s", code, strings.Join(p.output(), "\n"))
	}
	var last struct{ Level, Msg string }
	if l := lastLine(p.output()); json.Unmarshal([]byte(l), &last) != nil || last.Msg != "stopped" {
		t.Errorf("last line %q, want the info line \"stopped\"", l)
	}
}

// Ctrl-C is a clean stop: exit 0, and the last line says so.
func TestService_SIGINTStopsCleanlyWithExit0(t *testing.T) {
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			p := startService(t, form)
			p.waitLine(t, `"msg":"started"`)
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := p.wait(t, 10*time.Second); code != 0 {
				t.Errorf("exit %d after SIGINT, want 0:\n%s", code, strings.Join(p.output(), "\n"))
			}
			var last struct{ Level, Msg string }
			if l := lastLine(p.output()); json.Unmarshal([]byte(l), &last) != nil || last.Level != "info" || last.Msg != "stopped" {
				t.Errorf("last line %q, want the info line \"stopped\"", l)
			}
		})
	}
}

// A service that cannot start says why in one line, the cause first, and
// nothing else: no fx trace, no error that is a consequence of the first.
func TestService_StartupErrorIsOneLine(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want map[string]string // the line's start, by form
	}{
		{"bad NATS_URL", []string{"CATGA_TEST_CASE=nats", "NATS_URL=http://x"}, map[string]string{
			"run":   `catga: start: NATS_URL: "http://x" is not a nats://host:port URL`,
			"fxnew": `catga: start: NATS_URL: "http://x" is not a nats://host:port URL`,
		}},
		{"wrong result type", []string{"CATGA_TEST_CASE=wrong-result"}, map[string]string{
			"run":   `catga: cqrs.Command[main.Greet, int]: the constructor returns cqrs.CommandHandlerFunc[main.Greet, string], which is not a cqrs.CommandHandler[main.Greet, int]`,
			"fxnew": `catga: cqrs.Command[main.Greet, int]: the constructor returns cqrs.CommandHandlerFunc[main.Greet, string], which is not a cqrs.CommandHandler[main.Greet, int]`,
		}},
		{"bad LOG_LEVEL", []string{"LOG_LEVEL=loud"}, map[string]string{
			"run":   `catga: config: LOG_LEVEL: want debug, info, warn or error, got "loud"`,
			"fxnew": `catga: start: LOG_LEVEL: want debug, info, warn or error, got "loud"`,
		}},
	}
	for _, tt := range tests {
		for _, form := range forms {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				p := startService(t, form, tt.env...)
				if code := p.wait(t, 20*time.Second); code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				if out := p.output(); len(out) != 1 || !strings.HasPrefix(out[0], tt.want[form]) {
					t.Errorf("stderr:\n%s\nwant one line, starting:\n%s", strings.Join(out, "\n"), tt.want[form])
				}
			})
		}
	}
}

// A library's slog.Info is a JSON line of the app's logger, with its
// service and instance.
func TestService_SlogDefaultWritesTheAppsJSONLines(t *testing.T) {
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			p := startService(t, form, "CATGA_TEST_CASE=slog")
			p.waitLine(t, "hello from slog")
			for _, l := range p.output() {
				if !strings.Contains(l, "hello from slog") {
					continue
				}
				var line struct {
					Level, Msg, Service, Instance string
					N                             int
				}
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("slog line %q is not JSON: %v", l, err)
				}
				if line.Level != "info" || line.Msg != "hello from slog" || line.Service != "svc" || line.Instance != "pod-1" || line.N != 1 {
					t.Errorf("slog line %+v, want level info, msg, service svc, instance pod-1 and n 1", line)
				}
			}
		})
	}
}
