package devhost_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catga-go/catga/devhost"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catga.dev.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A bad catga.dev.yaml is refused with an error naming the bad value.
func TestLoad_Errors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":     {"services:\n  - name: a\n    path: ./a\n    replica: 2\n", "field replica not found"},
		"undeclared use":  {"services:\n  - name: a\n    path: ./a\n    use: [kafka]\n", `service "a" uses "kafka", which is not declared`},
		"replicas":        {"services:\n  - name: a\n    path: ./a\n    replicas: 50\n", `service "a": replicas 50, want 1 to 20`},
		"no path":         {"services:\n  - name: a\n", `service "a" has no package path`},
		"no services":     {"nats:\n  - name: n\n", "no services"},
		"duplicate names": {"nats:\n  - name: x\nredis:\n  - name: x\nservices:\n  - name: a\n    path: ./a\n", `redis "x": a resource needs a unique name`},
		"postgres name":   {"redis:\n  - name: x\npostgres:\n  - name: x\nservices:\n  - name: a\n    path: ./a\n", `postgres "x": a resource needs a unique name`},
		"postgres key":    {"postgres:\n  - name: db\n    port: 5432\nservices:\n  - name: a\n    path: ./a\n", "field port not found"},
		"not yaml":        {"services: [", "catga.dev.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := devhost.Load(writeFile(t, tc.yaml), devhost.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := devhost.Load(filepath.Join(t.TempDir(), "missing.yaml"), devhost.Options{}); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load of a missing file = %v", err)
	}
}

// A catga.dev.yaml runs as its Go AppHost would: paths from the file's
// folder, replicas, uses and variables.
func TestLoad_Runs(t *testing.T) {
	wd, _ := os.Getwd()
	file := writeFile(t, `nats:
  - name: nats
    jetstream: true
services:
  - name: svc
    path: ./testdata/svc
    replicas: 2
    use: [nats]
    env: {SVC_GREETING: from-yaml}
`)
	var out syncBuffer
	h, err := devhost.Load(file, devhost.Options{WorkDir: wd, Addr: "127.0.0.1:0", Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, h, &out)
	st := h.Status()
	if len(st) != 2 {
		t.Fatalf("%d replicas, want 2", len(st))
	}
	var env map[string]string
	getJSON(t, "http://"+st[1].Addr+"/env", &env)
	if env["SVC_GREETING"] != "from-yaml" || !strings.HasPrefix(env["NATS_URL"], "nats://127.0.0.1:") || env["HOSTNAME"] != "svc-2" {
		t.Errorf("env SVC_GREETING=%q NATS_URL=%q HOSTNAME=%q", env["SVC_GREETING"], env["NATS_URL"], env["HOSTNAME"])
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(file), ".catga", "dev", "bin", "svc")); err != nil {
		t.Errorf("the binary is not under the file's .catga/dev: %v", err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background()); err == nil {
		t.Error("a second Run of one host succeeded")
	}
}
