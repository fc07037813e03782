// Package catgatest is what the tests of catga, and of services built on
// it, share: waiting for a condition instead of sleeping for a guessed
// time.
//
// A test that waits for a handler to run, a probe to change or a process to
// come up polls the condition until it holds or a deadline passes:
//
//	catgatest.Eventually(t, 5*time.Second, "no dead letter", func() bool {
//		list, _ := dls.ListDeadLetters(ctx, "", 0)
//		return len(list) == 1
//	})
//
// Poll is the same wait without the failure, for a test that says more
// than one line when the wait runs out, or for which it is no failure.
//
// The package imports only the standard library, so any package's tests
// may use it.
package catgatest

import (
	"testing"
	"time"
)

// The interval between two calls of the condition: it starts short, for a
// condition about to hold, and doubles up to maxInterval, so a long wait
// does not keep a loaded machine busy.
const (
	firstInterval = time.Millisecond
	maxInterval   = 10 * time.Millisecond
)

// Poll calls cond until it returns true or within has passed, and reports
// whether it returned true. cond is called at once, then after 1 ms, 2 ms,
// 4 ms and then every 10 ms, and once more when within has passed; with
// within of zero or less it is called once. cond runs on the calling
// goroutine, so it may call t.Fatal.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	interval := firstInterval
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, maxInterval)
	}
}

// Eventually polls cond as Poll does and, if it has not returned true
// within, fails the test with t.Fatalf("after <within>: <what>"). what says
// what did not happen, as the failure reads: "no dead letter", "/ready
// still 200".
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("after %v: %s", within, what)
	}
}
