package scaffold_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catga-go/catga/scaffold"
)

func checkoutRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func run(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// A service generated for each transport builds and its tests pass as
// generated, against this checkout.
func TestGenerate_EachTransportBuildsAndPasses(t *testing.T) {
	for _, transport := range []string{"memory", "nats", "redis"} {
		t.Run(transport, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "svc")
			files, err := scaffold.Generate(scaffold.Options{Name: "shop-" + transport, Transport: transport, Dir: dir, CatgaPath: checkoutRoot(t)})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"go.mod", "cmd/shop-" + transport + "/main.go", "shop" + transport + "/handlers_test.go", "Makefile", "Dockerfile", "deploy/k8s/kustomization.yaml", "README.md", ".gitignore", "catga.dev.yaml"} {
				if !contains(files, want) {
					t.Errorf("%s not generated (got %v)", want, files)
				}
			}
			main, _ := os.ReadFile(filepath.Join(dir, "cmd", "shop-"+transport, "main.go"))
			mod := map[string]string{"memory": "catga.Module, shop" + transport + ".Module", "nats": "catga.Module, natsmod.Module, shopnats.Module", "redis": "catga.Module, redismod.Module, shopredis.Module"}[transport]
			if !strings.Contains(string(main), mod) {
				t.Errorf("main.go does not compose %s:\n%s", mod, main)
			}
			run(t, dir, "mod", "tidy")
			run(t, dir, "build", "./...")
			run(t, dir, "test", "-count=1", "./...")
			if transport == "nats" {
				devRuns(t, dir, "shop-nats")
			}
		})
	}
}

// devRuns builds the service's catga tool (go.mod's tool directive) and
// runs its catga.dev.yaml: two replicas ready on an embedded NATS, then
// SIGTERM stops it all with exit 0.
func devRuns(t *testing.T, dir, name string) {
	t.Helper()
	run(t, dir, "build", "-o", "bin/catga", "github.com/catga-go/catga/cmd/catga")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(filepath.Join(dir, "bin", "catga"), "dev", "--addr", addr)
	cmd.Dir = dir
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rows []struct {
			Service string
			Ready   bool
		}
		ready := 0
		if resp, err := http.Get("http://" + addr + "/api/status"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&rows)
			resp.Body.Close()
			for _, r := range rows {
				if r.Ready && r.Service == name {
					ready++
				}
			}
		}
		if ready == 2 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("catga dev exited (%v) before ready:\n%s", err, output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("catga dev not ready in 60s:\n%s", output())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("catga dev exited with %v on SIGTERM:\n%s", err, output())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("catga dev did not stop on SIGTERM:\n%s", output())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestGenerate_RefusesANonEmptyDirectoryWithoutForce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := scaffold.Generate(scaffold.Options{Name: "shop", Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err %v, want a refusal naming --force", err)
	}
	if _, err := scaffold.Generate(scaffold.Options{Name: "shop", Dir: dir, Force: true}); err != nil {
		t.Fatalf("with Force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "mine" {
		t.Fatal("Force removed a file it did not write")
	}
}

func TestValidate_NamesTheBadValue(t *testing.T) {
	tests := []struct {
		o    scaffold.Options
		want string
	}{
		{scaffold.Options{}, "name: required"},
		{scaffold.Options{Name: "Shop"}, `name "Shop"`},
		{scaffold.Options{Name: "9lives"}, `name "9lives"`},
		{scaffold.Options{Name: "a_b"}, `name "a_b"`},
		{scaffold.Options{Name: "shop-"}, `name "shop-"`},
		{scaffold.Options{Name: "shop", Module: "not a path"}, `--module "not a path"`},
		{scaffold.Options{Name: "shop", Module: "/abs/path"}, `--module "/abs/path"`},
		{scaffold.Options{Name: "shop", Transport: "kafka"}, `--transport "kafka"`},
	}
	for _, tt := range tests {
		err := tt.o.WithDefaults().Validate()
		if tt.o.Name == "" {
			err = tt.o.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error with %q", tt.o, err, tt.want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
