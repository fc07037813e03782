package scaffold_test

import (
	"bytes"
	"go/format"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/catga-go/catga/scaffold"
)

// generate renders a service for transport into a temporary directory,
// against this checkout, without go mod tidy.
func generate(t *testing.T, transport string) (dir, name string) {
	t.Helper()
	dir, name = filepath.Join(t.TempDir(), "svc"), "shop-"+transport
	if _, err := scaffold.Generate(scaffold.Options{Name: name, Transport: transport, Dir: dir, CatgaPath: checkoutRoot(t)}); err != nil {
		t.Fatal(err)
	}
	return dir, name
}

func read(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decodeYAML decodes every document of a generated YAML file.
func decodeYAML(t *testing.T, dir, rel string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(read(t, dir, rel)))
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("%s: %v", rel, err)
		}
		docs = append(docs, d)
	}
}

// The replica counts fit where state lives: a memory store is one
// replica's, so memory runs one; a shared store (Redis) runs several. The
// README's curl lines reach the replicas of make dev, whose first port is
// fixed, and with several the GET reads on another replica than the POST.
func TestGenerate_DevReplicasAndTheREADMEsCurl(t *testing.T) {
	for _, tt := range []struct {
		transport        string
		devReplicas, k8s int
		uses             []string
	}{
		{"memory", 1, 1, nil},
		{"nats", 2, 3, []string{"nats", "redis"}},
		{"redis", 2, 3, []string{"redis"}},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			dir, name := generate(t, tt.transport)
			var f struct {
				NATS     []struct{ Name string }
				Redis    []struct{ Name string }
				Services []struct {
					Name     string
					Replicas int
					Port     int
					Use      []string
				}
			}
			if err := yaml.Unmarshal([]byte(read(t, dir, "catga.dev.yaml")), &f); err != nil {
				t.Fatal(err)
			}
			s := f.Services[0]
			if s.Name != name || s.Replicas != tt.devReplicas || s.Port == 0 || !slices.Equal(s.Use, tt.uses) {
				t.Errorf("catga.dev.yaml service %+v, want %s with %d replicas on a fixed port, using %v", s, name, tt.devReplicas, tt.uses)
			}
			if slices.Contains(tt.uses, "nats") != (len(f.NATS) == 1) || slices.Contains(tt.uses, "redis") != (len(f.Redis) == 1) {
				t.Errorf("catga.dev.yaml declares nats %v, redis %v; want what the service uses, %v", f.NATS, f.Redis, tt.uses)
			}
			var ports []int
			for _, line := range strings.Split(read(t, dir, "README.md"), "\n") {
				if m := regexp.MustCompile(`^curl .*localhost:(\d+)/`).FindStringSubmatch(line); m != nil {
					p, _ := strconv.Atoi(m[1])
					ports = append(ports, p)
				}
			}
			if len(ports) != 2 {
				t.Fatalf("README has %d curl lines, want a POST and a GET", len(ports))
			}
			for _, p := range ports {
				if p < s.Port || p >= s.Port+s.Replicas {
					t.Errorf("README's curl uses port %d; make dev serves %d to %d", p, s.Port, s.Port+s.Replicas-1)
				}
			}
			if s.Replicas > 1 && ports[0] == ports[1] {
				t.Errorf("README's curl POSTs and GETs on port %d; want the GET on another replica", ports[0])
			}
			for _, d := range decodeYAML(t, dir, "deploy/k8s/deployment.yaml") {
				if n := d["spec"].(map[string]any)["replicas"]; n != tt.k8s {
					t.Errorf("Deployment replicas %v, want %d", n, tt.k8s)
				}
			}
		})
	}
}

// deploy/k8s holds what the service needs: NATS and Redis where it uses
// them, at the addresses its env names. No image is tagged latest: the
// Makefile's and the manifests' tag agree.
func TestGenerate_DeployHasWhatTheServiceNeedsAndAPinnedTag(t *testing.T) {
	for _, tt := range []struct {
		transport string
		resources []string
	}{
		{"memory", []string{"deployment.yaml", "service.yaml"}},
		{"nats", []string{"deployment.yaml", "service.yaml", "nats.yaml", "redis.yaml"}},
		{"redis", []string{"deployment.yaml", "service.yaml", "redis.yaml"}},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			dir, name := generate(t, tt.transport)
			k := decodeYAML(t, dir, "deploy/k8s/kustomization.yaml")[0]
			var res []string
			for _, r := range k["resources"].([]any) {
				res = append(res, r.(string))
				read(t, dir, "deploy/k8s/"+r.(string)) // exists
			}
			if !slices.Equal(res, tt.resources) {
				t.Errorf("kustomization resources %v, want %v", res, tt.resources)
			}
			services := map[string]bool{}
			for _, r := range res {
				for _, d := range decodeYAML(t, dir, "deploy/k8s/"+r) {
					if d["kind"] == "Service" {
						services[d["metadata"].(map[string]any)["name"].(string)] = true
					}
				}
			}
			dep := read(t, dir, "deploy/k8s/deployment.yaml")
			for _, m := range regexp.MustCompile(`(?:nats|redis)://([a-z0-9-]+):`).FindAllStringSubmatch(dep, -1) {
				if !services[m[1]] {
					t.Errorf("the Deployment reaches %s, which deploy/k8s has no Service of (has %v)", m[0], services)
				}
			}
			tag := k["images"].([]any)[0].(map[string]any)["newTag"]
			mk := regexp.MustCompile(`(?m)^VERSION \?= (\S+)$`).FindStringSubmatch(read(t, dir, "Makefile"))
			if tag == "latest" || tag == "" || mk == nil || mk[1] != tag {
				t.Errorf("kustomization newTag %v, Makefile VERSION %v; want one pinned tag, not latest", tag, mk)
			}
			err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(":latest")) || bytes.Contains(b, []byte("newTag: latest")) {
					t.Errorf("%s tags an image latest", p)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(read(t, dir, "Makefile"), "-t "+name+":$(VERSION)") {
				t.Errorf("make image does not tag %s:$(VERSION)", name)
			}
		})
	}
}

