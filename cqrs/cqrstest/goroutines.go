package cqrstest

import (
	"runtime"
	"strings"
)

// goroutines returns the stacks of all goroutines by id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		// "goroutine 17 [select]:"
		fields := strings.Fields(header)
		if len(fields) >= 2 && fields[0] == "goroutine" {
			out[fields[1]] = g
		}
	}
	return out
}

// newGoroutines returns the stacks of goroutines not in before, ignoring
// this one and those whose stack mentions one of ignore (an in-process
// broker's own goroutines, which outlive a subscription by design).
func newGoroutines(before map[string]string, ignore []string) []string {
	var out []string
	for id, stack := range goroutines() {
		if _, ok := before[id]; ok || strings.Contains(stack, "cqrstest.newGoroutines") || strings.Contains(stack, "testing.tRunner") && strings.Contains(stack, "cqrstest.testConcurrentClose") {
			continue
		}
		skip := false
		for _, s := range ignore {
			if strings.Contains(stack, s) {
				skip = true
				break
			}
		}
		if !skip {
			out = append(out, stack)
		}
	}
	return out
}
