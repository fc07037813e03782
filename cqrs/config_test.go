package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/envconf"
)

// The envDefault tags are the one source: the Default* values, WithDefaults
// and a Config read from an empty environment agree.
func TestConfig_DefaultsComeFromTheTags(t *testing.T) {
	tags, err := envconf.Defaults[cqrs.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if got := (cqrs.Config{}).WithDefaults(); got != tags {
		t.Fatalf("Config{}.WithDefaults() = %+v, the tags say %+v", got, tags)
	}
	want := cqrs.Config{
		MaxDeliver: 5, MaxPayload: 1 << 20, Concurrency: 32, HandlerTimeout: 30 * time.Second,
		RetryAttempts: 3, RetryInitial: 20 * time.Millisecond, RetryMax: time.Second,
		RedeliveryInitial: time.Second, RedeliveryMax: time.Minute, IdempotencyTTL: 24 * time.Hour,
	}
	if tags != want {
		t.Fatalf("the tags say %+v, want %+v", tags, want)
	}
	if tags.Concurrency != transport.DefaultConcurrency {
		t.Fatalf("CATGA_CONCURRENCY's default is %d, transport.DefaultConcurrency %d", tags.Concurrency, transport.DefaultConcurrency)
	}
}

func TestConfig_WithDefaultsKeepsSetFields(t *testing.T) {
	c := cqrs.Config{Service: "s", MaxDeliver: 1, RetryInitial: time.Millisecond}.WithDefaults()
	if c.Service != "s" || c.MaxDeliver != 1 || c.RetryInitial != time.Millisecond || c.Concurrency != transport.DefaultConcurrency {
		t.Fatalf("got %+v", c)
	}
}

// NewFromConfig builds a working bus without fx: defaults, the default
// behaviors (validation answers CodeInvalid), the transport and handlers.
func TestNewFromConfig_WorksWithoutFx(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	events := make(chan orderPlaced, 1)
	bus, err := cqrs.NewFromConfig(cqrs.Config{Service: "orders", Instance: "i1"}, tr,
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[PlaceOrder, string](func(context.Context, PlaceOrder) (string, error) { return "o-1", nil })),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[orderPlaced](func(_ context.Context, e orderPlaced) error { events <- e; return nil })))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer bus.Stop(ctx)
	if id, err := cqrs.Send[string](ctx, bus, PlaceOrder{Customer: "c"}); err != nil || id != "o-1" {
		t.Fatalf("Send: %q, %v", id, err)
	}
	if _, err := cqrs.Send[string](ctx, bus, PlaceOrder{}); cqrs.CodeOf(err) != cqrs.CodeInvalid {
		t.Fatalf("an invalid command: %v, want CodeInvalid", err)
	}
	if err := bus.Publish(ctx, orderPlaced{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.ID != "o1" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event was not delivered")
	}
}

// A field set out of range fails, named by its variable; a transport
// without a service fails as New does.
func TestNewFromConfig_Validates(t *testing.T) {
	_, err := cqrs.NewFromConfig(cqrs.Config{Service: "s", Instance: "i", Concurrency: -1, RetryMax: -time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "CATGA_CONCURRENCY") || !strings.Contains(err.Error(), "CATGA_RETRY_MAX") {
		t.Fatalf("err %v, want one naming CATGA_CONCURRENCY and CATGA_RETRY_MAX", err)
	}
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	if _, err := cqrs.NewFromConfig(cqrs.Config{}, tr); err == nil {
		t.Fatal("a transport without a service or instance accepted")
	}
}

// The Config's handler timeout and retry reach the delivery pipeline.
func TestNewFromConfig_AppliesTheDeliveryConfig(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	runs := make(chan error, 10)
	bus, err := cqrs.NewFromConfig(cqrs.Config{Service: "svc", Instance: "i1", MaxDeliver: 1,
		HandlerTimeout: 20 * time.Millisecond, RetryAttempts: 2, RetryInitial: time.Millisecond},
		tr, cqrs.HandleEvent(cqrs.EventHandlerFunc[orderPlaced](func(ctx context.Context, _ orderPlaced) error {
			<-ctx.Done()
			runs <- ctx.Err()
			return errors.New("slow")
		})))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer bus.Stop(ctx)
	if err := bus.Publish(ctx, orderPlaced{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runs:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the handler's context ended with %v, want its deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context has no deadline: HandlerTimeout did not apply")
	}
}

// ExampleNewFromConfig builds a bus from its Config in one call, without fx:
// the zero fields take their defaults.
func ExampleNewFromConfig() {
	bus, err := cqrs.NewFromConfig(cqrs.Config{Service: "orders", Instance: "pod-1", Concurrency: 8}, nil,
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[PlaceOrder, string](func(_ context.Context, p PlaceOrder) (string, error) {
			return "o-1 for " + p.Customer, nil
		})))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = bus.Start(ctx)
	defer bus.Stop(ctx)

	id, err := cqrs.Send[string](ctx, bus, PlaceOrder{Customer: "c1"})
	fmt.Println(id, err)
	_, err = cqrs.Send[string](ctx, bus, PlaceOrder{})
	fmt.Println(cqrs.CodeOf(err))
	d := cqrs.Config{}.WithDefaults()
	fmt.Println(d.MaxDeliver, d.RedeliveryInitial)
	// Output:
	// o-1 for c1 <nil>
	// invalid
	// 5 1s
}

// CATGA_SERVICE and HOSTNAME have one reader, app.Config: the bus's Config
// does not read them from the environment.
func TestConfig_ServiceAndInstanceAreNotReadFromTheEnvironment(t *testing.T) {
	t.Setenv("CATGA_SERVICE", "orders")
	t.Setenv("HOSTNAME", "pod-1")
	c, err := envconf.Load[cqrs.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if c.Service != "" || c.Instance != "" {
		t.Errorf("Service %q, Instance %q read from the environment; want both empty (app sets them)", c.Service, c.Instance)
	}
}
