package httpmod_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

// The server serves on its own goroutine; none may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newServer builds a server for cfg with reg and ms mounted.
func newServer(t *testing.T, cfg httpmod.Config, reg *health.Registry, ms ...httpmod.Mounter) *httpmod.Server {
	t.Helper()
	s, err := httpmod.New(cfg, reg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.Mount(ms...)
	return s
}

// do serves req on h.
func do(t *testing.T, h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problemOf checks that rec is a problem+json response with status and
// decodes it.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder, status int) httpmod.Problem {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status code: got %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type: got %q, want %q", got, "application/problem+json")
	}
	var p httpmod.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %q: %v", rec.Body, err)
	}
	if p.Status != status {
		t.Errorf("problem status: got %d, want %d", p.Status, status)
	}
	if want := http.StatusText(status); p.Title != want {
		t.Errorf("problem title: got %q, want %q", p.Title, want)
	}
	if p.RequestID == "" {
		t.Error("problem request_id: got none, want the request id")
	}
	return p
}

// unsized hides the length of a body, so the request is sent chunked.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// chunked returns a request whose body has no Content-Length.
func chunked(method, target, body string) *http.Request {
	req := httptest.NewRequest(method, target, unsized{strings.NewReader(body)})
	req.ContentLength = -1
	return req
}

// client returns an HTTP client whose connections close with the test.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
