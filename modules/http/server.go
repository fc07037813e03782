package httpmod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/health"
)

// Mounter adds routes to the router.
type Mounter interface {
	Mount(r chi.Router)
}

// MountFunc adapts a function to a Mounter.
type MountFunc func(r chi.Router)

// Mount calls f.
func (f MountFunc) Mount(r chi.Router) { f(r) }

// Server is the HTTP server. Build it with New, add routes with Mount,
// then Start and Stop it (fx does both). With Config.AdminAddr set it is
// two servers, public and admin, started and stopped together.
type Server struct {
	cfg    Config
	log    *zap.Logger
	router chi.Router // the public routes
	admin  chi.Router // /metrics and the admin routes: router itself without AdminAddr

	public   *listener
	adminSrv *listener // nil without AdminAddr

	mu      sync.Mutex
	started bool
}

// listener is one *http.Server and the address it listens on.
type listener struct {
	variable, addr string // HTTP_ADDR and its value, for errors
	handler        http.Handler
	srv            *http.Server
	ln             net.Listener
	done           chan struct{}
}

// Option tunes New.
type Option func(*options)

type options struct {
	metrics  http.Handler
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	instance string
}

// WithMetrics serves h on /metrics (on the admin server when
// Config.AdminAddr is set).
func WithMetrics(h http.Handler) Option { return func(o *options) { o.metrics = h } }

// WithTelemetry traces each request (an otelhttp server span named by its
// route) and records the HTTP server metrics, with tp and mp (either may
// be nil).
func WithTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) Option {
	return func(o *options) { o.tp, o.mp = tp, mp }
}

// WithInstance names the instance, the prefix of the request ids the
// server makes. Without it (or with ""): HOSTNAME, then the OS host name,
// as app resolves the instance. Module passes the bus's.
func WithInstance(id string) Option { return func(o *options) { o.instance = id } }

// New returns a server for cfg, serving /health and /ready from reg (when
// not nil). log may be nil.
func New(cfg Config, reg *health.Registry, log *zap.Logger, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	proxies, _ := parseProxies(cfg.TrustedProxies) // validated
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, log: log}
	ids := newRequestIDs(o.instance)
	serve := func(variable, addr string, r chi.Router, log *zap.Logger) *listener {
		if reg != nil {
			r.Method(http.MethodGet, "/health", reg.LiveHandler())
			r.Method(http.MethodGet, "/ready", reg.ReadyHandler())
		}
		// The middleware wraps the router rather than being added with
		// Use, so it runs for every request, even before a route is mounted.
		h := chi.Chain(ids.handler, echoRequestID, RealIP(proxies), AccessLog(log), Recoverer(log),
			handlerTimeout(cfg.HandlerTimeout), BodyLimit(cfg.MaxBodyBytes)).Handler(r)
		if o.tp != nil || o.mp != nil {
			h = instrument(h, o.tp, o.mp)
		}
		return &listener{variable: variable, addr: addr, handler: h, srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          zap.NewStdLog(log.Named("http")),
		}}
	}
	s.router = newRouter()
	s.public = serve("HTTP_ADDR", cfg.Addr, s.router, log)
	s.admin = s.router
	if cfg.AdminAddr != "" {
		s.admin = newRouter()
		s.adminSrv = serve("HTTP_ADMIN_ADDR", cfg.AdminAddr, s.admin, log.With(zap.String("server", "admin")))
	}
	if o.metrics != nil {
		s.admin.Method(http.MethodGet, "/metrics", o.metrics)
	}
	return s, nil
}

// newRouter returns a router whose 404 and 405 are problems.
func newRouter() chi.Router {
	r := chi.NewRouter()
	r.Use(nameSpan)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		WriteProblem(w, req, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no route " + req.Method + " " + req.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		for _, m := range allowed(r, req.URL.Path) {
			w.Header().Add("Allow", m)
		}
		WriteProblem(w, req, Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Detail: req.Method + " not allowed on " + req.URL.Path})
	})
	return r
}

