// Package natstest runs an embedded nats-server with JetStream for tests,
// in process, on a free port with a temporary store, so a test needs no
// NATS of the machine's. It can stop and start the server again on the same
// port and store, as a broker restart.
package natstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/catga-go/catga/internal/freeport"
)

// Server is an embedded nats-server.
type Server struct {
	srv  *server.Server
	opts server.Options
}

// Start starts a server with JetStream, storing in a temporary directory of
// t, after applying configure to its options. It stops at cleanup.
func Start(t testing.TB, configure ...func(*server.Options)) *Server {
	t.Helper()
	opts := server.Options{
		Host:      "127.0.0.1",
		Port:      freePort(t),
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, c := range configure {
		c(&opts)
	}
	s := &Server{opts: opts}
	if err := s.start(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func freePort(t testing.TB) int { return freeport.Get(t, "natstest") }

func (s *Server) start() error {
	if err := s.startAsync(); err != nil {
		return err
	}
	return s.waitReady()
}

// startAsync starts the server without waiting: cluster nodes wait for
// each other's routes before they are ready.
func (s *Server) startAsync() error {
	o := s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	go srv.Start()
	s.srv = srv
	return nil
}

func (s *Server) waitReady() error {
	if !s.srv.ReadyForConnections(20 * time.Second) {
		s.srv.Shutdown()
		s.srv = nil
		return fmt.Errorf("embedded nats-server on port %d not ready within 20s", s.opts.Port)
	}
	return nil
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://%s:%d", s.opts.Host, s.opts.Port) }

// Port is the client port.
func (s *Server) Port() int { return s.opts.Port }

// StoreDir is the JetStream store.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Shutdown stops the server; it is safe to call twice.
func (s *Server) Shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Shutdown()
	if err := s.start(); err != nil {
		t.Fatalf("natstest: restart: %v", err)
	}
}

// StartAgain starts a stopped server on the same port and store.
func (s *Server) StartAgain(t testing.TB) {
	t.Helper()
	if s.srv != nil {
		t.Fatal("natstest: server is running")
	}
	if err := s.start(); err != nil {
		t.Fatalf("natstest: start again: %v", err)
	}
}

// Inner returns the running server, for what the helpers do not cover.
func (s *Server) Inner() *server.Server { return s.srv }
