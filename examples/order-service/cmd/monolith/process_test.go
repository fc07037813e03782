package main

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The "done when" of the foundation, on the real binary: an order reaches
// shipped within a second; SIGTERM turns /ready 503 and the process exits 0.
func TestProcess_ServesThenDrainsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "monolith")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HTTP_ADDR="+addr, "CATGA_DRAIN_DELAY=700ms", "LOG_LEVEL=info")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1000)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			select {
			case logs <- s.Text():
			default:
			}
		}
		close(logs)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := "http://" + addr

	catgatest.Eventually(t, 10*time.Second, "the monolith never became ready", func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	id := createOrder(t, base, `{"customer_id":"c1","items":[{"sku":"A","qty":2,"price_cents":500}]}`)
	start := time.Now()
	waitStatus(t, base, id, "shipped")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shipped after %v, want within a second", d)
	}
	http.DefaultClient.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	saw503 := false
	catgatest.Poll(time.Until(start.Add(10*time.Second)), func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return true // the server is gone
		}
		resp.Body.Close()
		saw503 = resp.StatusCode == http.StatusServiceUnavailable
		return saw503
	})
	http.DefaultClient.CloseIdleConnections()
	err := cmd.Wait()
	for range logs {
	}
	if !saw503 {
		t.Error("/ready never answered 503 after SIGTERM")
	}
	if err != nil {
		t.Fatalf("exit: %v, want status 0", err)
	}
}
