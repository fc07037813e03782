package catgatest_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
)

// Poll waits for a worker's result; here the wait is no failure, so the
// code after it says what happened.
func ExamplePoll() {
	var handled atomic.Int32
	go func() {
		for range 3 {
			handled.Add(1)
		}
	}()
	ok := catgatest.Poll(5*time.Second, func() bool { return handled.Load() == 3 })
	fmt.Println(ok, handled.Load())

	never := catgatest.Poll(20*time.Millisecond, func() bool { return false })
	fmt.Println(never)
	// Output:
	// true 3
	// false
}

// In a test, Eventually fails it when the wait runs out: "after 5s: the
// event was not handled".
func ExampleEventually() {
	test := func(t *testing.T) {
		var handled atomic.Bool
		go func() { handled.Store(true) }() // a handler on another goroutine
		catgatest.Eventually(t, 5*time.Second, "the event was not handled", handled.Load)
	}
	_ = test
}
