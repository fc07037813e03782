package devhost_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/devhost"
)

// hostEnv names the catga.dev.yaml this test binary, re-executed, runs as
// a host would (catga dev).
const hostEnv = "DEVHOST_TEST_HOST"

func runHost(file string) int {
	h, err := devhost.Load(file, devhost.Options{WorkDir: ".", Grace: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := h.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childrenOf returns the pids whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) && fields[0] != "Z" {
			out = append(out, p)
		}
	}
	return out
}

// A host process (catga dev on a catga.dev.yaml), stopped by SIGTERM or
// killed outright, leaves none of its children alive: two replicas and
// redis-server.
func TestHostProcess_NoOrphansOnAnyExit(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatal("this test reads /proc to find the host's children: it needs Linux")
	}
	wd, _ := os.Getwd()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			dash := ln.Addr().String()
			ln.Close()
			dir := t.TempDir()
			file := filepath.Join(dir, "catga.dev.yaml")
			yaml := fmt.Sprintf(`dashboard: %s
redis:
  - name: redis
services:
  - name: svc
    path: %s
    replicas: 2
    use: [redis]
`, dash, "./testdata/svc")
			if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), hostEnv+"="+file)
			cmd.Dir = wd
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			var children []int
			if !catgatest.Poll(60*time.Second, func() bool {
				var rows []devhost.Status
				ready := 0
				if err := getJSONQuiet("http://"+dash+"/api/status", &rows); err == nil {
					for _, r := range rows {
						if r.Ready {
							ready++
						}
					}
				}
				if ready == 2 {
					children = childrenOf(cmd.Process.Pid)
					return true
				}
				select {
				case err := <-exited:
					exited <- err
					t.Fatalf("the host exited (%v) before ready:\n%s", err, &out)
				default:
				}
				return false
			}) {
				t.Fatalf("the host is not ready in 60s:\n%s", &out)
			}
			if len(children) != 3 {
				t.Fatalf("the host has children %v, want 2 replicas and redis-server:\n%s", children, &out)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				exited <- err
				if sig == syscall.SIGTERM && err != nil {
					t.Errorf("the host exited with %v on SIGTERM, want 0:\n%s", err, &out)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the host did not exit on %v", sig)
			}
			waitGone(t, children, 5*time.Second)
		})
	}
}
