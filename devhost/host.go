package devhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options tune a Host. The zero value works.
type Options struct {
	Dir     string        // state: built binaries, NATS and Redis data (and PostgreSQL's with Persist); default ".catga/dev"
	WorkDir string        // where service paths are resolved and built; default the current directory
	Persist bool          // keep NATS, Redis and PostgreSQL data across runs
	Addr    string        // dashboard address; default "127.0.0.1:7070", "" for none when NoDashboard
	Out     io.Writer     // the multiplexed output; default os.Stdout
	Grace   time.Duration // SIGTERM to SIGKILL; default 30s
	Color   *bool         // colour the prefixes; default: when Out is a terminal
	// NoDashboard turns the dashboard off.
	NoDashboard bool
}

// Host is an AppHost: resources and services, run together.
type Host struct {
	opts     Options
	nats     []*NATS
	redis    []*Redis
	postgres []*Postgres
	services []*Service

	out   *mux
	mu    sync.Mutex
	reps  []*replica
	ready chan struct{}
	dash  net.Listener
	ran   bool
}

// New returns a host with opts (at most one Options).
func New(opts ...Options) *Host {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(".catga", "dev")
	}
	if o.Addr == "" && !o.NoDashboard {
		o.Addr = "127.0.0.1:7070"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Grace <= 0 {
		o.Grace = 30 * time.Second
	}
	color := isTerminal(o.Out)
	if o.Color != nil {
		color = *o.Color
	}
	return &Host{opts: o, out: newMux(o.Out, color), ready: make(chan struct{})}
}

// Resource is something a service uses: it adds variables to its env.
type Resource interface {
	env() []string
	resourceName() string
}

// Service is one service of the host, built once and run as replicas.
type Service struct {
	h        *Host
	name     string
	path     string
	replicas int
	port     int
	uses     []Resource
	env      []string
}

// Service declares a service: its name (CATGA_SERVICE) and the Go package
// of its main, relative to Options.WorkDir.
func (h *Host) Service(name, pkg string) *Service {
	s := &Service{h: h, name: name, path: pkg, replicas: 1}
	h.services = append(h.services, s)
	return s
}

// Use injects the connection strings of rs.
func (s *Service) Use(rs ...Resource) *Service { s.uses = append(s.uses, rs...); return s }

// Replicas sets how many processes of s run.
func (s *Service) Replicas(n int) *Service { s.replicas = n; return s }

// Port fixes the replicas' addresses: replica n listens on
// 127.0.0.1:base+n-1, across restarts, instead of on a free port.
func (s *Service) Port(base int) *Service { s.port = base; return s }

// Env adds a variable ("KEY=value") to every replica of s.
func (s *Service) Env(kv ...string) *Service { s.env = append(s.env, kv...); return s }

// Ready is closed once every replica has answered /ready with 200.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// DashboardAddr is the dashboard's address, once Run has started it.
func (h *Host) DashboardAddr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dash == nil {
		return ""
	}
	return h.dash.Addr().String()
}

func (h *Host) validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range h.services {
		switch {
		case s.name == "":
			errs = append(errs, errors.New("devhost: a service without a name"))
		case seen[s.name]:
			errs = append(errs, fmt.Errorf("devhost: service %q declared twice", s.name))
		case s.replicas < 1 || s.replicas > 20:
			errs = append(errs, fmt.Errorf("devhost: service %q: replicas %d, want 1 to 20", s.name, s.replicas))
		case s.path == "":
			errs = append(errs, fmt.Errorf("devhost: service %q has no package path", s.name))
		case s.port < 0 || s.port+s.replicas-1 > 65535:
			errs = append(errs, fmt.Errorf("devhost: service %q: port %d for %d replicas, want 1 to %d", s.name, s.port, s.replicas, 65536-s.replicas))
		}
		seen[s.name] = true
	}
	names := map[string]bool{}
	var rs []Resource
	for _, n := range h.nats {
		rs = append(rs, n)
	}
	for _, r := range h.redis {
		rs = append(rs, r)
	}
	for _, p := range h.postgres {
		rs = append(rs, p)
	}
	for _, r := range rs {
		switch n := r.resourceName(); {
		case n == "":
			errs = append(errs, errors.New("devhost: a resource without a name"))
		case names[n]:
			errs = append(errs, fmt.Errorf("devhost: resource %q declared twice", n))
		default:
			names[n] = true
		}
	}
	if len(h.services) == 0 {
		errs = append(errs, errors.New("devhost: no services"))
	}
	return errors.Join(errs...)
}

