package devhost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// File is a catga.dev.yaml: the AppHost for teams that do not want one in
// Go.
//
//	nats:
//	  - name: nats
//	    jetstream: true
//	redis:
//	  - name: redis
//	postgres:
//	  - name: postgres
//	services:
//	  - name: order-service
//	    path: ./cmd/order-service
//	    replicas: 2
//	    port: 8080 # replica 1 on :8080, 2 on :8081; default free ports
//	    use: [nats, redis, postgres]
//	    env:
//	      CATGA_TRANSPORT: nats
type File struct {
	Dir       string         `yaml:"dir"`       // default .catga/dev, beside the file
	Persist   bool           `yaml:"persist"`   // keep NATS, Redis and PostgreSQL data across runs
	Dashboard string         `yaml:"dashboard"` // default 127.0.0.1:7070
	NATS      []NATSFile     `yaml:"nats"`
	Redis     []RedisFile    `yaml:"redis"`
	Postgres  []PostgresFile `yaml:"postgres"`
	Services  []ServiceFile  `yaml:"services"`
}

// NATSFile declares an embedded NATS.
type NATSFile struct {
	Name      string `yaml:"name"`
	JetStream bool   `yaml:"jetstream"`
}

// RedisFile declares a redis-server.
type RedisFile struct {
	Name string `yaml:"name"`
}

// PostgresFile declares a PostgreSQL server.
type PostgresFile struct {
	Name string `yaml:"name"`
}

// ServiceFile declares a service.
type ServiceFile struct {
	Name     string            `yaml:"name"`
	Path     string            `yaml:"path"`
	Replicas int               `yaml:"replicas"`
	Port     int               `yaml:"port"` // replica n on base+n-1; default free ports
	Use      []string          `yaml:"use"`
	Env      map[string]string `yaml:"env"`
}

// Load reads a catga.dev.yaml into a host whose paths are relative to the
// file's directory. Unknown keys and references to undeclared resources
// are errors naming them.
func Load(path string, opts Options) (*Host, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devhost: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("devhost: %s: %w", path, err)
	}
	base := filepath.Dir(path)
	if opts.WorkDir == "" {
		opts.WorkDir = base
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(base, ".catga", "dev")
		if f.Dir != "" {
			opts.Dir = filepath.Join(base, f.Dir)
		}
	}
	if f.Dashboard != "" && opts.Addr == "" {
		opts.Addr = f.Dashboard
	}
	opts.Persist = opts.Persist || f.Persist
	h := New(opts)
	res := map[string]Resource{}
	var errs []error
	for _, n := range f.NATS {
		if n.Name == "" || res[n.Name] != nil {
			errs = append(errs, fmt.Errorf("devhost: %s: nats %q: a resource needs a unique name", path, n.Name))
			continue
		}
		r := h.NATS(n.Name)
		if n.JetStream {
			r.WithJetStream()
		}
		res[n.Name] = r
	}
	for _, rf := range f.Redis {
		if rf.Name == "" || res[rf.Name] != nil {
			errs = append(errs, fmt.Errorf("devhost: %s: redis %q: a resource needs a unique name", path, rf.Name))
			continue
		}
		res[rf.Name] = h.Redis(rf.Name)
	}
	for _, pf := range f.Postgres {
		if pf.Name == "" || res[pf.Name] != nil {
			errs = append(errs, fmt.Errorf("devhost: %s: postgres %q: a resource needs a unique name", path, pf.Name))
			continue
		}
		res[pf.Name] = h.Postgres(pf.Name)
	}
	for _, sf := range f.Services {
		s := h.Service(sf.Name, sf.Path)
		if sf.Replicas > 0 {
			s.Replicas(sf.Replicas)
		}
		if sf.Port != 0 {
			s.Port(sf.Port)
		}
		for _, u := range sf.Use {
			r, ok := res[u]
			if !ok {
				errs = append(errs, fmt.Errorf("devhost: %s: service %q uses %q, which is not declared", path, sf.Name, u))
				continue
			}
			s.Use(r)
		}
		keys := make([]string, 0, len(sf.Env))
		for k := range sf.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s.Env(k + "=" + sf.Env[k])
		}
	}
	if err := errors.Join(append(errs, h.validate())...); err != nil {
		return nil, err
	}
	return h, nil
}
