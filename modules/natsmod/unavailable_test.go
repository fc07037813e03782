package natsmod_test

import (
	"context"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// Reserve is a command no instance of the test serves.
type Reserve struct{ SKU string }

// With the server down, every call over the transport fails at once with
// CodeUnavailable (503): Send, Ask, Publish and Dispatch.
func TestCalls_ServerDownIsUnavailable(t *testing.T) {
	srv := natstest.Start(t)
	tr := connect(t, testConfig(srv), "caller")
	bus, err := cqrs.New(cqrs.Options{Service: "caller", Instance: "i1", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	catgatest.Eventually(t, 3*time.Second, "the transport still reads connected", func() bool { return tr.Check(context.Background()) != nil })
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Send", func(ctx context.Context) error { _, err := cqrs.Send[string](ctx, bus, Reserve{SKU: "a"}); return err }},
		{"Ask", func(ctx context.Context) error { _, err := cqrs.Ask[string](ctx, bus, Tick{N: 1}); return err }},
		{"Publish", func(ctx context.Context) error { return bus.Publish(ctx, Tick{N: 1}) }},
		{"Dispatch", func(ctx context.Context) error { return bus.Dispatch(ctx, Reserve{SKU: "a"}) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			began := time.Now()
			err := c.call(ctx)
			if got := cqrs.CodeOf(err); got != cqrs.CodeUnavailable {
				t.Fatalf("got %s (%v), want %s", got, err, cqrs.CodeUnavailable)
			}
			if took := time.Since(began); took > time.Second {
				t.Errorf("failed after %v, want at once", took)
			}
		})
	}
}
