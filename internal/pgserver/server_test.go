package pgserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/catga-go/catga/internal/pgserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a server's log, read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start starts a server in a directory of its own, stopped and removed at
// cleanup.
func start(t *testing.T, opts pgserver.Options) *pgserver.Server {
	t.Helper()
	root, err := pgserver.MkdirTemp("pgserver-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	opts.Dir = filepath.Join(root, "data")
	s, err := pgserver.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func queryString(t *testing.T, c *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := c.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// The server listens on TCP on 127.0.0.1 only, trusts its superuser
// postgres, runs with fsync off, takes Args over its defaults, and, under
// root, runs as another user.
func TestStart_ServesTheSuperuserOverTCP(t *testing.T) {
	var log syncBuffer
	began := time.Now()
	s := start(t, pgserver.Options{Args: []string{"-c", "max_connections=17"}, Log: &log})
	t.Logf("Start (initdb and postgres) took %v", time.Since(began))
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port()); s.URL() != want || s.Port() == 0 {
		t.Errorf("URL %s, want %s", s.URL(), want)
	}
	c := connect(t, s.URL())
	for sql, want := range map[string]string{
		"SELECT current_user":          "postgres",
		"SHOW listen_addresses":        "127.0.0.1",
		"SHOW unix_socket_directories": "",
		"SHOW fsync":                   "off",
		"SHOW max_connections":         "17",
		"SHOW data_directory":          s.Dir(),
	} {
		if got := queryString(t, c, sql); got != want {
			t.Errorf("%s = %q, want %q", sql, got, want)
		}
	}
	if st, err := os.Stat(fmt.Sprintf("/proc/%d", s.PID())); err == nil { // Linux
		uid := int(st.Sys().(*syscall.Stat_t).Uid)
		if os.Geteuid() == 0 && uid == 0 {
			t.Error("the postmaster runs as root")
		}
		if os.Geteuid() != 0 && uid != os.Geteuid() {
			t.Errorf("the postmaster runs as uid %d, want %d", uid, os.Geteuid())
		}
	}
	if !strings.Contains(log.String(), "ready to accept connections") {
		t.Errorf("the log has no start:\n%s", &log)
	}
}

// Stop is a fast shutdown; StartAgain serves the same data on the same
// port, without a second initdb.
func TestStop_StartAgainKeepsTheData(t *testing.T) {
	var log syncBuffer
	s := start(t, pgserver.Options{Log: &log})
	ctx := context.Background()
	c := connect(t, s.URL())
	if _, err := c.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')"); err != nil {
		t.Fatal(err)
	}
	pid, port := s.PID(), s.Port()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 || alive(pid) {
		t.Fatalf("after Stop: PID %d, process %d alive %v", s.PID(), pid, alive(pid))
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("a second Stop = %v", err)
	}
	if err := s.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.StartAgain(ctx); err == nil || !strings.Contains(err.Error(), "is running") {
		t.Errorf("StartAgain of a running server = %v", err)
	}
	if s.Port() != port || s.PID() == pid || s.PID() == 0 {
		t.Errorf("after StartAgain: port %d (was %d), PID %d (was %d)", s.Port(), port, s.PID(), pid)
	}
	if got := queryString(t, connect(t, s.URL()), "SELECT v FROM kept"); got != "before" {
		t.Errorf("kept = %q, want before", got)
	}
	if n := strings.Count(log.String(), "The files belonging to this database system"); n != 1 {
		t.Errorf("initdb ran %d times, want 1", n)
	}
	if !strings.Contains(log.String(), "received fast shutdown request") {
		t.Errorf("Stop was not a fast shutdown:\n%s", &log)
	}
}

// Kill leaves no postmaster and no backend behind when it returns; the
// server started again recovers every committed row, and no uncommitted
// one.
func TestKill_StartAgainRecoversCommittedData(t *testing.T) {
	s := start(t, pgserver.Options{})
	ctx := context.Background()
	c := connect(t, s.URL())
	if _, err := c.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('committed')"); err != nil {
		t.Fatal(err)
	}
	open := connect(t, s.URL())
	tx, err := open.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ('open')"); err != nil {
		t.Fatal(err)
	}
	var backends []int
	rows, err := c.Query(ctx, "SELECT pid FROM pg_stat_activity")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid int
		_ = rows.Scan(&pid)
		backends = append(backends, pid)
	}
	if rows.Err() != nil || len(backends) < 3 {
		t.Fatalf("pg_stat_activity: %v, %v", backends, rows.Err())
	}
	postmaster := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(backends, postmaster) {
		if alive(pid) {
			t.Errorf("process %d alive after Kill returned", pid)
		}
	}
	if err := s.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
	c = connect(t, s.URL())
	if got := queryString(t, c, "SELECT string_agg(v, ',') FROM t"); got != "committed" {
		t.Errorf("after the crash t holds %q, want committed", got)
	}
}

// A server that cannot start fails Start with the end of its log.
func TestStart_FailureQuotesTheLog(t *testing.T) {
	root, err := pgserver.MkdirTemp("pgserver-test-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	_, err = pgserver.Start(context.Background(), pgserver.Options{Dir: filepath.Join(root, "data"), Args: []string{"-c", "no_such_setting=1"}})
	if err == nil || !strings.Contains(err.Error(), `unrecognized configuration parameter "no_such_setting"`) {
		t.Fatalf("Start = %v, want the log's complaint", err)
	}
}

func TestOptions_Validate(t *testing.T) {
	err := pgserver.Options{Port: 70000}.Validate()
	for _, want := range []string{"Options.Dir is empty", "Options.Port 70000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to say %s", err, want)
		}
	}
	if _, err := pgserver.Start(context.Background(), pgserver.Options{}); err == nil {
		t.Error("Start without a Dir succeeded")
	}
	if err := (pgserver.Options{Dir: "x"}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

// A context that ends first stops Start, and leaves the directory to a
// Start that begins again.
func TestStart_ContextEnds(t *testing.T) {
	root, err := pgserver.MkdirTemp("pgserver-test-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(root, "data")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want the deadline", err)
	}
	s, err := pgserver.Start(context.Background(), pgserver.Options{Dir: filepath.Join(root, "data")})
	if err != nil {
		t.Fatalf("Start on the directory of an interrupted initdb: %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Error(err)
	}
}
