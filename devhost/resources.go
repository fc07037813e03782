package devhost

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/catga-go/catga/internal/pgserver"
)

// NATS is an embedded nats-server.
type NATS struct {
	name      string
	jetstream bool
	dir       string
	srv       *server.Server
	port      int
}

// NATS declares an embedded NATS server.
func (h *Host) NATS(name string) *NATS {
	n := &NATS{name: name}
	h.nats = append(h.nats, n)
	return n
}

// WithJetStream turns JetStream on (the transport needs it).
func (n *NATS) WithJetStream() *NATS { n.jetstream = true; return n }

func (n *NATS) resourceName() string { return n.name }
func (n *NATS) url() string          { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }
func (n *NATS) env() []string        { return []string{"NATS_URL=" + n.url()} }

func (n *NATS) start(h *Host) error {
	dir, err := filepath.Abs(filepath.Join(h.opts.Dir, "nats-"+n.name))
	if err != nil {
		return err
	}
	n.dir = dir
	if !h.opts.Persist {
		_ = os.RemoveAll(n.dir)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, p, _ := net.SplitHostPort(addr)
	n.port, _ = strconv.Atoi(p)
	srv, err := server.NewServer(&server.Options{
		ServerName: n.name, Host: "127.0.0.1", Port: n.port, JetStream: n.jetstream, StoreDir: n.dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("devhost: NATS %s: %w", n.name, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("devhost: NATS %s not ready within 15s", n.name)
	}
	n.srv = srv
	return nil
}

func (n *NATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// Redis is a redis-server child process.
type Redis struct {
	name string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Redis declares a Redis server, run as a redis-server child process.
func (h *Host) Redis(name string) *Redis {
	r := &Redis{name: name}
	h.redis = append(h.redis, r)
	return r
}

func (r *Redis) resourceName() string { return r.name }
func (r *Redis) url() string          { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }
func (r *Redis) env() []string        { return []string{"REDIS_URL=" + r.url()} }

// redisBinary finds redis-server, or says which package to install.
func redisBinary() (string, error) {
	if p := os.Getenv("REDIS_SERVER_BIN"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("devhost: redis-server not found on PATH: install the redis-server package (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis; Fedora: sudo dnf install redis) or set REDIS_SERVER_BIN")
	}
	return p, nil
}

func (r *Redis) start(ctx context.Context, h *Host) error {
	bin, err := redisBinary()
	if err != nil {
		return err
	}
	r.dir, err = filepath.Abs(filepath.Join(h.opts.Dir, "redis-"+r.name))
	if err != nil {
		return err
	}
	if !h.opts.Persist {
		_ = os.RemoveAll(r.dir)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, p, _ := net.SplitHostPort(addr)
	r.port, _ = strconv.Atoi(p)
	aof := "no"
	if h.opts.Persist {
		aof = "yes"
	}
	r.cmd = exec.Command(bin, "--port", p, "--bind", "127.0.0.1", "--dir", r.dir, "--save", "", "--appendonly", aof, "--daemonize", "no", "--loglevel", "warning")
	r.cmd.SysProcAttr = childAttr()
	stdout, _ := r.cmd.StdoutPipe()
	r.cmd.Stderr = r.cmd.Stdout
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("devhost: start %s: %w", bin, err)
	}
	r.done = make(chan struct{})
	lines := h.out.writer("redis/"+r.name, "")
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines(sc.Text())
		}
	}()
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("devhost: redis-server %s exited at start", r.name)
		case <-ctx.Done():
			r.stop()
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return fmt.Errorf("devhost: redis-server %s not ready within 10s", r.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Redis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	signalGroup(r.cmd.Process.Pid, false)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		signalGroup(r.cmd.Process.Pid, true)
		<-r.done
	}
}

// Postgres is a PostgreSQL server: initdb, then postgres, as child
// processes.
type Postgres struct {
	name string
	tmp  string // the directory of a run without Persist, removed at its end
	srv  *pgserver.Server
	log  *lines
}

// Postgres declares a PostgreSQL server, run as child processes on a free
// port (initdb first when its data directory is new). A service that uses
// it gets DATABASE_URL: its postgres database, as the superuser postgres,
// whom it trusts on 127.0.0.1. Without the server programs, Run fails
// naming the package to install.
func (h *Host) Postgres(name string) *Postgres {
	p := &Postgres{name: name}
	h.postgres = append(h.postgres, p)
	return p
}

func (p *Postgres) resourceName() string { return p.name }
func (p *Postgres) url() string          { return p.srv.URL() }
func (p *Postgres) env() []string        { return []string{"DATABASE_URL=" + p.url()} }

// start runs the server on Options.Dir/postgres-<name> with Persist, else
// in a temporary directory that stop removes.
func (p *Postgres) start(ctx context.Context, h *Host) error {
	var dir string
	if h.opts.Persist {
		d, err := filepath.Abs(filepath.Join(h.opts.Dir, "postgres-"+p.name))
		if err != nil {
			return err
		}
		dir = d
	} else {
		tmp, err := pgserver.MkdirTemp("catga-dev-postgres-*")
		if err != nil {
			return fmt.Errorf("devhost: PostgreSQL %s: %w", p.name, err)
		}
		p.tmp, dir = tmp, filepath.Join(tmp, "data")
	}
	p.log = &lines{write: h.out.writer("postgres/"+p.name, "")}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Log: p.log})
	if err != nil {
		p.removeTemp()
		return fmt.Errorf("devhost: PostgreSQL %s: %w", p.name, err)
	}
	p.srv = srv
	return nil
}

// stop shuts the server down fast, and removes a temporary directory.
func (p *Postgres) stop(h *Host) {
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.srv.Stop(ctx); err != nil {
			h.out.system("postgres", "%v", err)
		}
		p.log.flush()
	}
	p.removeTemp()
}

func (p *Postgres) removeTemp() {
	if p.tmp != "" {
		_ = os.RemoveAll(p.tmp)
	}
}

// pid is the postmaster's, or 0.
func (p *Postgres) pid() int {
	if p.srv == nil {
		return 0
	}
	return p.srv.PID()
}
