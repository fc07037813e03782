package pgserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procAttr puts a child in a process group of its own, as acct, and kills
// it when this process dies, however it dies. The kernel clears the
// parent-death signal on a change of user, but Go sets it after the
// switch.
func procAttr(acct account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: credential(acct)}
}

// proc is a process, told apart from a later one with its pid by its
// start time.
type proc struct {
	pid   int
	start string
}

// killTree sends SIGKILL to the postmaster pid, its process group and
// every process it started (each backend has a session of its own, out of
// the group), then waits until the postmaster has exited (done closed)
// and the others are gone: exited, zombies holding nothing.
func killTree(pid int, done <-chan struct{}) error {
	_ = syscall.Kill(pid, syscall.SIGSTOP) // it forks no backend while listed
	procs := descendants(pid)
	killGroup(pid)
	for _, p := range procs {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range procs {
		for p.alive() {
			if time.Now().After(deadline) {
				return fmt.Errorf("pgserver: process %d of the killed server still runs 10s after SIGKILL", p.pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields := statFields(p)
		if len(fields) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], proc{pid: p, start: fields[19]})
	}
	var out []proc
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// alive reports whether p still runs: a zombie has let go of everything.
func (p proc) alive() bool {
	fields := statFields(p.pid)
	return len(fields) >= 20 && fields[19] == p.start && fields[0] != "Z"
}

// statFields are the fields of /proc/pid/stat after the command name:
// state, ppid, ..., starttime at index 19.
func statFields(pid int) []string {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(stat)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}