// Mount adds the routes of ms.
func (s *Server) Mount(ms ...Mounter) {
	for _, m := range ms {
		m.Mount(s.router)
	}
}

// MountAdmin adds operational routes: on the admin server when
// Config.AdminAddr is set, beside the others otherwise. They are not
// guarded; guard them as DeadLetterRoutes does.
func (s *Server) MountAdmin(ms ...Mounter) {
	for _, m := range ms {
		m.Mount(s.admin)
	}
}

// MountDeadLetters mounts the dead-letter admin routes over bus's transport
// when Config.AdminToken is set and the transport keeps dead letters. It
// reports whether it did.
func (s *Server) MountDeadLetters(bus *cqrs.Bus) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	dls, err := bus.DeadLetters()
	if err != nil {
		return false
	}
	s.MountAdmin(DeadLetterRoutes(dls, s.cfg.AdminToken))
	return true
}

// Router returns the public router, to add routes or middleware directly.
func (s *Server) Router() chi.Router { return s.router }

// Handler returns the server's public handler, for httptest.
func (s *Server) Handler() http.Handler { return s.public.handler }

// AdminHandler returns the admin server's handler, for httptest: Handler's
// without Config.AdminAddr.
func (s *Server) AdminHandler() http.Handler {
	if s.adminSrv == nil {
		return s.public.handler
	}
	return s.adminSrv.handler
}

// echoRequestID sends the request id back as X-Request-Id.
func echoRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := middleware.GetReqID(r.Context()); id != "" {
			w.Header().Set(middleware.RequestIDHeader, id)
		}
		next.ServeHTTP(w, r)
	})
}

// allowed lists the methods routes answers on path, for a 405's Allow.
func allowed(routes chi.Routes, path string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
		}
	}
	return out
}

// listeners returns the public server and the admin one, if any.
func (s *Server) listeners() []*listener {
	if s.adminSrv == nil {
		return []*listener{s.public}
	}
	return []*listener{s.public, s.adminSrv}
}

// Start listens on Config.Addr and Config.AdminAddr (a port in use fails
// here, not later, and leaves nothing listening) and serves in the
// background until Stop.
func (s *Server) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("httpmod: server already started")
	}
	ls := s.listeners()
	for i, l := range ls {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, opened := range ls[:i] {
				_ = opened.ln.Close()
				opened.ln = nil
			}
			return fmt.Errorf("httpmod: listen on %s %s: %w", l.variable, l.addr, err)
		}
		l.ln = ln
	}
	s.started = true
	for _, l := range ls {
		l.done = make(chan struct{})
		go func() {
			defer close(l.done)
			if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", zap.String("addr", l.ln.Addr().String()), zap.Error(err))
			}
		}()
		s.log.Info("http server listening", zap.String("addr", l.ln.Addr().String()), zap.String("variable", l.variable))
	}
	return nil
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.public.bound()
}

// AdminAddr returns the address /metrics and the admin routes are served
// on, once started: the admin server's, or Addr without Config.AdminAddr.
func (s *Server) AdminAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminSrv == nil {
		return s.public.bound()
	}
	return s.adminSrv.bound()
}

func (l *listener) bound() string {
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Drain turns keep-alives off on the public server: each response from
// then on closes its connection (Connection: close) and idle connections
// are closed, so clients reconnect, through their Service, to a pod that is
// not stopping. app calls it as /ready turns 503. The server goes on
// answering until Stop.
func (s *Server) Drain() {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		s.public.srv.SetKeepAlivesEnabled(false)
	}
}

// Stop shuts the servers down gracefully, side by side, until ctx ends,
// then closes what is left.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	ls := s.listeners()
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() {
			if err := l.srv.Shutdown(ctx); err != nil {
				errs[i] = errors.Join(err, l.srv.Close())
			}
			<-l.done
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
