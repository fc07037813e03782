package httpmod_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	httpmod "github.com/catga-go/catga/modules/http"
)

// These tests talk to a started server over loopback TCP, as a hostile
// client would, with the default Config except where a test names a field.

// startServer starts s, built for 127.0.0.1:0, and stops it with the test.
// It returns the base URL.
func startServer(t *testing.T, s *httpmod.Server) string {
	t.Helper()
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
	return "http://" + s.Addr()
}

// problemResponse checks that resp is a problem+json response with status,
// closes its body and returns the problem and the raw body.
func problemResponse(t *testing.T, resp *http.Response, status int) (httpmod.Problem, string) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	if resp.StatusCode != status {
		t.Errorf("status code: got %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type: got %q, want application/problem+json", got)
	}
	var p httpmod.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode problem %q: %v", body, err)
	}
	if p.Status != status {
		t.Errorf("problem status: got %d, want %d", p.Status, status)
	}
	if p.RequestID == "" {
		t.Error("problem request_id: got none, want the request id")
	}
	return p, string(body)
}

// endlessJSON is a request body of size bytes: one JSON string that never
// closes, so a decoder reads it to the end unless a limit stops it. It
// counts the bytes the client took from it.
type endlessJSON struct {
	r    io.Reader
	read atomic.Int64
}

func newEndlessJSON(size int64) *endlessJSON {
	return &endlessJSON{r: io.LimitReader(io.MultiReader(strings.NewReader(`{"note":"`), filler('a')), size)}
}

func (b *endlessJSON) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// filler is an endless stream of one byte.
type filler byte

func (f filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// postWhileReading sends POST path with body to addr over a raw connection
// and reads the answer while still writing, as a client that sends its
// whole body regardless does. (net/http's client gives up on the response
// when the server hangs up on the rest of the body.) The socket buffers
// little, so the bytes taken from body are about the bytes the server read.
// It returns once the writer has stopped.
func postWhileReading(t *testing.T, addr, path string, body *endlessJSON, size int64, chunked bool) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatalf("set write buffer: %v", err)
	}
	framing := fmt.Sprintf("Content-Length: %d", size)
	if chunked {
		framing = "Transfer-Encoding: chunked"
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n%s\r\n\r\n", path, framing); err != nil {
			return
		}
		if !chunked {
			_, _ = io.Copy(conn, body)
			return
		}
		cw := httputil.NewChunkedWriter(conn)
		if _, err := io.Copy(cw, body); err == nil {
			_ = cw.Close()
			_, _ = io.WriteString(conn, "\r\n")
		}
	}()

	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer to a %d byte body: %v (%d bytes sent)", size, err, body.read.Load())
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read the answer's body: %v", err)
	}
	conn.Close() // stops the writer, if the server has not already
	<-written
	return resp, string(b)
}

func TestServer_Refuses10MBBodyWith413WithoutReadingIt(t *testing.T) {
	const size = 10 << 20
	for _, tc := range []struct {
		name    string
		chunked bool
		// The server reads none of a body whose Content-Length is over
		// the limit, and a chunked one up to its 1 MiB limit; the rest of
		// the margin is socket buffers.
		mostRead int64
	}{
		{"with Content-Length", false, 1 << 20},
		{"chunked", true, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // Stop waits out the half second net/http lingers on a refused body
			var handled atomic.Int32
			s := started(t, httpmod.Config{}, httpmod.MountFunc(func(r chi.Router) {
				r.Post("/notes", func(w http.ResponseWriter, r *http.Request) {
					handled.Add(1)
					if _, err := httpmod.Decode[struct{ Note string }](r); err != nil {
						httpmod.WriteError(w, r, err)
						return
					}
					w.WriteHeader(http.StatusNoContent)
				})
			}))
			body := newEndlessJSON(size)
			resp, raw := postWhileReading(t, s.Addr(), "/notes", body, size, tc.chunked)

			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status code: got %d %s, want 413", resp.StatusCode, raw)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", got)
			}
			var p httpmod.Problem
			if err := json.Unmarshal([]byte(raw), &p); err != nil {
				t.Fatalf("decode problem %q: %v", raw, err)
			}
			if p.Status != http.StatusRequestEntityTooLarge || p.Code != httpmod.CodeTooLarge || p.RequestID == "" {
				t.Errorf("problem: got %+v, want status 413, code %q and a request id", p, httpmod.CodeTooLarge)
			}
			if !resp.Close {
				t.Error("413 keeps the connection open; want Connection: close, the rest of the body unread")
			}
			t.Logf("%d of %d bytes sent before the 413", body.read.Load(), size)
			if n := body.read.Load(); n > tc.mostRead {
				t.Errorf("bytes of the 10 MB body sent: got %d, want at most %d: the server reads past its limit", n, tc.mostRead)
			}
			if n := handled.Load(); !tc.chunked && n != 0 {
				t.Errorf("handler runs for a Content-Length over the limit: got %d, want 0", n)
			}
		})
	}
}

