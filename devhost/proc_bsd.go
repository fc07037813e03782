//go:build unix && !linux

package devhost

import "syscall"

// childAttr puts a child in its own process group, which the host signals.
// Outside Linux there is no parent-death signal: a host killed with SIGKILL
// leaves its children, which then see their output pipes close.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
