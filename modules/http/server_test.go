package httpmod_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

func TestUnknownRoute_404Problem(t *testing.T) {
	s := newServer(t, httpmod.Config{}, health.NewRegistry(time.Second))
	rec := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))

	p := problemOf(t, rec, http.StatusNotFound)
	if p.Code != "not_found" {
		t.Errorf("code: got %q, want %q", p.Code, "not_found")
	}
	if p.Instance != "/nowhere" {
		t.Errorf("instance: got %q, want %q", p.Instance, "/nowhere")
	}
}

func TestWrongMethod_405Problem(t *testing.T) {
	s := newServer(t, httpmod.Config{}, health.NewRegistry(time.Second))
	rec := do(t, s.Handler(), httptest.NewRequest(http.MethodDelete, "/health", nil))

	if p := problemOf(t, rec, http.StatusMethodNotAllowed); p.Code != "method_not_allowed" {
		t.Errorf("code: got %q, want %q", p.Code, "method_not_allowed")
	}
}

// RFC 9110 section 15.5.6: a 405 response MUST carry Allow. chi sets it in
// its own 405 handler, not in a custom one.
func TestWrongMethod_405ListsAllowedMethods(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/orders", func(http.ResponseWriter, *http.Request) {})
		r.Post("/orders", func(http.ResponseWriter, *http.Request) {})
	}))
	rec := do(t, s.Handler(), httptest.NewRequest(http.MethodDelete, "/orders", nil))

	got := rec.Header().Values("Allow")
	sort.Strings(got)
	if want := []string{"GET", "POST"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Allow: got %v, want %v", got, want)
	}
}

func TestProbes_MountedWithRegistry(t *testing.T) {
	reg := health.NewRegistry(time.Second)
	s := newServer(t, httpmod.Config{}, reg)
	h := s.Handler()

	probe := func(path string) int {
		t.Helper()
		return do(t, h, httptest.NewRequest(http.MethodGet, path, nil)).Code
	}
	if got := probe("/health"); got != http.StatusOK {
		t.Errorf("/health while starting: got %d, want %d", got, http.StatusOK)
	}
	if got := probe("/ready"); got != http.StatusServiceUnavailable {
		t.Errorf("/ready while starting: got %d, want %d", got, http.StatusServiceUnavailable)
	}
	reg.SetState(health.Serving)
	if got := probe("/ready"); got != http.StatusOK {
		t.Errorf("/ready while serving: got %d, want %d", got, http.StatusOK)
	}
	reg.SetState(health.Draining)
	if got := probe("/ready"); got != http.StatusServiceUnavailable {
		t.Errorf("/ready while draining: got %d, want %d", got, http.StatusServiceUnavailable)
	}
	if got := probe("/health"); got != http.StatusOK {
		t.Errorf("/health while draining: got %d, want %d", got, http.StatusOK)
	}
}

// chi runs a router's middleware only once a route is on it; a server
// with no registry and nothing mounted yet answers with no request id, no
// access log line and no recoverer.
func TestServer_WithoutRoutesStillRunsMiddleware(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil)
	req := httptest.NewRequest(http.MethodGet, "/nowhere", nil)
	req.Header.Set("X-Request-Id", "req-bare")
	rec := do(t, s.Handler(), req)

	if p := problemOf(t, rec, http.StatusNotFound); p.RequestID != "req-bare" {
		t.Errorf("request_id: got %q, want %q: the middleware did not run", p.RequestID, "req-bare")
	}
}

func TestProbes_AbsentWithoutRegistry(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil)
	for _, path := range []string{"/health", "/ready"} {
		if got := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, path, nil)).Code; got != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want %d", path, got, http.StatusNotFound)
		}
	}
}

func TestRequestID_EchoesTheClientsHeader(t *testing.T) {
	s := newServer(t, httpmod.Config{}, health.NewRegistry(time.Second))
	req := httptest.NewRequest(http.MethodGet, "/nowhere", nil)
	req.Header.Set("X-Request-Id", "req-from-client")
	rec := do(t, s.Handler(), req)

	if got := rec.Header().Get("X-Request-Id"); got != "req-from-client" {
		t.Errorf("X-Request-Id response header: got %q, want %q", got, "req-from-client")
	}
	if p := problemOf(t, rec, http.StatusNotFound); p.RequestID != "req-from-client" {
		t.Errorf("request_id: got %q, want %q", p.RequestID, "req-from-client")
	}
}

