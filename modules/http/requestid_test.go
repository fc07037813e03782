package httpmod_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

// requestID serves a request with no X-Request-Id on h and returns the id
// the server gave it.
func requestID(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := do(t, h, httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	return problemOf(t, rec, http.StatusNotFound).RequestID
}

func TestRequestID_PrefixIsTheInstance(t *testing.T) {
	const instance = "orders-7"
	if h, _ := os.Hostname(); h == instance {
		t.Skipf("the host is named %s: the test cannot tell the instance from it", instance)
	}
	s, err := httpmod.New(httpmod.Config{}, nil, nil, httpmod.WithInstance(instance))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if id := requestID(t, s.Handler()); !strings.HasPrefix(id, instance+"/") {
		t.Errorf("request id: got %q, want it to start with %q", id, instance+"/")
	}
}

func TestRequestID_PrefixIsHOSTNAMEWithoutAnInstance(t *testing.T) {
	const instance = "pod-from-hostname-env"
	t.Setenv("HOSTNAME", instance)
	s := newServer(t, httpmod.Config{}, nil)
	if id := requestID(t, s.Handler()); !strings.HasPrefix(id, instance+"/") {
		t.Errorf("request id with HOSTNAME=%s: got %q, want it to start with %q", instance, id, instance+"/")
	}
}

// In fx the instance is the bus's (app resolves HOSTNAME into it), as it
// is for natsmod's connection name.
func TestModule_RequestIDsUseTheBusInstance(t *testing.T) {
	setHTTPEnv(t, map[string]string{"HTTP_ADDR": "127.0.0.1:0"})
	t.Setenv("HOSTNAME", "not-this-one")
	var s *httpmod.Server
	app := fxtest.New(t, httpmod.Module, fx.Supply(cqrs.Config{Service: "orders", Instance: "orders-pod-3"}), fx.Populate(&s))
	app.RequireStart()
	defer app.RequireStop()

	if id := requestID(t, s.Handler()); !strings.HasPrefix(id, "orders-pod-3/") {
		t.Errorf("request id: got %q, want it to start with %q", id, "orders-pod-3/")
	}
}

func TestRequestID_CountsUpPerServer(t *testing.T) {
	s, err := httpmod.New(httpmod.Config{}, nil, nil, httpmod.WithInstance("i"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a, b := requestID(t, s.Handler()), requestID(t, s.Handler())
	if !strings.HasSuffix(a, "-000001") || !strings.HasSuffix(b, "-000002") {
		t.Errorf("request ids: got %q then %q, want them to end -000001 and -000002", a, b)
	}
}
