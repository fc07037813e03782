package devhost

import "syscall"

// childAttr puts a child in its own process group (the host signals the
// group) and kills it if the host dies, whatever the way.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
