package httpmod_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

// secret stands for internals (a DSN, a query) a 500 must not send.
const secret = "dial tcp 10.0.0.7:5432: password=hunter2"

func TestWriteError_MapsErrorsToProblems(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		status   int
		code     string
		internal bool // the detail is generic, not the error's text
	}{
		{"invalid", cqrs.NewError(cqrs.CodeInvalid, secret), http.StatusUnprocessableEntity, "invalid", false},
		{"not found", cqrs.NewError(cqrs.CodeNotFound, secret), http.StatusNotFound, "not_found", false},
		{"conflict", cqrs.NewError(cqrs.CodeConflict, secret), http.StatusConflict, "conflict", false},
		{"unauthorized", cqrs.NewError(cqrs.CodeUnauthorized, secret), http.StatusUnauthorized, "unauthorized", false},
		{"unavailable", cqrs.NewError(cqrs.CodeUnavailable, secret), http.StatusServiceUnavailable, "unavailable", false},
		{"timeout", cqrs.NewError(cqrs.CodeTimeout, secret), http.StatusGatewayTimeout, "timeout", false},
		{"internal", cqrs.NewError(cqrs.CodeInternal, secret), http.StatusInternalServerError, "internal", true},
		{"payload too large", &cqrs.PayloadTooLargeError{Name: "CreateOrder", Size: 2 << 20, Limit: 1 << 20}, http.StatusRequestEntityTooLarge, "too_large", false},
		{"wrapped code", fmt.Errorf("load order: %w", cqrs.Errorf(cqrs.CodeNotFound, "order %s", "o1")), http.StatusNotFound, "not_found", false},
		{"deadline", fmt.Errorf("ask: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "timeout", false},
		{"no handler", cqrs.ErrNoHandler, http.StatusServiceUnavailable, "unavailable", false},
		{"plain error", errors.New(secret), http.StatusInternalServerError, "internal", true},
		{"unknown code", cqrs.NewError(cqrs.Code("teapot"), secret), http.StatusInternalServerError, "internal", true},
		{"request error", &httpmod.RequestError{Status: http.StatusBadRequest, Code: httpmod.CodeMalformed, Err: errors.New(secret)}, http.StatusBadRequest, "malformed", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, httpmod.Config{}, nil, httpmod.MountFunc(func(r chi.Router) {
				r.Get("/fail", func(w http.ResponseWriter, r *http.Request) { httpmod.WriteError(w, r, tc.err) })
			}))
			req := httptest.NewRequest(http.MethodGet, "/fail", nil)
			req.Header.Set("X-Request-Id", "req-42")
			rec := do(t, s.Handler(), req)

			p := problemOf(t, rec, tc.status)
			if p.Code != tc.code {
				t.Errorf("code: got %q, want %q", p.Code, tc.code)
			}
			if p.RequestID != "req-42" {
				t.Errorf("request_id: got %q, want %q", p.RequestID, "req-42")
			}
			if p.Type != "about:blank" {
				t.Errorf("type: got %q, want %q", p.Type, "about:blank")
			}
			if p.Instance != "/fail" {
				t.Errorf("instance: got %q, want %q", p.Instance, "/fail")
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q, want %q", got, "nosniff")
			}
			if tc.internal {
				if strings.Contains(rec.Body.String(), "hunter2") {
					t.Errorf("500 body leaks the error: %s", rec.Body)
				}
				if p.Detail == "" {
					t.Error("500 detail: got none, want a generic one")
				}
			} else if p.Detail != tc.err.Error() {
				t.Errorf("detail: got %q, want %q", p.Detail, tc.err.Error())
			}
		})
	}
}

func TestWriteProblem_KeepsGivenTypeAndTitle(t *testing.T) {
	rec := httptest.NewRecorder()
	httpmod.WriteProblem(rec, httptest.NewRequest(http.MethodGet, "/orders/o1", nil), httpmod.Problem{
		Type: "https://example.com/probs/out-of-stock", Title: "Out of stock", Status: http.StatusConflict, Code: "conflict",
	})
	if rec.Code != http.StatusConflict {
		t.Errorf("status code: got %d, want %d", rec.Code, http.StatusConflict)
	}
	body := rec.Body.String()
	for _, want := range []string{`"type":"https://example.com/probs/out-of-stock"`, `"title":"Out of stock"`, `"instance":"/orders/o1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s: missing %s", body, want)
		}
	}
}

func TestRequestError_UnwrapsItsCause(t *testing.T) {
	cause := errors.New("unexpected EOF")
	err := &httpmod.RequestError{Status: http.StatusBadRequest, Code: httpmod.CodeMalformed, Err: cause}
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(RequestError, cause): got false, want true")
	}
	if got := err.Error(); got != cause.Error() {
		t.Errorf("Error(): got %q, want %q", got, cause.Error())
	}
}
