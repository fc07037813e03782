package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/internal/pgserver"
)

// timeout bounds each start, stop and statement of the package.
const timeout = time.Minute

// Server is a PostgreSQL server for tests: its data and log in a
// temporary directory, on a free port of 127.0.0.1.
type Server struct {
	srv    *pgserver.Server
	dir    string
	shared bool
}

// Start starts a server with args added to the postgres command line after
// the defaults, which they override ("-c", "max_connections=20"). Cleanup
// stops it and removes its directory. Without the PostgreSQL programs the
// test fails, saying how to install them.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s, err := start(args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func start(args []string) (*Server, error) {
	dir, err := pgserver.MkdirTemp("pgtest-*")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{
		Dir:     filepath.Join(dir, "data"),
		Args:    args,
		LogPath: filepath.Join(dir, "postgres.log"),
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Server{srv: srv, dir: dir}, nil
}

// close stops the server and removes its directory.
func (s *Server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.srv.Stop(ctx)
	if rerr := os.RemoveAll(s.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("pgtest: %w", rerr))
	}
	return err
}

// URL is the server's postgres database, as the superuser postgres:
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (s *Server) URL() string { return s.srv.URL() }

// Port is the server's port on 127.0.0.1, the same across restarts.
func (s *Server) Port() int { return s.srv.Port() }

// Dir is the server's directory: its data in Dir/data, its log in
// Dir/postgres.log. Cleanup removes it.
func (s *Server) Dir() string { return s.dir }

// PID is the postmaster's process id, or 0 when the server is stopped.
func (s *Server) PID() int { return s.srv.PID() }

// seq numbers the databases of the test binary.
var seq atomic.Int64

// NewDatabase creates a database with a name of its own, derived from the
// test's, and returns its URL; cleanup drops it, closing its connections
// (WITH (FORCE)). A database of a server that is stopped at cleanup goes
// with the server.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := databaseName(t.Name(), seq.Add(1))
	if err := s.exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if s.srv.PID() == 0 {
			return
		}
		if err := s.exec("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(s.URL())
	u.Path = "/" + name
	return u.String()
}

// databaseName is the test's name in the letters an unquoted identifier
// takes, numbered, within PostgreSQL's 63 bytes.
func databaseName(test string, n int64) string {
	suffix := "_" + strconv.FormatInt(n, 10)
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(test) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 63-len(suffix) {
		name = name[:63-len(suffix)]
	}
	return name + suffix
}

// exec runs sql on the server's postgres database.
func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Restart shuts the server down fast and starts it again on the same port
// and data: sessions end, committed data stays.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.StartAgain(t)
}

// Stop shuts the server down fast (SIGINT): sessions end, committed data
// is written out. StartAgain starts it again.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.own(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Kill crashes the server: SIGKILL to the postmaster and every process it
// started, at once; it returns once they are all gone. StartAgain starts
// it again, recovering every committed transaction.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.own(t)
	if err := s.srv.Kill(); err != nil {
		t.Fatal(err)
	}
}

// StartAgain starts a stopped or killed server on the same port and data,
// and returns once it accepts connections.
func (s *Server) StartAgain(t testing.TB) {
	t.Helper()
	s.own(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
}

// own fails the test when s is the shared server, which other tests use.
func (s *Server) own(t testing.TB) {
	t.Helper()
	if s.shared {
		t.Fatal("pgtest: the shared server cannot be stopped, killed or restarted: other tests use it; use a server of the test's own (pgtest.Start)")
	}
}
