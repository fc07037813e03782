package inbox_test

import (
	"context"
	"fmt"
	"time"

	"github.com/catga-go/catga/cqrs/inbox"
)

// A key is claimed once; while its run holds it another claim finds it busy,
// and after MarkDone every claim finds it done.
func ExampleMemory() {
	ctx := context.Background()
	var s inbox.Memory
	first, _ := s.Claim(ctx, "billing/01J", time.Minute)
	second, _ := s.Claim(ctx, "billing/01J", time.Minute)
	_ = s.MarkDone(ctx, "billing/01J", time.Hour)
	third, _ := s.Claim(ctx, "billing/01J", time.Minute)
	fmt.Println(first == inbox.StateNew, second == inbox.StateBusy, third == inbox.StateDone)
	// Output: true true true
}
