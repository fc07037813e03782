// Package scaffold renders a new Catga service from the templates embedded
// in it: go.mod, cmd/<name>/main.go composing catga.Module, otelexport.Module, the chosen
// transport's modules and the service's own, one command, query and event
// with handlers and tests, a catga.dev.yaml, a Makefile, a Dockerfile and
// .dockerignore, Kubernetes manifests (with the NATS and Redis the service
// needs) and a README. The catga CLI's "new" runs it.
//
// With a broker (nats, redis) the service runs as replicas, so its state
// is in Redis, shared by them: the store writes through redismod's
// Outbox.Tx, so an item and the event of its creation commit together,
// and the generated test runs two replicas and reads on the other what one
// created. With memory, it runs as one replica, its state in process.
// A template whose output is empty is a file the transport does not have.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"golang.org/x/mod/module"
)

//go:embed all:templates
var templates embed.FS

// Options say what to generate.
type Options struct {
	Name      string // the service: lowercase letters, digits and '-', starting with a letter
	Module    string // Go module path; default example.com/<name>
	Transport string // memory, nats (default) or redis
	Dir       string // where; default ./<name>
	Force     bool   // write into a directory that is not empty

	CatgaVersion string // the catga version go.mod requires; default v0.0.0
	CatgaPath    string // a local checkout of catga to replace it with, or ""
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// transport is what a choice of Options.Transport puts in the service.
type transport struct {
	Imports []string // of main.go, besides catga and app
	Modules string   // main.go composes catga.Module, these, and the service's
	Env     []string // the variables that reach the servers
	Name    string   // what the messages go over, for the docs
	NATS    bool     // uses NATS (messages)
	Redis   bool     // uses Redis (state, and messages for "redis")
}

// transports are the choices of Options.Transport. Where messages go over
// a broker, the service runs as replicas, and its state is in Redis
// (redismod.Outbox): every replica reads it, and an item and the event of
// its creation commit in one MULTI/EXEC. Redis rather than PostgreSQL:
// the redis transport has it already, catga dev runs it as one
// redis-server, and the Kubernetes manifests as one small StatefulSet.
var transports = map[string]transport{
	"memory": {},
	"nats": {Imports: []string{"github.com/catga-go/catga/modules/natsmod", "github.com/catga-go/catga/modules/redismod"},
		Modules: "natsmod.Module, redismod.StoreModule", Env: []string{"NATS_URL", "REDIS_URL"}, Name: "NATS JetStream", NATS: true, Redis: true},
	"redis": {Imports: []string{"github.com/catga-go/catga/modules/redismod"},
		Modules: "redismod.Module", Env: []string{"REDIS_URL"}, Name: "Redis Streams", Redis: true},
}

// Version is the version, and the image tag, of a new service.
const Version = "0.1.0"

// WithDefaults returns o with defaults filled in.
func (o Options) WithDefaults() Options {
	if o.Module == "" && o.Name != "" {
		o.Module = "example.com/" + o.Name
	}
	if o.Transport == "" {
		o.Transport = "nats"
	}
	if o.Dir == "" {
		o.Dir = o.Name
	}
	if o.CatgaVersion == "" {
		o.CatgaVersion = "v0.0.0"
	}
	return o
}

// Validate reports every bad option, naming it and the value.
func (o Options) Validate() error {
	var errs []error
	switch {
	case o.Name == "":
		errs = append(errs, errors.New("name: required, e.g. catga new shop"))
	case !nameRE.MatchString(o.Name) || strings.HasSuffix(o.Name, "-") || strings.Contains(o.Name, "--"):
		errs = append(errs, fmt.Errorf("name %q: use lowercase letters, digits and single dashes, starting with a letter, at most 40 (it names a Kubernetes Deployment and a Go package)", o.Name))
	}
	if o.Module != "" {
		if err := module.CheckPath(o.Module); err != nil {
			errs = append(errs, fmt.Errorf("--module %q: %v", o.Module, err))
		}
	}
	if _, ok := transports[o.Transport]; !ok {
		errs = append(errs, fmt.Errorf("--transport %q: want memory, nats or redis", o.Transport))
	}
	if o.CatgaPath != "" {
		if _, err := os.Stat(filepath.Join(o.CatgaPath, "go.mod")); err != nil {
			errs = append(errs, fmt.Errorf("catga path %q: no go.mod there", o.CatgaPath))
		}
	}
	return errors.Join(errs...)
}

// data is what the templates see.
type data struct {
	Options
	Package string
	T       transport
	Version string
	// Replicated: the service runs as replicas (2 in catga dev, 3 in the
	// Deployment), its state shared in Redis; else one, its state in
	// process memory.
	Replicated bool
}

// Generate writes the service and returns the files it wrote, relative to
// o.Dir. It refuses a directory that exists and is not empty, unless Force.
func Generate(o Options) ([]string, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := checkDir(o.Dir, o.Force); err != nil {
		return nil, err
	}
	tr := transports[o.Transport]
	d := data{Options: o, Package: strings.ReplaceAll(o.Name, "-", ""), T: tr, Version: Version, Replicated: tr.Redis}
	if d.CatgaPath != "" {
		abs, err := filepath.Abs(d.CatgaPath)
		if err != nil {
			return nil, err
		}
		d.CatgaPath = filepath.ToSlash(abs)
	}
	var written []string
	err := fs.WalkDir(templates, "templates", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "templates/")
		rel = strings.ReplaceAll(rel, "__name__", o.Name)
		rel = strings.ReplaceAll(rel, "__pkg__", d.Package)
		rel = strings.TrimSuffix(rel, ".tmpl")
		if rel == "gitignore" || rel == "dockerignore" {
			rel = "." + rel
		}
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("scaffold: template %s: %w", p, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, d); err != nil {
			return fmt.Errorf("scaffold: render %s: %w", p, err)
		}
		if len(bytes.TrimSpace(buf.Bytes())) == 0 {
			return nil // a file this transport does not have
		}
		out := filepath.Join(o.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			return err
		}
		written = append(written, path.Clean(rel))
		return nil
	})
	return written, err
}

// checkDir refuses a directory that has files in it, unless force.
func checkDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("scaffold: %s: %w", dir, err)
	case len(entries) > 0 && !force:
		return fmt.Errorf("scaffold: %s is not empty (%d entries); choose another --dir or pass --force to write over it", dir, len(entries))
	}
	return nil
}
