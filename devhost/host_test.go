package devhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/devhost"
)

func TestMain(m *testing.M) {
	if file := os.Getenv(hostEnv); file != "" {
		os.Exit(runHost(file)) // this test binary re-executed as a catga dev host
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a host's output, read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// alive reports whether pid runs (a zombie is not running).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// waitGone fails unless every pid has ended within d.
func waitGone(t *testing.T, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		if !catgatest.Poll(time.Until(deadline), func() bool { return !alive(pid) }) {
			t.Errorf("process %d still alive %v after the host stopped", pid, d)
		}
	}
}

// running is a host running in the test, stopped at cleanup.
type running struct {
	h      *devhost.Host
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, h *devhost.Host, out *syncBuffer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{h: h, out: out, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	select {
	case <-h.Ready():
	case err := <-r.done:
		r.done <- err
		t.Fatalf("Run ended before ready: %v\n%s", err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready in 60s:\n%s", out)
	}
	return r
}

// stop ends the host and returns Run's error.
func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err
	return err
}

func newHost(t *testing.T, out io.Writer, opts devhost.Options) *devhost.Host {
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.Addr, opts.Out, opts.Color = "127.0.0.1:0", out, new(bool)
	return devhost.New(opts)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := getJSONQuiet(url, v); err != nil {
		t.Fatal(err)
	}
}

func getJSONQuiet(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// Each replica gets CATGA_SERVICE, its own HOSTNAME and HTTP_ADDR, the
// URLs of the NATS (JetStream on) and Redis it uses, and the service's
// variables; a killed replica is restarted with a new pid, the table
// counts it; stopping leaves no process behind.
func TestHost_InjectsConnectionsAndRestartsACrashedReplica(t *testing.T) {
	var out syncBuffer
	h := newHost(t, &out, devhost.Options{})
	nc := h.NATS("bus").WithJetStream()
	rd := h.Redis("cache")
	h.Service("svc", "./testdata/svc").Use(nc, rd).Replicas(2).Env("SVC_GREETING=hello")
	r := start(t, h, &out)

	status := h.Status()
	if len(status) != 2 {
		t.Fatalf("%d replicas, want 2: %+v", len(status), status)
	}
	hostnames := map[string]bool{}
	for _, s := range status {
		var env map[string]string
		getJSON(t, "http://"+s.Addr+"/env", &env)
		if env["CATGA_SERVICE"] != "svc" || env["HTTP_ADDR"] != s.Addr || env["SVC_GREETING"] != "hello" {
			t.Errorf("replica %d: CATGA_SERVICE=%q HTTP_ADDR=%q (table %q) SVC_GREETING=%q", s.Replica, env["CATGA_SERVICE"], env["HTTP_ADDR"], s.Addr, env["SVC_GREETING"])
		}
		if env["HOSTNAME"] != fmt.Sprintf("svc-%d", s.Replica) || hostnames[env["HOSTNAME"]] {
			t.Errorf("replica %d: HOSTNAME %q, want svc-%d and distinct", s.Replica, env["HOSTNAME"], s.Replica)
		}
		hostnames[env["HOSTNAME"]] = true
		conn, err := nats.Connect(env["NATS_URL"])
		if err != nil {
			t.Fatalf("NATS_URL %q: %v", env["NATS_URL"], err)
		}
		js, _ := jetstream.New(conn)
		if _, err := js.AccountInfo(context.Background()); err != nil {
			t.Errorf("JetStream on %s: %v", env["NATS_URL"], err)
		}
		conn.Close()
		opt, err := redis.ParseURL(env["REDIS_URL"])
		if err != nil {
			t.Fatalf("REDIS_URL %q: %v", env["REDIS_URL"], err)
		}
		rdb := redis.NewClient(opt)
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			t.Errorf("Redis on %s: %v", env["REDIS_URL"], err)
		}
		_ = rdb.Close()
	}

	victim := status[1]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var now devhost.Status
	if !catgatest.Poll(20*time.Second, func() bool {
		now = h.Status()[1]
		return now.Restarts == 1 && now.Ready && now.PID != victim.PID && now.PID != 0
	}) {
		t.Fatalf("svc/2 not restarted: %+v\n%s", now, &out)
	}
	if !strings.Contains(out.String(), "svc/2") || !strings.Contains(out.String(), "restarting in 1s") {
		t.Errorf("the output does not say svc/2 exited and restarts:\n%s", &out)
	}
	children := h.Children()
	if len(children) != 3 {
		t.Errorf("children %v, want 2 replicas and redis-server", children)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitGone(t, children, time.Second)
	stopped := out.String()
	iTerm, iRedis := strings.Index(stopped, "SIGTERM: stopping"), strings.LastIndex(stopped, "redis/cache")
	if iTerm < 0 || iRedis < iTerm {
		t.Errorf("the replicas did not stop (on SIGTERM) before Redis:\n%s", stopped)
	}
}

// A replica that ignores SIGTERM is killed after the grace.
func TestHost_SIGKILLAfterTheGrace(t *testing.T) {
	var out syncBuffer
	h := newHost(t, &out, devhost.Options{Grace: 300 * time.Millisecond, NoDashboard: true})
	h.Service("stubborn", "./testdata/svc").Env("SVC_IGNORE_TERM=1")
	r := start(t, h, &out)
	pids := h.Children()
	began := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("stopped in %v, want about the 300ms grace", d)
	}
	if !strings.Contains(out.String(), "SIGKILL") {
		t.Errorf("the output does not say the replica was killed:\n%s", &out)
	}
	waitGone(t, pids, time.Second)
}

// The dashboard serves the table as HTML, with each replica's links, and
// as JSON.
func TestHost_Dashboard(t *testing.T) {
	var out syncBuffer
	h := newHost(t, &out, devhost.Options{})
	h.Service("web", "./testdata/svc").Replicas(2)
	start(t, h, &out)
	resp, err := http.Get("http://" + h.DashboardAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, s := range h.Status() {
		for _, link := range []string{"/health", "/ready", "/metrics"} {
			if !strings.Contains(string(page), `href="http://`+s.Addr+link+`"`) {
				t.Errorf("no %s link for replica %d in:\n%s", link, s.Replica, page)
			}
		}
	}
	if n := strings.Count(string(page), `data-ready="true"`); n != 2 {
		t.Errorf("%d rows ready, want 2", n)
	}
	var rows []devhost.Status
	getJSON(t, "http://"+h.DashboardAddr()+"/api/status", &rows)
	if len(rows) != 2 || rows[0].Service != "web" || !rows[0].Ready || rows[1].Replica != 2 || rows[1].PID == 0 {
		t.Errorf("/api/status = %+v", rows)
	}
	if !strings.Contains(out.String(), "RESTARTS") || !strings.Contains(out.String(), "all 2 replicas ready") {
		t.Errorf("no status table once ready:\n%s", &out)
	}
}

// With Persist, JetStream keeps its streams across runs; without, a run
// starts empty.
func TestHost_Persist(t *testing.T) {
	dir := t.TempDir()
	run := func(persist bool, do func(js jetstream.JetStream)) {
		var out syncBuffer
		h := newHost(t, &out, devhost.Options{Dir: dir, Persist: persist, NoDashboard: true})
		n := h.NATS("nats").WithJetStream()
		h.Service("svc", "./testdata/svc").Use(n)
		r := start(t, h, &out)
		var env map[string]string
		getJSON(t, "http://"+h.Status()[0].Addr+"/env", &env)
		conn, err := nats.Connect(env["NATS_URL"])
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(conn)
		do(js)
		conn.Close()
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	run(true, func(js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "kept.one", []byte("x")); err != nil {
			t.Fatal(err)
		}
	})
	run(true, func(js jetstream.JetStream) {
		s, err := js.Stream(ctx, "KEPT")
		if err != nil {
			t.Fatalf("the stream is gone with Persist: %v", err)
		}
		if info, _ := s.Info(ctx); info == nil || info.State.Msgs != 1 {
			t.Errorf("the stream holds %+v, want 1 message", info)
		}
	})
	run(false, func(js jetstream.JetStream) {
		if _, err := js.Stream(ctx, "KEPT"); err == nil {
			t.Error("the stream outlived a run without Persist")
		}
	})
}

// Without redis-server, Run fails naming the package to install.
func TestHost_NoRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("REDIS_SERVER_BIN", "")
	h := newHost(t, io.Discard, devhost.Options{NoDashboard: true})
	h.Service("svc", "./testdata/svc").Use(h.Redis("redis"))
	err := h.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "install the redis-server package") {
		t.Fatalf("Run = %v, want a message naming the package", err)
	}
}

// A service that does not build fails Run with the compiler's words, and
// nothing keeps running.
func TestHost_BuildFailure(t *testing.T) {
	h := newHost(t, io.Discard, devhost.Options{NoDashboard: true})
	h.NATS("nats").WithJetStream()
	h.Service("ghost", "./testdata/nothing-here")
	err := h.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "build ghost (./testdata/nothing-here)") {
		t.Fatalf("Run = %v", err)
	}
	if err := h.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "has run already") {
		t.Fatalf("a second Run = %v", err)
	}
}

