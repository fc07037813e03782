package httpmod_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

func TestModule_ServerListensFromStartToStop(t *testing.T) {
	setHTTPEnv(t, map[string]string{"HTTP_ADDR": "127.0.0.1:0"})
	var s *httpmod.Server
	app := fxtest.New(t, health.Module, httpmod.Module, fx.Populate(&s))
	app.RequireStart()

	addr := s.Addr()
	if addr == "" {
		t.Fatal("Addr after start: got empty, want the bound address")
	}
	resp, err := client(t).Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /health: got %d, want %d", resp.StatusCode, http.StatusOK)
	}

	app.RequireStop()
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("dial %s after stop: got a connection, want refused", addr)
	}
}

func TestModule_BadEnvironmentFailsStartup(t *testing.T) {
	setHTTPEnv(t, map[string]string{"HTTP_ADDR": "no-port"})
	app := fx.New(fx.NopLogger, httpmod.Module, fx.Invoke(func(*httpmod.Server) {}))
	if err := app.Err(); err == nil {
		t.Error("fx.New with HTTP_ADDR=no-port: got nil, want an error")
	}
}

// pathRoute serves 204 on GET path.
type pathRoute string

func (p pathRoute) Mount(r chi.Router) {
	r.Get(string(p), func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// Module mounts every route added with Routes on the server it provides.
func TestRoutes_AddsMountersFuncsAndConstructors(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	var s *httpmod.Server
	app := fxtest.New(t,
		httpmod.Module,
		fx.Supply(pathRoute("/ctor")),
		httpmod.Routes(pathRoute("/value")),
		httpmod.Routes(func(r chi.Router) { pathRoute("/func").Mount(r) }),
		httpmod.Routes(func(p pathRoute) httpmod.Mounter { return p }),
		fx.Populate(&s),
	)
	app.RequireStart().RequireStop()

	for _, path := range []string{"/value", "/func", "/ctor"} {
		if code := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, path, nil)).Code; code != http.StatusNoContent {
			t.Errorf("GET %s: got %d, want %d", path, code, http.StatusNoContent)
		}
	}
}

func TestRoutes_RejectsWhatIsNotAMounter(t *testing.T) {
	app := fx.New(fx.NopLogger, httpmod.Module, httpmod.Routes(42))
	if app.Err() == nil {
		t.Error("fx.New with httpmod.Routes(42): got nil, want an error")
	}
}
