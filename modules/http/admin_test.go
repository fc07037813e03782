package httpmod_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

// fakeMetrics stands in for app's Prometheus handler.
var fakeMetrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = io.WriteString(w, "catga_up 1\n")
})

// withAdmin builds a server on two free loopback ports, with probes and
// /metrics.
func withAdmin(t *testing.T, cfg httpmod.Config) *httpmod.Server {
	t.Helper()
	cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	s, err := httpmod.New(cfg, health.NewRegistry(time.Second), nil, httpmod.WithMetrics(fakeMetrics))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// status GETs url (with a bearer token when not empty) and returns the
// status code.
func status(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestAdminAddr_MetricsOnlyOnTheAdminPort(t *testing.T) {
	s := withAdmin(t, httpmod.Config{})
	startServer(t, s)
	public, admin := "http://"+s.Addr(), "http://"+s.AdminAddr()
	if s.AdminAddr() == "" || s.AdminAddr() == s.Addr() {
		t.Fatalf("AdminAddr: got %q with Addr %q, want a port of its own", s.AdminAddr(), s.Addr())
	}
	c := client(t)
	for _, tc := range []struct {
		url  string
		want int
	}{
		{public + "/metrics", http.StatusNotFound},
		{admin + "/metrics", http.StatusOK},
		{public + "/health", http.StatusOK}, // Kubernetes probes the main port
		{public + "/ready", http.StatusServiceUnavailable},
		{admin + "/health", http.StatusOK},
		{admin + "/ready", http.StatusServiceUnavailable},
		{admin + "/nowhere", http.StatusNotFound},
	} {
		if got := status(t, c, tc.url, ""); got != tc.want {
			t.Errorf("GET %s: got %d, want %d", tc.url, got, tc.want)
		}
	}
}

func TestAdminAddr_DeadLetterRoutesOnlyOnTheAdminPort(t *testing.T) {
	bus, _ := deadLetterBus(t)
	s := withAdmin(t, httpmod.Config{AdminToken: adminToken})
	if !s.MountDeadLetters(bus) {
		t.Fatal("MountDeadLetters with a token: got false, want true")
	}
	startServer(t, s)
	c := client(t)
	if got := status(t, c, "http://"+s.Addr()+"/catga/deadletters", adminToken); got != http.StatusNotFound {
		t.Errorf("GET /catga/deadletters on the public port: got %d, want 404", got)
	}
	if got := status(t, c, "http://"+s.AdminAddr()+"/catga/deadletters", adminToken); got != http.StatusOK {
		t.Errorf("GET /catga/deadletters on the admin port: got %d, want 200", got)
	}
	if got := status(t, c, "http://"+s.AdminAddr()+"/catga/deadletters", ""); got != http.StatusUnauthorized {
		t.Errorf("GET /catga/deadletters on the admin port without the token: got %d, want 401", got)
	}
}

func TestAdminAddr_MountAdminAddsOperationalRoutesToTheAdminPort(t *testing.T) {
	s := withAdmin(t, httpmod.Config{})
	s.MountAdmin(pathRoute("/debug/flags"))
	startServer(t, s)
	c := client(t)
	if got := status(t, c, "http://"+s.Addr()+"/debug/flags", ""); got != http.StatusNotFound {
		t.Errorf("GET /debug/flags on the public port: got %d, want 404", got)
	}
	if got := status(t, c, "http://"+s.AdminAddr()+"/debug/flags", ""); got != http.StatusNoContent {
		t.Errorf("GET /debug/flags on the admin port: got %d, want 204", got)
	}
}

func TestAdminAddr_EmptyServesEverythingOnHTTPAddr(t *testing.T) {
	s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, health.NewRegistry(time.Second), nil, httpmod.WithMetrics(fakeMetrics))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.MountAdmin(pathRoute("/debug/flags"))
	base := startServer(t, s)
	if s.AdminAddr() != s.Addr() {
		t.Errorf("AdminAddr: got %q, want Addr %q", s.AdminAddr(), s.Addr())
	}
	c := client(t)
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/flags": http.StatusNoContent, "/health": http.StatusOK} {
		if got := status(t, c, base+path, ""); got != want {
			t.Errorf("GET %s: got %d, want %d", path, got, want)
		}
	}
}

