package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	"github.com/catga-go/catga/devhost"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is the host's output, read while it writes.
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

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// chromium finds headless Chromium, or fails saying how to install it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium not found: install it (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install --cask chromium); or set CHROME_BIN; make test installs it where it can")
	return ""
}

// The example's AppHost: 4 services x 2 replicas ready within 60s, 50
// orders reach their states, a killed replica is restarted and the table
// shows it, the dashboard shows every replica ready in headless Chromium,
// and stopping the host leaves no child process alive.
func TestAppHost_RunsTheWholeSystem(t *testing.T) {
	// Warm the build cache, so the 60 s are the host's: its go build links
	// the four binaries, then starts and readies eight processes.
	if out, err := exec.Command("go", "build", "../...").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out syncBuffer
	h := devhost.New(devhost.Options{Dir: t.TempDir(), WorkDir: "../..", Addr: "127.0.0.1:0", Out: &out, Grace: 10 * time.Second})
	System(h, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	start := time.Now()
	select {
	case <-h.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v\n%s", err, tail(out.String()))
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready after %v:\n%s", time.Since(start), tail(out.String()))
	}
	readyAfter := time.Since(start)
	status := h.Status()
	if len(status) != 8 {
		t.Fatalf("%d replicas, want 8: %+v", len(status), status)
	}
	var orderAddrs []string
	for _, s := range status {
		if !s.Ready || s.PID == 0 {
			t.Fatalf("replica %+v not ready", s)
		}
		if s.Service == "order-service" {
			orderAddrs = append(orderAddrs, s.Addr)
		}
	}

	// 50 orders, posted round-robin, read from the other replica.
	client := &http.Client{Timeout: 10 * time.Second}
	// The order service keeps its orders, outbox and inbox in the host's PostgreSQL.
	if resp, err := client.Get("http://" + orderAddrs[0] + "/ready"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"postgres"`) {
			t.Fatalf("order-service /ready %s: want a postgres check (DATABASE_URL from the host's PostgreSQL)", b)
		}
	}
	type order struct{ ID, Status string }
	want := map[string]string{}
	for i := range 50 {
		body, state := fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"A","qty":1,"price_cents":%d}]}`, i, 100+i), "shipped"
		if i%10 == 3 {
			body, state = fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"OUT-OF-STOCK","qty":1,"price_cents":1}]}`, i), "rejected"
		}
		resp, err := client.Post("http://"+orderAddrs[i%2]+"/orders", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var o order
		_ = json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /orders = %d", resp.StatusCode)
		}
		want[o.ID] = state
	}
	deadline := time.Now().Add(60 * time.Second)
	for id, state := range want {
		var o order
		if !catgatest.Poll(time.Until(deadline), func() bool {
			resp, err := client.Get("http://" + orderAddrs[1] + "/orders/" + id)
			if err != nil {
				t.Fatal(err)
			}
			o = order{}
			_ = json.NewDecoder(resp.Body).Decode(&o)
			resp.Body.Close()
			return o.Status == state
		}) {
			t.Fatalf("order %s is %q, want %q", id, o.Status, state)
		}
	}

	// Kill a replica's process: the host restarts it, and the table says so.
	victim := status[2]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var now devhost.Status
	if !catgatest.Poll(30*time.Second, func() bool {
		now = devhost.Status{}
		for _, s := range h.Status() {
			if s.Service == victim.Service && s.Replica == victim.Replica {
				now = s
			}
		}
		return now.Restarts == 1 && now.Ready && now.PID != victim.PID
	}) {
		t.Fatalf("%s/%d not restarted: %+v", victim.Service, victim.Replica, now)
	}
	if !strings.Contains(out.String(), "RESTARTS") || !strings.Contains(out.String(), fmt.Sprintf("%s/%d", victim.Service, victim.Replica)) {
		t.Errorf("the output has no status table or no line of the restarted replica")
	}

	// The dashboard, loaded in headless Chromium.
	<-h.Ready()
	catgatest.Eventually(t, 30*time.Second, "not every replica ready again", func() bool {
		for _, s := range h.Status() {
			if !s.Ready {
				return false
			}
		}
		return true
	})
	dom, err := exec.Command(chromium(t), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--dump-dom", "http://"+h.DashboardAddr()+"/").Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if n := strings.Count(string(dom), `data-ready="true"`); n != 8 {
		t.Fatalf("the dashboard shows %d replicas ready, want 8:\n%s", n, dom)
	}
	for _, link := range []string{"/health", "/ready", "/metrics"} {
		if !strings.Contains(string(dom), link) {
			t.Errorf("the dashboard has no %s link", link)
		}
	}

	// Stop: nothing the host started stays alive.
	children := h.Children()
	if len(children) != 10 {
		t.Errorf("%d children, want 8 replicas, redis-server and the postmaster", len(children))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("process %d is still alive after the host stopped", pid)
		}
	}
	t.Logf("4 services x 2 replicas ready %v after Run (four links included); 50 orders; a killed replica restarted; %d children gone after stop",
		readyAfter.Round(time.Millisecond), len(children))
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// The example's catga.dev.yaml (catga dev) runs the same system as the Go
// AppHost: 4 services x 2 replicas, ready. The test moves the order
// service off its fixed port 8080, which may be taken here.
func TestDevFile_RunsTheSameSystem(t *testing.T) {
	text, err := os.ReadFile("../../catga.dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "port: 8080") {
		t.Fatalf("the file does not fix the order service on 8080:\n%s", text)
	}
	file := filepath.Join(t.TempDir(), "catga.dev.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(text), "    port: 8080\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := filepath.Abs("../..")
	var out syncBuffer
	h, err := devhost.Load(file, devhost.Options{WorkDir: wd, Dir: t.TempDir(), Addr: "127.0.0.1:0", Out: &out, Grace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	select {
	case <-h.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run ended before ready: %v\n%s", err, tail(out.String()))
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatalf("not ready in 60s:\n%s", tail(out.String()))
	}
	got := map[string]int{}
	for _, s := range h.Status() {
		got[s.Service]++
	}
	want := map[string]int{"order-service": 2, "inventory-service": 2, "payment-service": 2, "shipping-service": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replicas %v, want %v", got, want)
	}
	children := h.Children()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("process %d is still alive after the host stopped", pid)
		}
	}
}
