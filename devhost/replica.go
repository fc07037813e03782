package devhost

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// replica is one process of a service, kept running.
type replica struct {
	h   *Host
	s   *Service
	n   int
	bin string
	env []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	addr     string
	ready    bool
	restarts int
	running  bool
}

func newReplica(h *Host, s *Service, n int, bin string) (*replica, error) {
	env := append(os.Environ(), "CATGA_SERVICE="+s.name, fmt.Sprintf("HOSTNAME=%s-%d", s.name, n))
	for _, u := range s.uses {
		env = append(env, u.env()...)
	}
	env = append(env, s.env...)
	return &replica{h: h, s: s, n: n, bin: bin, env: env}, nil
}

func (r *replica) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid := 0
	if r.cmd != nil && r.cmd.Process != nil && r.running {
		pid = r.cmd.Process.Pid
	}
	return Status{Service: r.s.name, Replica: r.n, Hostname: fmt.Sprintf("%s-%d", r.s.name, r.n), PID: pid,
		Addr: r.addr, Ready: r.ready && r.running, Restarts: r.restarts, Running: r.running}
}

func (r *replica) setReady(ok bool) {
	r.mu.Lock()
	r.ready = ok
	r.mu.Unlock()
}

// supervise runs the replica, restarting it with backoff when it exits,
// until stop closes; then it stops it: SIGTERM, SIGKILL after the grace.
func (r *replica) supervise(stop <-chan struct{}) {
	backoff := time.Second
	for {
		exited, err := r.start()
		if err != nil {
			r.h.out.system(r.prefix(), "start failed: %v", err)
		}
		startedAt := time.Now()
		select {
		case <-stop:
			r.terminate(exited)
			return
		case err := <-exited:
			r.mu.Lock()
			r.running, r.ready = false, false
			r.mu.Unlock()
			if time.Since(startedAt) > time.Minute {
				backoff = time.Second
			}
			r.h.out.system(r.prefix(), "exited (%v); restarting in %v", exitText(err), backoff)
			select {
			case <-stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			r.mu.Lock()
			r.restarts++
			r.mu.Unlock()
			r.h.printStatus()
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

func (r *replica) prefix() string { return fmt.Sprintf("%s/%d", r.s.name, r.n) }

// start starts the process on a free address; exited reports its end.
func (r *replica) start() (<-chan error, error) {
	exited := make(chan error, 1)
	addr, err := freeAddr()
	if r.s.port > 0 {
		addr, err = fmt.Sprintf("127.0.0.1:%d", r.s.port+r.n-1), nil
	}
	if err != nil {
		exited <- err
		return exited, err
	}
	cmd := exec.Command(r.bin)
	cmd.Env = append(append([]string(nil), r.env...), "HTTP_ADDR="+addr)
	cmd.SysProcAttr = childAttr()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		exited <- err
		return exited, err
	}
	r.mu.Lock()
	r.cmd, r.addr, r.running, r.ready = cmd, addr, true, false
	r.mu.Unlock()
	write := r.h.out.writer(r.prefix(), r.s.name)
	var pipes sync.WaitGroup
	for _, p := range []io.Reader{stdout, stderr} {
		pipes.Add(1)
		go func() {
			defer pipes.Done()
			sc := bufio.NewScanner(p)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				write(strings.TrimRight(sc.Text(), "\r"))
			}
		}()
	}
	go func() {
		pipes.Wait()
		exited <- cmd.Wait()
	}()
	return exited, nil
}

// terminate sends SIGTERM to the replica's process group and SIGKILL after
// the grace; it returns once the process is gone.
func (r *replica) terminate(exited <-chan error) {
	r.mu.Lock()
	cmd, running := r.cmd, r.running
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil || !running {
		return
	}
	signalGroup(cmd.Process.Pid, false)
	select {
	case <-exited:
	case <-time.After(r.h.opts.Grace):
		r.h.out.system(r.prefix(), "no exit %v after SIGTERM: SIGKILL", r.h.opts.Grace)
		signalGroup(cmd.Process.Pid, true)
		<-exited
	}
	r.mu.Lock()
	r.running, r.ready = false, false
	r.mu.Unlock()
}
