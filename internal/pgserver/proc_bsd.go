//go:build unix && !linux

package pgserver

import "syscall"

// procAttr puts a child in a process group of its own, as acct. Outside
// Linux there is no parent-death signal.
func procAttr(acct account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: credential(acct)}
}

// killTree sends SIGKILL to the postmaster's process group and waits for
// the postmaster to exit. Its backends, each in a session of its own, are
// not listed here: they exit once they see the postmaster gone.
func killTree(pid int, done <-chan struct{}) error {
	killGroup(pid)
	<-done
	return nil
}
