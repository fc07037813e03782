package httpmod_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

// started starts a server for cfg on a free loopback port and stops it
// with the test.
func started(t *testing.T, cfg httpmod.Config, ms ...httpmod.Mounter) *httpmod.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := newServer(t, cfg, health.NewRegistry(time.Second), ms...)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// waitClosed waits until nothing accepts connections on addr.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	catgatest.Eventually(t, 5*time.Second, addr+" still accepts connections", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
}

func TestServer_StartServesAndStopClosesThePort(t *testing.T) {
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0"}, health.NewRegistry(time.Second))
	if got := s.Addr(); got != "" {
		t.Errorf("Addr before Start: got %q, want empty", got)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := s.Addr()
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr after Start: got %q, want the bound host:port", addr)
	}

	resp, err := client(t).Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /health: got %d %s, want 200", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("dial %s after Stop: got a connection, want refused", addr)
	}
}

func TestServer_StartOnAddressInUseNamesHTTPAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()

	s := newServer(t, httpmod.Config{Addr: ln.Addr().String()}, nil)
	err = s.Start(context.Background())
	if err == nil {
		s.Stop(context.Background())
		t.Fatalf("Start on %s in use: got nil, want an error", ln.Addr())
	}
	if !strings.Contains(err.Error(), "HTTP_ADDR") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Start error: got %q, want it to name HTTP_ADDR and %s", err, ln.Addr())
	}
	if got := s.Addr(); got != "" {
		t.Errorf("Addr after a failed Start: got %q, want empty", got)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a failed Start: got %v, want nil", err)
	}
}

func TestServer_StartTwiceFails(t *testing.T) {
	s := started(t, httpmod.Config{})
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start: got nil, want an error")
	}
}

func TestServer_StopBeforeStartIsANoop(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil)
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop: got %v, want nil", err)
	}
}

func TestServer_StopTwiceIsSafe(t *testing.T) {
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0"}, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	for i := range 2 {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop #%d: got %v, want nil", i+1, err)
		}
	}
}

func TestServer_StopLetsTheRequestInFlightFinish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0"}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/slow", func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		})
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := s.Addr()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	c := client(t)
	go func() {
		resp, err := c.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-entered

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	waitClosed(t, addr) // shutting down, with the request still in its handler
	close(release)

	if r := <-got; r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Errorf("in-flight request: got %d %q %v, want 200 \"done\"", r.status, r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop: got %v, want nil", err)
	}
}

func TestServer_StopClosesWhatIsLeftWhenItsContextEnds(t *testing.T) {
	entered := make(chan struct{})
	handlerDone := make(chan struct{})
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0"}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/stuck", func(_ http.ResponseWriter, r *http.Request) {
			defer close(handlerDone)
			close(entered)
			<-r.Context().Done()
		})
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := s.Addr()

	clientErr := make(chan error, 1)
	c := client(t)
	go func() {
		resp, err := c.Get("http://" + addr + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop: got %v, want context.DeadlineExceeded", err)
	}
	if err := <-clientErr; err == nil {
		t.Error("stuck request: got a response, want its connection closed")
	}
	<-handlerDone
	waitClosed(t, addr)
}

// A client that trickles its headers must be cut off at ReadHeaderTimeout
// (Slowloris): the connection closed, or an error status and then closed.
func TestServer_CutsOffAClientThatSendsHeadersSlowly(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	s := started(t, httpmod.Config{ReadHeaderTimeout: headerTimeout})

	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()

	// 60 bytes at one per 100 ms: six seconds, far past the timeout.
	header := "GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + strings.Repeat("a", 20) + "\r\n\r\n"
	stop := make(chan struct{})
	written := make(chan struct{})
	go func() {
		defer close(written)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := range len(header) {
			if _, err := conn.Write([]byte{header[i]}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-written }()

	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	elapsed := time.Since(start)

	switch {
	case err == nil:
		// net/http answers a header cut short by the deadline with 400 or
		// 408 and Connection: close, depending on where the read stopped.
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("response to a slow header: got %d, want the connection closed, 400 or 408", resp.StatusCode)
		}
		if !resp.Close {
			t.Error("response to a slow header: got a kept-alive connection, want Connection: close")
		}
	case isTimeout(err):
		t.Fatalf("server kept the connection open %v with a %v ReadHeaderTimeout", elapsed, headerTimeout)
	}
	if limit := headerTimeout + 2*time.Second; elapsed > limit {
		t.Errorf("cut off after %v, want under %v for a %v ReadHeaderTimeout", elapsed, limit, headerTimeout)
	}
}

func TestServer_ClosesIdleKeepAliveConnections(t *testing.T) {
	const idle = 200 * time.Millisecond
	s := started(t, httpmod.Config{IdleTimeout: idle})

	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatalf("write request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	_, err = br.ReadByte()
	if isTimeout(err) {
		t.Fatalf("idle connection still open after %v with a %v IdleTimeout", time.Since(start), idle)
	}
	if err == nil {
		t.Fatal("idle connection: got data, want it closed")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
