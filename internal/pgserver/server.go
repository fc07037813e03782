package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is the superuser initdb creates, whom URL connects as.
const User = "postgres"

// Options say where a server keeps its data and how it runs. Dir is
// required; the rest have defaults.
type Options struct {
	// Dir is the data directory. Start creates it and runs initdb in it
	// when it holds no cluster; otherwise the server runs on the data
	// there.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one, which
	// StartAgain keeps.
	Port int
	// Args are added to the postgres command line after the defaults,
	// which they override: "-c", "max_connections=20".
	Args []string
	// LogPath is the file the output of initdb and of the server is
	// appended to; default Dir/postgres.log. Unused when Log is set.
	LogPath string
	// Log, when set, receives that output instead of LogPath, from one
	// goroutine at a time.
	Log io.Writer
}

// Validate reports every problem of o.
func (o Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("pgserver: Options.Dir is empty: the data directory is required"))
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("pgserver: Options.Port %d, want 0 (a free port) to 65535", o.Port))
	}
	return errors.Join(errs...)
}

// Server is a PostgreSQL server run as a child process: a postmaster and
// the processes it starts. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	bin  Binaries
	acct account
	out  *output

	mu   sync.Mutex
	cmd  *exec.Cmd     // the postmaster; nil once stopped or killed
	done chan struct{} // closed when cmd has exited
}

// account is who runs initdb and postgres: the current user, or an
// unprivileged one when that is root, which PostgreSQL refuses.
type account struct {
	name     string
	uid, gid int
	other    bool // not the current user: the children switch to it
}

// Start starts a server on opts.Dir, running initdb there first when the
// directory holds no cluster, and returns once it accepts connections; it
// waits for ctx, and at most a minute when ctx has no deadline. The error
// of a server that does not start quotes the end of its output.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if opts.LogPath == "" {
		opts.LogPath = filepath.Join(opts.Dir, "postgres.log")
	}
	opts.Args = slices.Clone(opts.Args)
	s := &Server{opts: opts, bin: bin, acct: acct, out: &output{w: opts.Log, path: opts.LogPath}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.start(ctx, opts.Port == 0); err != nil {
		return nil, err
	}
	return s, nil
}

// MkdirTemp creates a new directory in os.TempDir for a server's files,
// as os.MkdirTemp does with pattern, and, when the server runs as another
// user (the current one is root), lets that user reach it. Make the data
// directory a new path inside it. The caller removes it.
func MkdirTemp(pattern string) (string, error) {
	acct, err := serverAccount()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	if acct.other {
		err = os.Chmod(dir, 0o711)
		if err != nil {
			err = fmt.Errorf("pgserver: %w", err)
		} else {
			err = searchable(dir, acct)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// URL is the server's postgres database, as its superuser:
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", User, s.opts.Port)
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.opts.Port }

// Dir is the server's data directory, absolute.
func (s *Server) Dir() string { return s.opts.Dir }

// PID is the postmaster's process id, or 0 when the server is not
// running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down fast: SIGINT to the postmaster, which ends
// every session and writes out what is committed. When ctx ends first (at
// most 30s when it has no deadline), Stop kills the server as Kill does
// and says so. Stopping a stopped server does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	p, done := s.cmd.Process, s.done
	s.cmd, s.done = nil, nil
	interrupt(p)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if err := killTree(p.Pid, done); err != nil {
			return err
		}
		return fmt.Errorf("pgserver: fast shutdown of the server on port %d: %w: killed it", s.opts.Port, ctx.Err())
	}
}

// Kill crashes the server: SIGKILL to the postmaster and to every process
// it started, at once. It returns once they are all gone, so a new server
// on the directory finds no process attached to the old shared memory.
// Killing a stopped server does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	pid, done := s.cmd.Process.Pid, s.done
	s.cmd, s.done = nil, nil
	return killTree(pid, done)
}