func TestRequestID_SetWhenTheClientSendsNone(t *testing.T) {
	s := newServer(t, httpmod.Config{}, health.NewRegistry(time.Second))
	rec := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))

	p := problemOf(t, rec, http.StatusNotFound)
	if got := rec.Header().Get("X-Request-Id"); got == "" || got != p.RequestID {
		t.Errorf("X-Request-Id response header: got %q, want the problem's request_id %q", got, p.RequestID)
	}
}

func TestRequestID_DiffersPerRequest(t *testing.T) {
	s := newServer(t, httpmod.Config{}, health.NewRegistry(time.Second))
	a := problemOf(t, do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/a", nil)), http.StatusNotFound)
	b := problemOf(t, do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/b", nil)), http.StatusNotFound)
	if a.RequestID == b.RequestID {
		t.Errorf("request ids: got %q twice, want two", a.RequestID)
	}
}

func TestPanic_500ProblemWithRequestIDAndNoPanicText(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("index out of range in " + secret) })
	}))
	req := httptest.NewRequest(http.MethodGet, "/boom", nil)
	req.Header.Set("X-Request-Id", "req-boom")
	rec := do(t, s.Handler(), req)

	p := problemOf(t, rec, http.StatusInternalServerError)
	if p.Code != "internal" {
		t.Errorf("code: got %q, want %q", p.Code, "internal")
	}
	if p.RequestID != "req-boom" {
		t.Errorf("request_id: got %q, want %q", p.RequestID, "req-boom")
	}
	if body := rec.Body.String(); strings.Contains(body, "hunter2") || strings.Contains(body, "index out of range") || strings.Contains(body, "panic") {
		t.Errorf("500 body leaks the panic: %s", body)
	}
}

func TestPanic_ErrAbortHandlerPassesThrough(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("panic: got %v, want http.ErrAbortHandler re-panicked for net/http", v)
		}
	}()
	do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/abort", nil))
}

// logged serves req on a server that logs to an observer at debug and
// returns the access log entries.
func logged(t *testing.T, route http.HandlerFunc, req *http.Request) []observer.LoggedEntry {
	t.Helper()
	return loggedIn(t, health.Serving, route, req)
}

// loggedIn is logged with the health registry in state.
func loggedIn(t *testing.T, state health.State, route http.HandlerFunc, req *http.Request) []observer.LoggedEntry {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := health.NewRegistry(time.Second)
	reg.SetState(state)
	s, err := httpmod.New(httpmod.Config{}, reg, zap.New(core))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if route == nil {
		route = func(http.ResponseWriter, *http.Request) {}
	}
	s.Mount(httpmod.MountFunc(func(r chi.Router) { r.Get("/route", route) }))
	do(t, s.Handler(), req)
	return logs.FilterMessage("http request").AllUntimed()
}

func TestAccessLog_OneLinePerRequestAtItsLevel(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		route  http.HandlerFunc
		level  zapcore.Level
		status int64
	}{
		{"ok", "/route", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, zapcore.InfoLevel, 204},
		{"implicit 200", "/route", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) }, zapcore.InfoLevel, 200},
		{"server error", "/route", func(w http.ResponseWriter, r *http.Request) {
			httpmod.WriteError(w, r, errors.New("x"))
		}, zapcore.ErrorLevel, 500},
		{"not found", "/nowhere", nil, zapcore.InfoLevel, 404},
		{"liveness probe", "/health", nil, zapcore.DebugLevel, 200},
		{"readiness probe", "/ready", nil, zapcore.DebugLevel, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route := tc.route
			if route == nil {
				route = func(http.ResponseWriter, *http.Request) {}
			}
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.Header.Set("X-Request-Id", "req-log")
			entries := logged(t, route, req)
			if len(entries) != 1 {
				t.Fatalf("access log lines: got %d, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != tc.level {
				t.Errorf("level: got %v, want %v", e.Level, tc.level)
			}
			fields := e.ContextMap()
			if got := fields["status"]; got != tc.status {
				t.Errorf("status field: got %v, want %d", got, tc.status)
			}
			for k, want := range map[string]any{"method": "GET", "path": tc.path, "request_id": "req-log"} {
				if got := fields[k]; got != want {
					t.Errorf("%s field: got %v, want %v", k, got, want)
				}
			}
		})
	}
}