// Run starts everything, then waits until ctx ends and stops everything:
// replicas (SIGTERM, SIGKILL after the grace), then PostgreSQL, then
// Redis, then NATS. It
// returns the first error of starting, or nil after a clean stop.
//
// A Host runs once: a second Run is an error.
func (h *Host) Run(ctx context.Context) error {
	h.mu.Lock()
	ran := h.ran
	h.ran = true
	h.mu.Unlock()
	if ran {
		return errors.New("devhost: this Host has run already; declare a new one")
	}
	if err := h.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(h.opts.Dir, 0o755); err != nil {
		return fmt.Errorf("devhost: %w", err)
	}
	var stops []func()
	defer func() { // the reverse of starting: replicas, PostgreSQL, Redis, NATS
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	for _, n := range h.nats {
		if err := n.start(h); err != nil {
			return err
		}
		h.out.system("nats", "NATS %s (JetStream) on %s, data in %s", n.name, n.url(), n.dir)
		stops = append(stops, n.stop)
	}
	for _, r := range h.redis {
		if err := r.start(ctx, h); err != nil {
			return err
		}
		h.out.system("redis", "Redis %s on %s", r.name, r.url())
		stops = append(stops, r.stop)
	}
	for _, p := range h.postgres {
		if err := p.start(ctx, h); err != nil {
			return err
		}
		h.out.system("postgres", "PostgreSQL %s on %s, data in %s", p.name, p.url(), p.srv.Dir())
		stops = append(stops, func() { p.stop(h) })
	}
	bins, err := h.build(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	stopReplicas := make(chan struct{})
	stops = append(stops, func() {
		close(stopReplicas)
		wg.Wait()
	})
	for _, s := range h.services {
		for i := 1; i <= s.replicas; i++ {
			r, err := newReplica(h, s, i, bins[s.name])
			if err != nil {
				return err
			}
			h.mu.Lock()
			h.reps = append(h.reps, r)
			h.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); r.supervise(stopReplicas) }()
		}
	}
	if !h.opts.NoDashboard {
		stop, err := h.serveDashboard()
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	wg.Add(1)
	go func() { defer wg.Done(); h.watchReady(stopReplicas) }()
	usr1 := make(chan os.Signal, 1)
	if statusSignal != nil {
		signal.Notify(usr1, statusSignal)
		defer signal.Stop(usr1)
		h.out.system("host", "the status table: kill -USR1 %d, or the dashboard", os.Getpid())
	}
	for {
		select {
		case <-ctx.Done():
			h.out.system("host", "stopping: SIGTERM to every replica, SIGKILL after %v", h.opts.Grace)
			return nil
		case <-usr1:
			h.printStatus()
		}
	}
}

// build compiles each service once into Options.Dir/bin.
func (h *Host) build(ctx context.Context) (map[string]string, error) {
	binDir, err := filepath.Abs(filepath.Join(h.opts.Dir, "bin"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, s := range h.services {
		bin := filepath.Join(binDir, s.name)
		h.out.system("build", "go build %s", s.path)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, s.path)
		cmd.Dir = h.opts.WorkDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("devhost: build %s (%s): %w\n%s", s.name, s.path, err, out)
		}
		bins[s.name] = bin
	}
	return bins, nil
}

// watchReady polls every replica's /ready, closes Ready once all answer
// 200, and prints the table then.
func (h *Host) watchReady(stop <-chan struct{}) {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	all := false
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		reps := append([]*replica(nil), h.reps...)
		h.mu.Unlock()
		ready := 0
		for _, r := range reps {
			ok := false
			if addr := r.status().Addr; addr != "" {
				if resp, err := client.Get("http://" + addr + "/ready"); err == nil {
					ok = resp.StatusCode == http.StatusOK
					resp.Body.Close()
				}
			}
			r.setReady(ok)
			if ok {
				ready++
			}
		}
		if ready == len(reps) && !all {
			all = true
			// The table first: a caller woken by Ready finds it printed.
			h.out.system("host", "all %d replicas ready", len(reps))
			h.printStatus()
			select {
			case <-h.ready:
			default:
				close(h.ready)
			}
		}
		if ready < len(reps) {
			all = false
		}
	}
}

// Children returns the pids of every process the host started and is
// running now: replicas, redis-server and the PostgreSQL postmasters.
func (h *Host) Children() []int {
	var pids []int
	for _, s := range h.Status() {
		if s.PID != 0 {
			pids = append(pids, s.PID)
		}
	}
	for _, p := range h.postgres {
		if pid := p.pid(); pid != 0 {
			pids = append(pids, pid)
		}
	}
	for _, r := range h.redis {
		if r.cmd != nil && r.cmd.Process != nil {
			select {
			case <-r.done:
			default:
				pids = append(pids, r.cmd.Process.Pid)
			}
		}
	}
	return pids
}

// Status is one replica's row of the table.
type Status struct {
	Service  string `json:"service"`
	Replica  int    `json:"replica"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Addr     string `json:"addr"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	Running  bool   `json:"running"`
}

// Status returns the table: every replica, by service and number.
func (h *Host) Status() []Status {
	h.mu.Lock()
	reps := append([]*replica(nil), h.reps...)
	h.mu.Unlock()
	out := make([]Status, 0, len(reps))
	for _, r := range reps {
		out = append(out, r.status())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Replica < out[j].Replica
	})
	return out
}

func (h *Host) printStatus() {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %-7s %-8s %-21s %-6s %s\n", "SERVICE", "REPLICA", "PID", "ADDRESS", "READY", "RESTARTS")
	for _, s := range h.Status() {
		fmt.Fprintf(&b, "%-22s %-7d %-8d %-21s %-6v %d\n", s.Service, s.Replica, s.PID, s.Addr, s.Ready, s.Restarts)
	}
	if a := h.DashboardAddr(); a != "" {
		fmt.Fprintf(&b, "dashboard: http://%s/\n", a)
	}
	h.out.block(b.String())
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
