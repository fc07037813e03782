// Command pause is a pod sandbox's process for the cluster make k8s-e2e
// starts on a machine that reaches no registry, where registry.k8s.io's
// pause image cannot be pulled: it holds the pod's namespaces until SIGTERM
// or SIGINT, reaping the orphans it inherits meanwhile, as that image's
// pause does. Built static into catga/pause (go run ./cmd/image -services
// pause).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
