package devhost_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/catga-go/catga/devhost"
)

// dataDirectory connects to url, leaves a table, and returns where the
// server keeps its data.
func dataDirectory(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("DATABASE_URL %q: %v", url, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS visits (at timestamptz); INSERT INTO visits VALUES (now())"); err != nil {
		t.Fatal(err)
	}
	var dir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A service that uses a Postgres gets a DATABASE_URL it can connect to as
// the superuser; the server stops after the replicas, and its temporary
// data goes with it.
func TestHost_PostgresInjectsDatabaseURL(t *testing.T) {
	var out syncBuffer
	h := newHost(t, &out, devhost.Options{NoDashboard: true})
	pg := h.Postgres("db")
	h.Service("svc", "./testdata/svc").Use(pg)
	r := start(t, h, &out)

	var env map[string]string
	getJSON(t, "http://"+h.Status()[0].Addr+"/env", &env)
	url := env["DATABASE_URL"]
	if !strings.HasPrefix(url, "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(url, "/postgres?sslmode=disable") {
		t.Errorf("DATABASE_URL %q", url)
	}
	dir := dataDirectory(t, url)
	children := h.Children()
	if len(children) != 2 {
		t.Errorf("children %v, want the replica and the postmaster", children)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitGone(t, children, time.Second)
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Errorf("the data directory %s outlived the host: %v", dir, err)
	}
	stopped := out.String()
	iTerm, iShutdown := strings.Index(stopped, "SIGTERM: stopping"), strings.Index(stopped, "received fast shutdown request")
	line := stopped[strings.LastIndexByte(stopped[:max(iShutdown, 0)], '\n')+1:]
	if iTerm < 0 || iShutdown < iTerm || !strings.HasPrefix(line, "postgres/db ") {
		t.Errorf("the replica did not stop (on SIGTERM) before PostgreSQL (a fast shutdown, under postgres/db):\n%s", stopped)
	}
}

// Declared in a catga.dev.yaml with persist, a postgres keeps its data
// under the host's directory from one run to the next.
func TestLoad_PostgresPersists(t *testing.T) {
	// The server may run as another user (under root): it must reach the
	// host's directory, which t.TempDir is not.
	base, err := os.MkdirTemp("", "devhost-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "catga.dev.yaml")
	yaml := "persist: true\npostgres:\n  - name: db\nservices:\n  - name: svc\n    path: ./testdata/svc\n    use: [db]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	visits := func() int {
		var out syncBuffer
		h, err := devhost.Load(file, devhost.Options{WorkDir: wd, NoDashboard: true, Out: &out, Color: new(bool)})
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, h, &out)
		var env map[string]string
		getJSON(t, "http://"+h.Status()[0].Addr+"/env", &env)
		if dir, want := dataDirectory(t, env["DATABASE_URL"]), filepath.Join(base, ".catga", "dev", "postgres-db"); dir != want {
			t.Errorf("data in %s, want %s", dir, want)
		}
		conn, err := pgx.Connect(context.Background(), env["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM visits").Scan(&n); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(context.Background())
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := visits(); n != 1 {
		t.Fatalf("%d visits in the first run, want 1", n)
	}
	if n := visits(); n != 2 {
		t.Errorf("%d visits in the second run, want 2: the data did not persist", n)
	}
}

// Without the PostgreSQL programs, Run fails naming the package.
func TestHost_NoPostgres(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	h := newHost(t, io.Discard, devhost.Options{NoDashboard: true})
	h.Service("svc", "./testdata/svc").Use(h.Postgres("db"))
	err := h.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("Run = %v, want a message naming the package", err)
	}
}
