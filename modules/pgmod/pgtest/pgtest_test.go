package pgtest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

// The shared server is stopped after the tests, and nothing outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

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

func mustExec(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
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

// Two databases of one server are apart: a table of one is not in the
// other; args reach the server.
func TestNewDatabase_TwoAreApart(t *testing.T) {
	srv := pgtest.Start(t, "-c", "max_connections=9")
	a, b := srv.NewDatabase(t), srv.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	mustExec(t, ca, "CREATE TABLE only_in_a (v int)")
	if _, err := cb.Exec(context.Background(), "SELECT * FROM only_in_a"); err == nil {
		t.Error("the table of database a is in database b")
	}
	u, _ := url.Parse(a)
	if got := queryString(t, ca, "SELECT current_database()"); "/"+got != u.Path {
		t.Errorf("connected to %s by %s", got, a)
	}
	if got := queryString(t, ca, "SHOW max_connections"); got != "9" {
		t.Errorf("max_connections %s, want the 9 of Start's args", got)
	}
}

// A database is dropped at its test's cleanup, even with a session open
// on it.
func TestNewDatabase_DroppedAtCleanup(t *testing.T) {
	srv := pgtest.Shared(t)
	var name string
	var open *pgx.Conn // closed after the drop
	defer func() { _ = open.Close(context.Background()) }()
	t.Run("uses a database", func(t *testing.T) {
		db := srv.NewDatabase(t)
		var err error
		if open, err = pgx.Connect(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		name = queryString(t, open, "SELECT current_database()")
	})
	c := connect(t, srv.URL())
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %q: %d left (%v), want it dropped", name, n, err)
	}
}

// A database name is the test's, cut to PostgreSQL's 63 bytes, whatever
// the test is called.
func TestNewDatabase_AnyTestName(t *testing.T) {
	srv := pgtest.Shared(t)
	t.Run(strings.Repeat("Ünïcode, spaces & \"quotes\" ", 5), func(t *testing.T) {
		name := queryString(t, connect(t, srv.NewDatabase(t)), "SELECT current_database()")
		if len(name) > 63 || !strings.HasPrefix(name, "test_") {
			t.Errorf("database %q", name)
		}
	})
}

// Restart keeps the port and the data, with a new postmaster.
func TestRestart_KeepsData(t *testing.T) {
	srv := pgtest.Start(t)
	db := srv.NewDatabase(t)
	mustExec(t, connect(t, db), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
	pid, port := srv.PID(), srv.Port()
	srv.Restart(t)
	if srv.Port() != port || srv.PID() == pid || alive(pid) {
		t.Errorf("after Restart: port %d (was %d), pid %d (was %d, alive %v)", srv.Port(), port, srv.PID(), pid, alive(pid))
	}
	if got := queryString(t, connect(t, db), "SELECT v FROM kept"); got != "x" {
		t.Errorf("kept holds %q, want x", got)
	}
}

// Kill crashes the server, and leaves none of its processes; StartAgain
// recovers what was committed and not what was in flight.
func TestKill_StartAgainKeepsCommittedData(t *testing.T) {
	srv := pgtest.Start(t)
	db := srv.NewDatabase(t)
	c := connect(t, db)
	mustExec(t, c, "CREATE TABLE t (v text); INSERT INTO t VALUES ('committed')")
	tx, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), "INSERT INTO t VALUES ('in flight')"); err != nil {
		t.Fatal(err)
	}
	var bpid int
	if err := connect(t, db).QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&bpid); err != nil {
		t.Fatal(err)
	}
	pid := srv.PID()
	srv.Kill(t)
	if alive(pid) || alive(bpid) || srv.PID() != 0 {
		t.Fatalf("after Kill: postmaster %d alive %v, backend %d alive %v, PID %d", pid, alive(pid), bpid, alive(bpid), srv.PID())
	}
	srv.StartAgain(t)
	if got := queryString(t, connect(t, db), "SELECT string_agg(v, ',') FROM t"); got != "committed" {
		t.Errorf("after the crash t holds %q, want committed", got)
	}
}

// Cleanup stops the server, sessions open or not, and removes its
// directory: no process of it is left.
func TestStart_CleanupLeavesNothing(t *testing.T) {
	var pids []int
	var dir string
	t.Run("runs a server", func(t *testing.T) {
		srv := pgtest.Start(t)
		dir = srv.Dir()
		c, err := pgx.Connect(context.Background(), srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		var backend int
		if err := c.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
			t.Fatal(err)
		}
		pids = []int{srv.PID(), backend}
		if _, err := os.Stat(dir); err != nil {
			t.Fatal(err)
		}
	})
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d alive after cleanup", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after cleanup: %v, want it removed", dir, err)
	}
}

// sharedReport names the file where TestShared_OneServerForTheBinary, run
// by TestMain_StopsTheSharedServer, writes the shared server's pid and
// directory.
const sharedReport = "PGTEST_SHARED_REPORT"

// Tests in parallel share one server, each with databases of its own.
func TestShared_OneServerForTheBinary(t *testing.T) {
	first := pgtest.Shared(t)
	if file := os.Getenv(sharedReport); file != "" {
		if err := os.WriteFile(file, []byte(fmt.Sprintf("%d %s", first.PID(), first.Dir())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			srv := pgtest.Shared(t)
			if srv != first {
				t.Errorf("Shared returned another server: %s, was %s", srv.URL(), first.URL())
			}
			c := connect(t, srv.NewDatabase(t))
			mustExec(t, c, "CREATE TABLE mine (v int)")
		})
	}
}

// recorder is a testing.TB whose Fatal is recorded.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Fatal(args ...any) { r.fatal = fmt.Sprint(args...); runtime.Goexit() }

// The shared server cannot be stopped, killed or restarted by one test.
func TestShared_CannotBeStopped(t *testing.T) {
	srv := pgtest.Shared(t)
	for name, do := range map[string]func(testing.TB){"Stop": srv.Stop, "Kill": srv.Kill, "Restart": srv.Restart, "StartAgain": srv.StartAgain} {
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); do(r) }()
		<-done
		if !strings.Contains(r.fatal, "the shared server cannot be stopped") {
			t.Errorf("%s of the shared server: Fatal(%q)", name, r.fatal)
		}
	}
	if srv.PID() == 0 {
		t.Error("the shared server is not running")
	}
}

// Once the tests have run, Main stops the shared server and removes its
// directory: the test binary, run again, leaves neither behind.
func TestMain_StopsTheSharedServer(t *testing.T) {
	report := filepath.Join(t.TempDir(), "shared")
	cmd := exec.Command(os.Args[0], "-test.run=^TestShared_OneServerForTheBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), sharedReport+"="+report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test binary: %v\n%s", err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, out)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscan(string(data), &pid, &dir); err != nil || pid == 0 {
		t.Fatalf("report %q: %v", data, err)
	}
	if alive(pid) {
		t.Errorf("the shared server (pid %d) outlived its test binary", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the shared server's directory %s: %v, want it removed", dir, err)
	}
}

// Without the PostgreSQL programs, Start fails the test, saying how to
// install them: it does not skip.
func TestStart_NoProgramsFailsTheTest(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); pgtest.Start(r) }()
	<-done
	if !strings.Contains(r.fatal, "apt-get install postgresql") || !strings.Contains(r.fatal, "PG_BIN") {
		t.Errorf("Start without the programs: Fatal(%q), want how to install them", r.fatal)
	}
}