// A pod that is starting or draining answers /ready 503 to every probe:
// that is the probe working, not an error to page anyone about.
func TestAccessLog_UnreadyProbeIsNotLoggedAsAnError(t *testing.T) {
	for _, state := range []health.State{health.Starting, health.Draining} {
		t.Run(state.String(), func(t *testing.T) {
			entries := loggedIn(t, state, nil, httptest.NewRequest(http.MethodGet, "/ready", nil))
			if len(entries) != 1 {
				t.Fatalf("access log lines: got %d, want 1", len(entries))
			}
			e := entries[0]
			if got := e.ContextMap()["status"]; got != int64(http.StatusServiceUnavailable) {
				t.Fatalf("status field: got %v, want 503", got)
			}
			if e.Level > zapcore.InfoLevel {
				t.Errorf("level of GET /ready 503: got %v, want info at most", e.Level)
			}
		})
	}
}

// Only the probes are spared: a real route's 503 is still an error.
func TestAccessLog_RouteUnavailableIsStillAnError(t *testing.T) {
	entries := loggedIn(t, health.Starting, func(w http.ResponseWriter, r *http.Request) {
		httpmod.WriteError(w, r, cqrs.ErrUnavailable)
	}, httptest.NewRequest(http.MethodGet, "/route", nil))
	if len(entries) != 1 {
		t.Fatalf("access log lines: got %d, want 1", len(entries))
	}
	if e := entries[0]; e.Level != zapcore.ErrorLevel || e.ContextMap()["status"] != int64(http.StatusServiceUnavailable) {
		t.Errorf("GET /route 503: got level %v status %v, want error 503", e.Level, e.ContextMap()["status"])
	}
}

func TestAccessLog_ServerErrorCarriesTheCause(t *testing.T) {
	entries := logged(t, func(w http.ResponseWriter, r *http.Request) {
		httpmod.WriteError(w, r, errors.New(secret))
	}, httptest.NewRequest(http.MethodGet, "/route", nil))
	if len(entries) != 1 {
		t.Fatalf("access log lines: got %d, want 1", len(entries))
	}
	if got := entries[0].ContextMap()["error"]; got != secret {
		t.Errorf("error field: got %v, want %q", got, secret)
	}
}

func TestAccessLog_ClientErrorHasNoErrorField(t *testing.T) {
	entries := logged(t, func(w http.ResponseWriter, r *http.Request) {
		httpmod.WriteError(w, r, &httpmod.RequestError{Status: http.StatusBadRequest, Code: httpmod.CodeMalformed, Err: errors.New("bad")})
	}, httptest.NewRequest(http.MethodGet, "/route", nil))
	if len(entries) != 1 {
		t.Fatalf("access log lines: got %d, want 1", len(entries))
	}
	if e := entries[0]; e.Level != zapcore.InfoLevel {
		t.Errorf("level: got %v, want %v", e.Level, zapcore.InfoLevel)
	} else if _, ok := e.ContextMap()["error"]; ok {
		t.Errorf("fields: got an error field on a 4xx, want none")
	}
}

func TestRouter_AddsRoutesLikeMount(t *testing.T) {
	s := newServer(t, httpmod.Config{}, nil)
	s.Router().Get("/direct", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	if got := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/direct", nil)).Code; got != http.StatusTeapot {
		t.Errorf("GET /direct: got %d, want %d", got, http.StatusTeapot)
	}
}

// AccessLog used on its own, outside the server, keeps its own error note.
func TestAccessLog_AloneCarriesTheCause(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := httpmod.AccessLog(zap.New(core))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpmod.WriteError(w, r, errors.New("disk on fire"))
	}))
	do(t, h, httptest.NewRequest(http.MethodGet, "/route", nil))
	entries := logs.FilterMessage("http request").AllUntimed()
	if len(entries) != 1 {
		t.Fatalf("%d access log lines, want 1", len(entries))
	}
	if got := entries[0].ContextMap()["error"]; got != "disk on fire" {
		t.Errorf("error field: %v, want the handler's cause", got)
	}
}
