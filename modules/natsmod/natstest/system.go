package natstest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// StartSystem runs the system's nats-server binary (NATS_SERVER_BIN, or
// nats-server on PATH: Debian's package is 2.9) with JetStream, on a free
// port with a temporary store, and returns its URL and version. It stops at
// cleanup. A missing binary fails the test: make test installs it.
func StartSystem(t testing.TB) (url, version string) {
	t.Helper()
	bin := os.Getenv("NATS_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("nats-server"); err != nil {
			bin, err = exec.LookPath("/usr/sbin/nats-server") // Debian's, off a user's PATH
		}
		if err != nil {
			t.Fatalf("natstest: nats-server not found on PATH: install it (Debian/Ubuntu: apt-get install nats-server; macOS: brew install nats-server) or set NATS_SERVER_BIN; make test installs it where it can")
		}
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("natstest: start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			version = nc.ConnectedServerVersion()
			_, jerr := nc.Request("$JS.API.INFO", nil, time.Second)
			nc.Close()
			if jerr == nil {
				return url, version
			}
			err = jerr
		}
		select {
		case werr := <-done:
			t.Fatalf("natstest: %s exited: %v", bin, werr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: %s not ready at %s: %v", bin, url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
