package pgtest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// M is what TestMain runs: a *testing.M, or a wrapper of one, such as
// goleak.VerifyTestMain takes.
type M interface{ Run() int }

// shared is the server of the test binary, started by the first Shared.
var shared struct {
	mu   sync.Mutex
	main bool // the tests run through Main
	srv  *Server
}

// Main wraps m so that its Run, once the tests have run, stops the server
// Shared started and removes its directory; a failure to do so fails the
// run. TestMain runs the tests through it:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m).Run()) }
func Main(m M) M { return mainM{m} }

type mainM struct{ m M }

func (w mainM) Run() int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := w.m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
		shared.srv = nil
	}
	return code
}

// Shared returns the server the tests of the binary share, started by the
// first call; Main stops it after the last test. Tests use it for
// databases of their own (NewDatabase), and may run in parallel; Stop,
// Kill, Restart and StartAgain fail the test. Without Main in TestMain,
// Shared fails the test, saying so.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("pgtest: Shared needs the tests to run through pgtest.Main, which stops the server after them: func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }")
	}
	if shared.srv == nil {
		s, err := start(nil)
		if err != nil {
			t.Fatal(err)
		}
		s.shared = true
		shared.srv = s
	}
	return shared.srv
}
