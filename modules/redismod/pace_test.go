package redismod

import "testing"

// lookPace: every tick while busy; each idle look doubles the gap, up to
// max; Busy brings it back to every tick.
func TestLookPace_BacksOffWhileIdleAndComesBackWhenBusy(t *testing.T) {
	p := lookPace{max: 4}
	looks := func(ticks int, idle bool) (n int) {
		for range ticks {
			if p.Go() {
				n++
				if idle {
					p.Idle()
				}
			}
		}
		return n
	}
	if n := looks(5, false); n != 5 {
		t.Fatalf("busy: %d looks in 5 ticks, want 5", n)
	}
	// Idle: looks at ticks 1, 3, 6, 11, 16, ...: gaps 1, 2, 4, 4.
	if n := looks(20, true); n != 5 {
		t.Fatalf("idle: %d looks in 20 ticks, want 5 (gaps doubling to 4)", n)
	}
	p.Busy()
	if n := looks(3, false); n != 3 {
		t.Fatalf("after Busy: %d looks in 3 ticks, want 3", n)
	}
}
