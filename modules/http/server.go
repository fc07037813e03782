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
// then Start and Stop it (fx does both).
type Server struct {
	cfg     Config
	log     *zap.Logger
	router  chi.Router
	handler http.Handler
	srv     *http.Server

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{}
}

// Option tunes New.
type Option func(*options)

type options struct {
	metrics http.Handler
	tp      trace.TracerProvider
	mp      metric.MeterProvider
}

// WithMetrics serves h on /metrics.
func WithMetrics(h http.Handler) Option { return func(o *options) { o.metrics = h } }

// WithTelemetry traces each request (an otelhttp server span named by its
// route) and records the HTTP server metrics, with tp and mp (either may
// be nil).
func WithTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) Option {
	return func(o *options) { o.tp, o.mp = tp, mp }
}

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
	if log == nil {
		log = zap.NewNop()
	}
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
	if reg != nil {
		r.Method(http.MethodGet, "/health", reg.LiveHandler())
		r.Method(http.MethodGet, "/ready", reg.ReadyHandler())
	}
	if o.metrics != nil {
		r.Method(http.MethodGet, "/metrics", o.metrics)
	}

	s := &Server{cfg: cfg, log: log, router: r}
	// The middleware wraps the router rather than being added with Use, so
	// it runs for every request, even before a route is mounted.
	h := chi.Chain(middleware.RequestID, echoRequestID, middleware.RealIP, AccessLog(log), Recoverer(log), BodyLimit(cfg.MaxBodyBytes)).Handler(r)
	if o.tp != nil || o.mp != nil {
		h = instrument(h, o.tp, o.mp)
	}
	s.handler = h
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return s, nil
}

// Mount adds the routes of ms.
func (s *Server) Mount(ms ...Mounter) {
	for _, m := range ms {
		m.Mount(s.router)
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
	s.Mount(DeadLetterRoutes(dls, s.cfg.AdminToken))
	return true
}

// Router returns the router, to add routes or middleware directly.
func (s *Server) Router() chi.Router { return s.router }

// Handler returns the server's handler, for httptest.
func (s *Server) Handler() http.Handler { return s.handler }

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

// Start listens on Config.Addr (a port in use fails here, not later) and
// serves in the background until Stop.
func (s *Server) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("httpmod: server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpmod: listen on HTTP_ADDR %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", zap.Error(err))
		}
	}()
	s.log.Info("http server listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down gracefully until ctx ends, then closes what
// is left.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-done
	return err
}