// The build context leaves out what the image does not need (bin/, .catga/,
// .git) and keeps vendor/, which the Dockerfile builds from.
func TestGenerate_DockerignoreKeepsVendor(t *testing.T) {
	dir, _ := generate(t, "nats")
	ignore := dockerignore(t, dir)
	for _, p := range []string{"bin", "bin/catga", ".catga/dev", ".git"} {
		if !ignored(ignore, p) {
			t.Errorf(".dockerignore sends %s", p)
		}
	}
	for _, p := range []string{"vendor/modules.txt", "go.mod", "go.sum", "cmd/shop-nats/main.go", "shopnats/handlers.go"} {
		if ignored(ignore, p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
}

// make image refuses, saying what to do, when go.mod replaces catga with a
// local path and there is no vendor/: docker build could not see the path.
// With vendor/, it runs docker build with the pinned tag.
func TestGenerate_MakeImageNeedsVendorWithALocalReplace(t *testing.T) {
	dir, name := generate(t, "nats")
	bin := t.TempDir()
	log := filepath.Join(bin, "docker.log")
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/sh\necho \"$@\" > "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	make := func() (string, error) {
		cmd := exec.Command("make", "image")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := make(); err == nil || !strings.Contains(out, "go mod vendor") {
		t.Errorf("make image without vendor/: %v\n%s\nwant a failure saying to run go mod vendor", err, out)
	}
	if _, err := os.Stat(log); err == nil {
		t.Error("make image ran docker build without vendor/")
	}
	if err := os.MkdirAll(filepath.Join(dir, "vendor"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := make(); err != nil {
		t.Fatalf("make image with vendor/: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(log); strings.TrimSpace(string(b)) != "build -t "+name+":0.1.0 ." {
		t.Errorf("docker %s; want build -t %s:0.1.0 .", b, name)
	}
}

// dockerContextBuilds vendors the tidied service in dir, copies what
// .dockerignore lets through, as docker build would send it, with the
// local catga checkout renamed to a path that does not exist (the
// container cannot see it), and loads every package of the Dockerfile's
// build there with the module proxy off.
func dockerContextBuilds(t *testing.T, dir, name string) {
	t.Helper()
	run(t, dir, "mod", "vendor")
	df := read(t, dir, "Dockerfile")
	if !strings.Contains(df, "go build") || !strings.Contains(df, "./cmd/"+name) {
		t.Fatalf("the Dockerfile does not build ./cmd/%s:\n%s", name, df)
	}
	ignore := dockerignore(t, dir)
	ctx := filepath.Join(t.TempDir(), "context")
	root := checkoutRoot(t)
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if ignored(ignore, filepath.ToSlash(rel)) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out := filepath.Join(ctx, rel)
		if e.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "go.mod" || rel == filepath.Join("vendor", "modules.txt") {
			b = bytes.ReplaceAll(b, []byte(filepath.ToSlash(root)), []byte("/nonexistent/catga"))
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "./cmd/"+name)
	cmd.Dir = ctx
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=vendor", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in the build context, go list -deps ./cmd/%s: %v\n%s", name, err, out)
	}
}

// dockerignore returns the patterns of dir's .dockerignore.
func dockerignore(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(read(t, dir, ".dockerignore"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Trim(line, "/"))
		}
	}
	return out
}

// ignored reports whether a path of the context, or a directory above it,
// matches a pattern, as docker build matches them (no "!" exceptions here).
func ignored(patterns []string, rel string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = filepath.Dir(p) {
		for _, pat := range patterns {
			if ok, _ := filepath.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

// Every Go file a new service gets is as gofmt writes it, for each
// transport (make lint in a repository that holds it would refuse one).
func TestGenerate_GoFilesAreGofmted(t *testing.T) {
	for _, transport := range []string{"memory", "nats", "redis"} {
		dir, _ := generate(t, transport)
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if out, err := format.Source(src); err != nil || !bytes.Equal(out, src) {
				rel, _ := filepath.Rel(dir, p)
				t.Errorf("%s: %s is not gofmt's (%v):\n%s", transport, rel, err, src)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
