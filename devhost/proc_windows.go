package devhost

import (
	"os"
	"syscall"
)

// statusSignal: Windows has no SIGUSR1; the dashboard shows the table.
var statusSignal os.Signal

// childAttr: a child in a new process group, so the console's Ctrl-C
// reaches the host alone.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// signalGroup: Windows delivers no SIGTERM to another process, so a
// replica is killed at once, with no grace; hard changes nothing.
func signalGroup(pid int, _ bool) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