func TestHost_Validation(t *testing.T) {
	h := devhost.New(devhost.Options{Out: io.Discard})
	h.NATS("a")
	h.Redis("a")
	h.Service("svc", "./x").Replicas(0)
	h.Service("svc", "./y")
	h.Service("", "./z")
	h.Service("high", "./h").Replicas(3).Port(65534)
	err := h.Run(context.Background())
	for _, want := range []string{`resource "a" declared twice`, `service "svc": replicas 0, want 1 to 20`, `service "svc" declared twice`, "a service without a name", `service "high": port 65534 for 3 replicas, want 1 to 65533`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run = %v, want it to say %s", err, want)
		}
	}
}

// freePorts returns the first of n consecutive free ports.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(30000)
		var lns []net.Listener
		for i := range n {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// With Port, replica n listens on base+n-1, and keeps it across a restart.
func TestHost_FixedPorts(t *testing.T) {
	base := freePorts(t, 2)
	var out syncBuffer
	h := newHost(t, &out, devhost.Options{NoDashboard: true})
	h.Service("api", "./testdata/svc").Replicas(2).Port(base)
	start(t, h, &out)
	st := h.Status()
	for i, s := range st {
		if want := fmt.Sprintf("127.0.0.1:%d", base+i); s.Addr != want {
			t.Errorf("replica %d on %s, want %s", s.Replica, s.Addr, want)
		}
	}
	if err := syscall.Kill(st[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var now devhost.Status
	if !catgatest.Poll(20*time.Second, func() bool {
		now = h.Status()[0]
		return now.Restarts == 1 && now.Ready
	}) {
		t.Fatalf("api/1 not restarted: %+v\n%s", now, &out)
	}
	if now.Addr != st[0].Addr {
		t.Errorf("restarted on %s, want %s", now.Addr, st[0].Addr)
	}
}
