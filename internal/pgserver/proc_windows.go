package pgserver

import (
	"os"
	"syscall"
)

// serverAccount: Windows runs the server as the current user.
func serverAccount() (account, error) { return account{}, nil }

// searchable: the current user runs the server, and reaches its own
// directories.
func searchable(string, account) error { return nil }

// procAttr puts a child in a process group of its own, so the console's
// Ctrl-C reaches this process alone.
func procAttr(account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// interrupt: Windows has no SIGINT to send another process; the server is
// killed.
func interrupt(p *os.Process) { _ = p.Kill() }

// killGroup kills the process pid.
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// killTree kills the postmaster and waits for it to exit.
func killTree(pid int, done <-chan struct{}) error {
	killGroup(pid)
	<-done
	return nil
}
