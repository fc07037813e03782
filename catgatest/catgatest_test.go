package catgatest_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
)

func TestPoll_TrueAtOnceCallsCondOnce(t *testing.T) {
	calls := 0
	if !catgatest.Poll(time.Second, func() bool { calls++; return true }) {
		t.Fatal("Poll = false for a condition that holds")
	}
	if calls != 1 {
		t.Fatalf("cond called %d times, want 1", calls)
	}
}

func TestPoll_WaitsUntilTheConditionHolds(t *testing.T) {
	var done atomic.Bool
	time.AfterFunc(30*time.Millisecond, func() { done.Store(true) })
	start := time.Now()
	if !catgatest.Poll(5*time.Second, done.Load) {
		t.Fatal("Poll = false, want true once the condition holds")
	}
	if took := time.Since(start); took < 30*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Poll returned after %v, want soon after 30ms", took)
	}
}

// A condition that never holds is called until the deadline, once more
// when it has passed, and Poll reports false.
func TestPoll_TimeoutIsFalse(t *testing.T) {
	const within = 100 * time.Millisecond
	var calls int
	var last time.Time
	start := time.Now()
	if catgatest.Poll(within, func() bool { calls++; last = time.Now(); return false }) {
		t.Fatal("Poll = true for a condition that never holds")
	}
	if took := time.Since(start); took < within || took > within+2*time.Second {
		t.Fatalf("Poll gave up after %v, want at %v", took, within)
	}
	if last.Sub(start) < within {
		t.Fatalf("the last call was %v in, want at or after the deadline %v", last.Sub(start), within)
	}
	// 1, 2, 4, 8, then 10 ms apart: about a dozen calls in 100 ms.
	if calls < 3 || calls > 60 {
		t.Fatalf("cond called %d times in %v, want polling every few ms", calls, within)
	}
}

func TestPoll_NoTimeCallsCondOnce(t *testing.T) {
	for _, within := range []time.Duration{0, -time.Second} {
		calls := 0
		if catgatest.Poll(within, func() bool { calls++; return false }) || calls != 1 {
			t.Fatalf("Poll(%v) called cond %d times, want once, and false", within, calls)
		}
	}
}

// fakeTB records what a test would report. Its Fatalf ends the goroutine,
// as testing.T's does.
type fakeTB struct {
	testing.TB // nil: a method not overridden panics
	helper     atomic.Int32
	failed     chan string
}

func newFakeTB() *fakeTB { return &fakeTB{failed: make(chan string, 1)} }

func (f *fakeTB) Helper() { f.helper.Add(1) }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn on a goroutine of its own, as the testing package runs a
// test, and returns the failure message, or "" if fn returned.
func (f *fakeTB) run(fn func()) string {
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		fn()
	}()
	<-returned
	select {
	case msg := <-f.failed:
		return msg
	default:
		return ""
	}
}

func TestEventually_TimeoutFailsTheTest(t *testing.T) {
	tb := newFakeTB()
	after := false
	msg := tb.run(func() {
		catgatest.Eventually(tb, 50*time.Millisecond, "no tick", func() bool { return false })
		after = true
	})
	if msg != "after 50ms: no tick" {
		t.Fatalf("Fatalf(%q), want %q", msg, "after 50ms: no tick")
	}
	if after {
		t.Fatal("the test went on after Eventually failed it")
	}
	if tb.helper.Load() == 0 {
		t.Fatal("Eventually did not call t.Helper")
	}
}

func TestEventually_ConditionHoldsNoFailure(t *testing.T) {
	tb := newFakeTB()
	n := 0
	if msg := tb.run(func() {
		catgatest.Eventually(tb, 5*time.Second, "no third call", func() bool { n++; return n == 3 })
	}); msg != "" {
		t.Fatalf("Eventually failed the test: %s", msg)
	}
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

// With a real testing.T: a wait that holds passes.
func TestEventually_RealT(t *testing.T) {
	var done atomic.Bool
	time.AfterFunc(10*time.Millisecond, func() { done.Store(true) })
	catgatest.Eventually(t, 5*time.Second, "the timer did not fire", done.Load)
}
