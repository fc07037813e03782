package httpmod

import (
	"fmt"
	"testing"
)

func TestRequestIDs_NextPadsAsSprintf(t *testing.T) {
	ids := &requestIDs{prefix: "orders-1/ABCDEFGHIJ"}
	for _, n := range []uint64{0, 8, 41, 999, 99_998, 99_999, 999_998, 999_999, 12_345_677} {
		ids.n.Store(n)
		want := fmt.Sprintf("%s-%06d", ids.prefix, n+1)
		if got := ids.next(); got != want {
			t.Errorf("after %d: got %q, want %q", n, got, want)
		}
	}
}

func BenchmarkRequestIDs_Next(b *testing.B) {
	b.ReportAllocs()
	ids := &requestIDs{prefix: "orders-1/ABCDEFGHIJ"}
	for b.Loop() {
		_ = ids.next()
	}
}