func TestAdminAddr_StopClosesBothPorts(t *testing.T) {
	s := withAdmin(t, httpmod.Config{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	public, admin := s.Addr(), s.AdminAddr()
	if admin == "" || admin == public {
		t.Fatalf("AdminAddr: got %q with Addr %q, want a port of its own", admin, public)
	}
	c := client(t)
	if got := status(t, c, "http://"+admin+"/metrics", ""); got != http.StatusOK {
		t.Fatalf("GET /metrics on the admin port: got %d, want 200", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, addr := range []string{public, admin} {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("dial %s after Stop: got a connection, want refused", addr)
		}
	}
}

// Both servers share Stop's context: a request stuck on the admin port is
// cut off when it ends, and the public port is closed as well.
func TestAdminAddr_StopEndsBothWithinItsContext(t *testing.T) {
	entered := make(chan struct{})
	s := withAdmin(t, httpmod.Config{})
	s.MountAdmin(httpmod.MountFunc(func(r chi.Router) {
		r.Get("/stuck", func(_ http.ResponseWriter, r *http.Request) {
			close(entered)
			<-r.Context().Done()
		})
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	public, admin := s.Addr(), s.AdminAddr()
	if admin == "" || admin == public {
		_ = s.Stop(context.Background())
		t.Fatalf("AdminAddr: got %q with Addr %q, want a port of its own", admin, public)
	}
	clientErr := make(chan error, 1)
	c := client(t)
	go func() {
		resp, err := c.Get("http://" + admin + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop: got %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Stop took %v with a 200ms context", elapsed)
	}
	if err := <-clientErr; err == nil {
		t.Error("stuck admin request: got a response, want its connection closed")
	}
	waitClosed(t, public)
	waitClosed(t, admin)
}

func TestAdminAddr_InUseFailsStartNamingItAndLeavesNothingOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0", AdminAddr: ln.Addr().String()}, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	err = s.Start(context.Background())
	if err == nil {
		_ = s.Stop(context.Background())
		t.Fatalf("Start with HTTP_ADMIN_ADDR %s in use: got nil, want an error", ln.Addr())
	}
	if !strings.Contains(err.Error(), "HTTP_ADMIN_ADDR") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Start error: got %q, want it to name HTTP_ADMIN_ADDR and %s", err, ln.Addr())
	}
	if got := s.Addr(); got != "" {
		t.Errorf("Addr after a failed Start: got %q, want empty (the public listener closed)", got)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a failed Start: got %v, want nil", err)
	}
	// goleak (TestMain) finds a server left serving.
}

func TestConfigValidate_AdminAddr(t *testing.T) {
	for _, tc := range []struct {
		name      string
		addr      string
		admin     string
		variables []string
	}{
		{"not host:port", ":8080", "admin", []string{"HTTP_ADMIN_ADDR"}},
		{"the same as HTTP_ADDR", ":8080", ":8080", []string{"HTTP_ADMIN_ADDR", "HTTP_ADDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := httpmod.Config{Addr: tc.addr, AdminAddr: tc.admin}.WithDefaults().Validate()
			if err == nil {
				t.Fatalf("Validate with HTTP_ADMIN_ADDR %q: got nil, want an error", tc.admin)
			}
			for _, v := range tc.variables {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("Validate error: got %q, want it to name %s", err, v)
				}
			}
		})
	}
	for _, admin := range []string{"", ":9090", "127.0.0.1:0"} {
		if err := (httpmod.Config{Addr: "127.0.0.1:0", AdminAddr: admin}).WithDefaults().Validate(); err != nil {
			t.Errorf("Validate with HTTP_ADMIN_ADDR %q: got %v, want nil", admin, err)
		}
	}
}

func TestModule_AdminServerStartsAndStopsWithTheMainOne(t *testing.T) {
	setHTTPEnv(t, map[string]string{"HTTP_ADDR": "127.0.0.1:0", "HTTP_ADMIN_ADDR": "127.0.0.1:0"})
	var s *httpmod.Server
	app := fxtest.New(t, health.Module, httpmod.Module,
		fx.Supply(fx.Annotate(fakeMetrics, fx.As(new(http.Handler)), fx.ResultTags(`name:"catga.metrics"`))),
		fx.Populate(&s))
	app.RequireStart()

	public, admin := s.Addr(), s.AdminAddr()
	if public == "" || admin == "" || public == admin {
		t.Fatalf("after start: Addr %q, AdminAddr %q, want two bound addresses", public, admin)
	}
	c := client(t)
	if got := status(t, c, "http://"+public+"/metrics", ""); got != http.StatusNotFound {
		t.Errorf("GET /metrics on HTTP_ADDR: got %d, want 404", got)
	}
	if got := status(t, c, "http://"+admin+"/metrics", ""); got != http.StatusOK {
		t.Errorf("GET /metrics on HTTP_ADMIN_ADDR: got %d, want 200", got)
	}

	app.RequireStop()
	for _, addr := range []string{public, admin} {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("dial %s after stop: got a connection, want refused", addr)
		}
	}
}
