package scaffold_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
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
// generated, against this checkout. Where replicas run (nats, redis), catga
// dev runs its catga.dev.yaml and an item created on replica 1 is read,
// noticed by its event handler, on replica 2.
func TestGenerate_EachTransportBuildsAndPasses(t *testing.T) {
	for _, transport := range []string{"memory", "nats", "redis"} {
		t.Run(transport, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "svc")
			name := "shop-" + transport
			files, err := scaffold.Generate(scaffold.Options{Name: name, Transport: transport, Dir: dir, CatgaPath: checkoutRoot(t)})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"go.mod", "cmd/" + name + "/main.go", "shop" + transport + "/handlers_test.go", "Makefile", "Dockerfile", ".dockerignore", "deploy/k8s/kustomization.yaml", "README.md", ".gitignore", "catga.dev.yaml"} {
				if !slices.Contains(files, want) {
					t.Errorf("%s not generated (got %v)", want, files)
				}
			}
			main, _ := os.ReadFile(filepath.Join(dir, "cmd", name, "main.go"))
			mod := map[string]string{"memory": "catga.Module, otelexport.Module, shopmemory.Module", "nats": "catga.Module, otelexport.Module, natsmod.Module, redismod.StoreModule, shopnats.Module", "redis": "catga.Module, otelexport.Module, redismod.Module, shopredis.Module"}[transport]
			if !strings.Contains(string(main), mod) {
				t.Errorf("main.go does not compose %s:\n%s", mod, main)
			}
			run(t, dir, "mod", "tidy")
			run(t, dir, "build", "./...")
			run(t, dir, "test", "-count=1", "./...")
			if transport == "memory" {
				return
			}
			dev := startDev(t, dir, name, 2)
			readOnTheOther(t, dev.addrs[0], dev.addrs[1])
			dev.stop(t)
			if transport == "nats" {
				dockerContextBuilds(t, dir, name)
			}
		})
	}
}

// readOnTheOther creates an item on replica a and reads it on replica b,
// until its ItemCreated was handled (on whichever replica got it).
func readOnTheOther(t *testing.T, a, b string) {
	t.Helper()
	defer http.DefaultClient.CloseIdleConnections()
	resp, err := http.Post("http://"+a+"/items", "application/json", strings.NewReader(`{"name":"lamp"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("POST %s/items = %d, id %q; want 201 with an id", a, resp.StatusCode, created.ID)
	}
	var code int
	var it struct {
		Name    string
		Noticed bool
	}
	if !catgatest.Poll(20*time.Second, func() bool {
		resp, err := http.Get("http://" + b + "/items/" + created.ID)
		if err != nil {
			t.Fatal(err)
		}
		it.Name, it.Noticed = "", false
		_ = json.NewDecoder(resp.Body).Decode(&it)
		resp.Body.Close()
		code = resp.StatusCode
		return code == http.StatusOK && it.Name == "lamp" && it.Noticed
	}) {
		t.Fatalf("GET %s/items/%s (the other replica) = %d %+v; want the item, noticed", b, created.ID, code, it)
	}
}

// dev is a running catga dev.
type dev struct {
	cmd    *exec.Cmd
	exited chan error
	output func() string
	addrs  []string // the replicas', by number
}

// startDev builds the service's catga tool (go.mod's tool directive) and
// runs its catga.dev.yaml, with the replicas' fixed first port moved to a
// free one, until its n replicas are ready on that port and the next ones.
func startDev(t *testing.T, dir, name string, n int) *dev {
	t.Helper()
	run(t, dir, "build", "-o", "bin/catga", "github.com/catga-go/catga/cmd/catga")
	file := filepath.Join(dir, "catga.dev.yaml")
	conf, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	port := regexp.MustCompile(`(?m)^(\s+port: )\d+`)
	if !port.Match(conf) {
		t.Fatalf("catga.dev.yaml fixes no port:\n%s", conf)
	}
	base := freePorts(t, n)
	test := filepath.Join(dir, "catga.test.yaml")
	if err := os.WriteFile(test, port.ReplaceAll(conf, []byte("${1}"+strconv.Itoa(base))), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var mu sync.Mutex
	d := &dev{cmd: exec.Command(filepath.Join(dir, "bin", "catga"), "dev", test, "--addr", freeAddr(t)), exited: make(chan error, 1)}
	d.cmd.Dir = dir
	d.cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	d.cmd.Stderr = d.cmd.Stdout
	d.output = func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
	dashboard := d.cmd.Args[len(d.cmd.Args)-1]
	if !catgatest.Poll(60*time.Second, func() bool {
		var rows []struct {
			Service string
			Replica int
			Addr    string
			Ready   bool
		}
		ready := map[int]string{}
		if resp, err := http.Get("http://" + dashboard + "/api/status"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&rows)
			resp.Body.Close()
			for _, r := range rows {
				if r.Ready && r.Service == name {
					ready[r.Replica] = r.Addr
				}
			}
		}
		if len(ready) == n {
			for i := 1; i <= n; i++ {
				// The README's curl lines count on replica i at the first port + i-1.
				if _, p, _ := net.SplitHostPort(ready[i]); p != strconv.Itoa(base+i-1) {
					t.Fatalf("replica %d on %s, want port %d (the first port %d + %d)", i, ready[i], base+i-1, base, i-1)
				}
				d.addrs = append(d.addrs, ready[i])
			}
			return true
		}
		select {
		case err := <-d.exited:
			t.Fatalf("catga dev exited (%v) before ready:\n%s", err, d.output())
		default:
		}
		return false
	}) {
		t.Fatalf("catga dev not ready in 60s:\n%s", d.output())
	}
	return d
}

// stop sends SIGTERM, which must stop it all with exit 0.
func (d *dev) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("catga dev exited with %v on SIGTERM:\n%s", err, d.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("catga dev did not stop on SIGTERM:\n%s", d.output())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freePorts returns the first of n consecutive free ports.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base, _ := strconv.Atoi(freeAddr(t)[len("127.0.0.1:"):])
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free && base+n <= 65535 {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
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
