// Package redistest runs real redis-server processes for tests: one on a
// free port with a temporary directory, or a cluster of three masters. It
// needs the redis-server binary; without it a test fails with how to
// install it (the test command, make test, installs it when it can).
package redistest

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
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/internal/freeport"
)

// Binary returns the path of redis-server, or an error saying how to get it.
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER_BIN"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redistest: redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_SERVER_BIN; make test installs it where it can")
	}
	return p, nil
}

// Server is a redis-server child process.
type Server struct {
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a redis-server with args added to its defaults (no RDB
// snapshots, no AOF unless args turn it on) and stops it at cleanup.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{port: freePort(t), dir: t.TempDir(), args: args}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int { return freeport.Get(t, "redistest") }

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log")}, s.args...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", bin, err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
				return nil
			}
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redistest: redis-server exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server on %s not ready within 10s", s.Addr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (its AOF lives there).
func (s *Server) Dir() string { return s.dir }

// Stop ends the server (SIGTERM, then SIGKILL); safe to call twice.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL, as a crash.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// StartAgain starts a stopped server on the same port and directory.
func (s *Server) StartAgain(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("redistest: server is running")
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// Cluster is three redis-server masters in cluster mode, slots assigned.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts three masters with --cluster-enabled yes, splits
// the 16384 slots between them, joins them, and waits for cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{}
	for range 3 {
		s := &Server{port: freePort(t), dir: t.TempDir()}
		s.args = []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"), "--cluster-node-timeout", "2000"}
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
	}
	ctx := context.Background()
	per := 16384 / len(c.Nodes)
	for i, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		lo, hi := i*per, (i+1)*per-1
		if i == len(c.Nodes)-1 {
			hi = 16383
		}
		if err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("redistest: cluster addslots: %v", err)
		}
		if i > 0 {
			if err := cl.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[0].port)).Err(); err != nil {
				t.Fatalf("redistest: cluster meet: %v", err)
			}
		}
		cl.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		for {
			info, _ := cl.ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok within 30s: %s", info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return c
}

// Addrs returns the masters' addresses, comma separated, as
// REDIS_CONNECTION takes them.
func (c *Cluster) Addrs() string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return strings.Join(out, ",")
}

// PID is the redis-server's process id, for measuring its CPU and memory.
func (s *Server) PID() int { return s.cmd.Process.Pid }
