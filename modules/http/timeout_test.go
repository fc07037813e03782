package httpmod_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

// brokerDown blocks as a request to a broker that never answers does:
// until ctx ends, or its own request timeout passes.
func brokerDown(ctx context.Context, requestTimeout time.Duration) error {
	t := time.NewTimer(requestTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return cqrs.NewError(cqrs.CodeTimeout, "nats: timeout")
	}
}

// The broker's request timeout equals the write timeout, as
// NATS_REQUEST_TIMEOUT and HTTP_WRITE_TIMEOUT both default to 30 s: without
// a handler deadline below the write timeout the handler writes its 504
// after the server has given up on the connection, and the client gets
// nothing.
func TestHandlerTimeout_ClientGets504ProblemNotADroppedConnection(t *testing.T) {
	const writeTimeout = time.Second
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0", WriteTimeout: writeTimeout, HandlerTimeout: 200 * time.Millisecond}, nil,
		httpmod.MountFunc(func(r chi.Router) {
			r.Post("/orders", func(w http.ResponseWriter, r *http.Request) {
				httpmod.WriteError(w, r, brokerDown(r.Context(), writeTimeout))
			})
		}))
	base := startServer(t, s)
	c := client(t)
	c.Timeout = 5 * time.Second

	start := time.Now()
	resp, err := c.Post(base+"/orders", "application/json", strings.NewReader(`{"customer_id":"c1"}`))
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("POST /orders: got %v after %v, want a 504 problem", err, elapsed)
	}
	if p, _ := problemResponse(t, resp, http.StatusGatewayTimeout); p.Code != string(cqrs.CodeTimeout) {
		t.Errorf("code: got %q, want %q", p.Code, cqrs.CodeTimeout)
	}
	if elapsed >= writeTimeout {
		t.Errorf("504 after %v, want it before the %v write timeout", elapsed, writeTimeout)
	}
}

// A handler that gives up on its deadline without writing anything still
// answers: a 504, not an empty 200.
func TestHandlerTimeout_HandlerThatWritesNothingAnswers504(t *testing.T) {
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0", HandlerTimeout: 100 * time.Millisecond}, nil,
		httpmod.MountFunc(func(r chi.Router) {
			r.Get("/stuck", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		}))
	base := startServer(t, s)
	c := client(t)
	c.Timeout = 3 * time.Second

	resp, err := c.Get(base + "/stuck")
	if err != nil {
		t.Fatalf("GET /stuck: got %v, want a 504 problem", err)
	}
	if p, _ := problemResponse(t, resp, http.StatusGatewayTimeout); p.Code != string(cqrs.CodeTimeout) {
		t.Errorf("code: got %q, want %q", p.Code, cqrs.CodeTimeout)
	}
}

// The deadline is the request context's, so everything the handler sends
// on the bus inherits it.
func TestHandlerTimeout_IsTheRequestContextsDeadline(t *testing.T) {
	const timeout = 3 * time.Second
	var left time.Duration
	s := newServer(t, httpmod.Config{HandlerTimeout: timeout}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/deadline", func(w http.ResponseWriter, r *http.Request) {
			if d, ok := r.Context().Deadline(); ok {
				left = time.Until(d)
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}))
	do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/deadline", nil))
	if left <= 0 || left > timeout {
		t.Errorf("time left on the request context: got %v, want a deadline within %v", left, timeout)
	}
}

func TestConfigWithDefaults_HandlerTimeoutBelowTheWriteTimeout(t *testing.T) {
	tests := []struct{ write, want time.Duration }{
		{0, 25 * time.Second}, // the default write timeout, 30 s
		{30 * time.Second, 25 * time.Second},
		{12 * time.Second, 10 * time.Second},
		{time.Second, time.Second - time.Second/6},
	}
	for _, tc := range tests {
		c := httpmod.Config{WriteTimeout: tc.write}.WithDefaults()
		if c.HandlerTimeout != tc.want {
			t.Errorf("HandlerTimeout with HTTP_WRITE_TIMEOUT %v: got %v, want %v", c.WriteTimeout, c.HandlerTimeout, tc.want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with HTTP_WRITE_TIMEOUT %v: got %v, want nil", c.WriteTimeout, err)
		}
	}
}

func TestConfigValidate_HandlerTimeoutMustBePositiveAndBelowTheWriteTimeout(t *testing.T) {
	tests := []struct {
		name      string
		handler   time.Duration
		variables []string
	}{
		{"negative", -time.Second, []string{"HTTP_HANDLER_TIMEOUT"}},
		{"equal to the write timeout", 30 * time.Second, []string{"HTTP_HANDLER_TIMEOUT", "HTTP_WRITE_TIMEOUT"}},
		{"over the write timeout", time.Minute, []string{"HTTP_HANDLER_TIMEOUT", "HTTP_WRITE_TIMEOUT"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := httpmod.Config{WriteTimeout: 30 * time.Second, HandlerTimeout: tc.handler}.WithDefaults()
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate with HTTP_HANDLER_TIMEOUT %v: got nil, want an error", tc.handler)
			}
			for _, v := range tc.variables {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("Validate error: got %q, want it to name %s", err, v)
				}
			}
		})
	}
}
