//go:build unix

package devhost

import (
	"os"
	"syscall"
)

// statusSignal asks a running host for its table.
var statusSignal os.Signal = syscall.SIGUSR1

// signalGroup sends the child pid's process group SIGTERM, or SIGKILL
// when hard.
func signalGroup(pid int, hard bool) {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pid, sig)
}