// StartAgain starts a stopped or killed server on its directory and port,
// on the data there, and returns once it accepts connections, as Start
// does. After a Kill, the server first recovers from its WAL.
func (s *Server) StartAgain(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		return fmt.Errorf("pgserver: the server on port %d is running", s.opts.Port)
	}
	s.cmd, s.done = nil, nil // a postmaster that exited by itself
	return s.start(ctx, false)
}

func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// start runs initdb when needed, then the postmaster; with pickPort, it
// tries another free port when the one it picked was taken meanwhile.
func (s *Server) start(ctx context.Context, pickPort bool) error {
	ctx, cancel := withDefaultTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.initdb(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if pickPort {
			port, err := freePort()
			if err != nil {
				return err
			}
			s.opts.Port = port
		}
		err := s.run(ctx)
		if err == nil || !pickPort || attempt == 3 || !strings.Contains(s.out.tail(), "Address already in use") {
			return err
		}
	}
}

// initdb initialises the data directory unless it holds a cluster.
func (s *Server) initdb(ctx context.Context) error {
	dir := s.opts.Dir
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := prepareDir(dir, s.acct); err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, s.bin.Initdb, "-D", dir, "-U", User,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	s.setup(cmd)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { killGroup(cmd.Process.Pid); return nil }
	if err := cmd.Run(); err != nil {
		// initdb empties the directory when it fails, but not when it is
		// killed: whatever is there is its, and a PG_VERSION left would
		// pass for a cluster.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pgserver: initdb %s: %w (%v)", dir, ctx.Err(), err)
		}
		return fmt.Errorf("pgserver: initdb %s: %w\n%s", dir, err, out.Bytes())
	}
	_, _ = s.out.Write(out.Bytes())
	s.out.close()
	return nil
}

// prepareDir creates dir, owned by acct, and checks acct can reach it.
func prepareDir(dir string, acct account) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgserver: %w", err)
	}
	if !acct.other {
		return nil
	}
	if err := os.Chown(dir, acct.uid, acct.gid); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return searchable(dir, acct)
}

// run starts the postmaster and waits until it accepts connections.
func (s *Server) run(ctx context.Context) error {
	s.out.reset()
	args := append([]string{"-D", s.opts.Dir, "-p", strconv.Itoa(s.opts.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off"}, s.opts.Args...)
	cmd := exec.Command(s.bin.Postgres, args...)
	s.setup(cmd)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgserver: start %s: %w", s.bin.Postgres, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		s.out.close()
		close(done)
	}()
	err := errors.New("postmaster.pid does not say ready")
	for {
		// Ask the server only once it says it is ready: a connection
		// before is refused, and logged as a FATAL.
		if pidFileReady(s.opts.Dir, cmd.Process.Pid) {
			if err = ping(ctx, s.URL()); err == nil {
				s.cmd, s.done = cmd, done
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("pgserver: postgres on port %d exited at start (%v):\n%s", s.opts.Port, cmd.ProcessState, s.out.tail())
		case <-ctx.Done():
			if kerr := killTree(cmd.Process.Pid, done); kerr != nil {
				return kerr
			}
			return fmt.Errorf("pgserver: postgres on port %d not ready: %w (last: %v)\n%s", s.opts.Port, ctx.Err(), err, s.out.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setup makes cmd run in the data directory, as acct, in a process group
// of its own, dying with this process where the system allows.
func (s *Server) setup(cmd *exec.Cmd) {
	cmd.Dir = s.opts.Dir
	cmd.SysProcAttr = procAttr(s.acct)
	// The server's children inherit its output; when a crash leaves one
	// holding it, Wait returns anyway.
	cmd.WaitDelay = 5 * time.Second
}

// pidFileReady reports whether the postmaster pid has written "ready" in
// its status line of dir/postmaster.pid (PostgreSQL 10 and later), as
// pg_ctl start waits for.
func pidFileReady(dir string, pid int) bool {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(data), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) && strings.TrimSpace(lines[7]) == "ready"
}

// ping connects to url and pings, within two seconds.
func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: no free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
