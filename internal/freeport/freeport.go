// Package freeport finds a free TCP port on 127.0.0.1 for a server a test
// starts (natstest, redistest).
package freeport

import (
	"net"
	"testing"
)

// Get returns a port free now, or fails t with who's name (the helper
// package that asked).
func Get(t testing.TB, who string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%s: no free port: %v", who, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