func TestServer_CutsOffSlowlorisAtReadHeaderTimeout(t *testing.T) {
	const headerTimeout = time.Second
	s := started(t, httpmod.Config{ReadHeaderTimeout: headerTimeout})

	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()

	// A header that would take over a minute at one byte per second.
	header := "GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + strings.Repeat("a", 60) + "\r\n\r\n"
	start := time.Now()
	stop := make(chan struct{})
	written := make(chan struct{})
	go func() {
		defer close(written)
		tick := time.NewTicker(time.Second)
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

	// Whatever the server sends (nothing, or a 400 or 408), it must close
	// the connection: the read ends with EOF or a reset, not our deadline.
	_ = conn.SetReadDeadline(start.Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	elapsed := time.Since(start)
	if isTimeout(err) {
		t.Fatalf("connection still open after %v with a %v ReadHeaderTimeout", elapsed, headerTimeout)
	}
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 400") && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Errorf("answer to a slow header: got %q, want nothing, 400 or 408", got)
	}
	if elapsed < headerTimeout-100*time.Millisecond {
		t.Errorf("cut off after %v, before the %v ReadHeaderTimeout", elapsed, headerTimeout)
	}
	if limit := 2*headerTimeout + 500*time.Millisecond; elapsed > limit {
		t.Errorf("cut off after %v, want within %v for a %v ReadHeaderTimeout", elapsed, limit, headerTimeout)
	}
}

// A panic's value and stack are for the log; the client gets a problem
// with the request id to quote.
func TestServer_PanicIs500ProblemWithRequestIDAndNoPanicValueOrStack(t *testing.T) {
	s := started(t, httpmod.Config{}, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/boom/string", func(http.ResponseWriter, *http.Request) { panic("index out of range in " + secret) })
		r.Get("/boom/error", func(http.ResponseWriter, *http.Request) { panic(fmt.Errorf("query failed: %s", secret)) })
		r.Get("/boom/runtime", func(w http.ResponseWriter, _ *http.Request) {
			var m map[string]string
			m[secret] = "x" // assignment to entry in nil map
			_, _ = io.WriteString(w, m[secret])
		})
	}))
	c := client(t)
	for _, path := range []string{"/boom/string", "/boom/error", "/boom/runtime"} {
		t.Run(path, func(t *testing.T) {
			resp, err := c.Get("http://" + s.Addr() + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			p, body := problemResponse(t, resp, http.StatusInternalServerError)
			if p.Code != "internal" {
				t.Errorf("code: got %q, want %q", p.Code, "internal")
			}
			if got := resp.Header.Get("X-Request-Id"); got != p.RequestID {
				t.Errorf("X-Request-Id: got %q, want the problem's request_id %q", got, p.RequestID)
			}
			for _, leak := range []string{
				secret, "hunter2", "index out of range", "query failed", "nil map", "panic",
				"goroutine ", ".go:", "runtime.", "runtime/debug", "httpmod.", "net/http.",
			} {
				if strings.Contains(body, leak) {
					t.Errorf("500 body contains %q: %s", leak, body)
				}
			}
		})
	}
}

// deadLetterPaths are the admin routes, by method.
var deadLetterPaths = []struct{ method, path string }{
	{http.MethodGet, "/catga/deadletters"},
	{http.MethodGet, "/catga/deadletters/01HZX3J8Q4V6N2K9W7B5C1D0EF"},
	{http.MethodPost, "/catga/deadletters/01HZX3J8Q4V6N2K9W7B5C1D0EF/replay"},
}

func TestServer_DeadLetterRoutesAbsentWithoutAdminToken(t *testing.T) {
	bus, _ := deadLetterBus(t)
	s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if s.MountDeadLetters(bus) {
		t.Fatal("MountDeadLetters without an admin token: got true, want false")
	}
	base := startServer(t, s)
	c := client(t)
	for _, r := range deadLetterPaths {
		for _, auth := range []string{"", "Bearer " + adminToken} {
			req, _ := http.NewRequest(r.method, base+r.path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", r.method, r.path, err)
			}
			if p, _ := problemResponse(t, resp, http.StatusNotFound); p.Code != "not_found" {
				t.Errorf("%s %s (Authorization %q): code %q, want not_found", r.method, r.path, auth, p.Code)
			}
		}
	}
}

func TestServer_DeadLetterRoutesNeedTheBearerTokenAndNeverEchoIt(t *testing.T) {
	bus, _ := deadLetterBus(t)
	s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0", AdminToken: adminToken}, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !s.MountDeadLetters(bus) {
		t.Fatal("MountDeadLetters with an admin token: got false, want true")
	}
	base := startServer(t, s)
	c := client(t)

	const wrong = "wrong-token-0123456789-ZZZ"
	for _, r := range deadLetterPaths {
		for _, tc := range []struct {
			name, auth string
		}{
			{"no Authorization", ""},
			{"wrong token", "Bearer " + wrong},
			{"the token with a suffix", "Bearer " + adminToken + wrong},
			{"the token's prefix", "Bearer " + adminToken[:len(adminToken)-1]},
			{"the token as Basic", "Basic " + adminToken},
			{"the token without a scheme", adminToken},
			{"an empty bearer", "Bearer "},
		} {
			t.Run(r.method+" "+r.path+" "+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(r.method, base+r.path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", r.method, r.path, err)
				}
				p, body := problemResponse(t, resp, http.StatusUnauthorized)
				if p.Code != "unauthorized" {
					t.Errorf("code: got %q, want unauthorized", p.Code)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
				}
				echoed := body
				for k, vs := range resp.Header {
					echoed += "\n" + k + ": " + strings.Join(vs, ", ")
				}
				for _, token := range []string{wrong, adminToken, adminToken[:len(adminToken)-1]} {
					if strings.Contains(echoed, token) {
						t.Errorf("401 response echoes %q:\n%s", token, echoed)
					}
				}
			})
		}
	}

	// The token itself opens the routes: the 401s above are the token's doing.
	req, _ := http.NewRequest(http.MethodGet, base+"/catga/deadletters", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /catga/deadletters with the token: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /catga/deadletters with the token: got %d %s, want 200", resp.StatusCode, body)
	}
}
