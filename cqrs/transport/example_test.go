package transport_test

import (
	"context"
	"fmt"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// A transport's subscription makes its handlers' context with WithDrain and
// calls drain as Close begins; a behavior that only waits selects on
// Draining and gives the message back with ErrDraining.
func ExampleWithDrain() {
	handlers, drain := transport.WithDrain(context.Background())
	waiting := make(chan error)
	go func() {
		select {
		case <-transport.Draining(handlers):
			waiting <- transport.ErrDraining
		case <-time.After(time.Minute): // another instance's lease
			waiting <- nil
		}
	}()
	drain() // Close begins
	fmt.Println(<-waiting)
	// Output: cqrs: subscription closing; message given back
}
