package cqrs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
)

type greet struct{ Name string }

// A constructor whose result is not the handler the helper names fails the
// app with one error naming the helper's call and both types, and nothing
// about fx's annotations.
func TestCommand_ConstructorOfTheWrongHandlerIsNamed(t *testing.T) {
	tests := []struct {
		name string
		opt  fx.Option
		want string
	}{
		{"wrong result", cqrs.Command[greet, int](func() cqrs.CommandHandlerFunc[greet, string] {
			return func(context.Context, greet) (string, error) { return "", nil }
		}), "cqrs.Command[cqrs_test.greet, int]: the constructor returns cqrs.CommandHandlerFunc[cqrs_test.greet, string], which is not a cqrs.CommandHandler[cqrs_test.greet, int]"},
		{"not a func", cqrs.Event[greet]("greet"),
			"cqrs.Event[cqrs_test.greet]: string is neither a cqrs.EventHandler[cqrs_test.greet] nor a constructor of one"},
		{"second result not an error", cqrs.Query[greet, int](func() (cqrs.QueryHandlerFunc[greet, int], int) { return nil, 0 }),
			"cqrs.Query[cqrs_test.greet, int]: the constructor func() (cqrs.QueryHandlerFunc[cqrs_test.greet, int], int) must return a cqrs.QueryHandler[cqrs_test.greet, int], or a cqrs.QueryHandler[cqrs_test.greet, int] and an error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fx.New(fx.NopLogger, tt.opt)
			err := app.Err()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "fx.Annotate") {
				t.Errorf("the error is fx's about annotations: %v", err)
			}
		})
	}
}

type orderPlaced struct{ ID string }

// cqrs.Module runs the bus on its own: with a transport and a service's
// module, and nothing of app, handlers are registered and started.
func TestModule_RegistersAndStartsTheBusWithoutApp(t *testing.T) {
	events := make(chan orderPlaced, 1)
	var bus *cqrs.Bus
	orders := fx.Module("orders",
		cqrs.Command[greet, string](func(_ context.Context, g greet) (string, error) { return "hello " + g.Name, nil }),
		cqrs.Event[orderPlaced](func(_ context.Context, e orderPlaced) error { events <- e; return nil }),
	)
	app := fxtest.New(t, fx.Supply(cqrs.Config{Service: "orders", Instance: "i1"}), cqrs.Module, memory.Module, orders, fx.Populate(&bus))
	app.RequireStart()
	defer app.RequireStop()

	got, err := cqrs.Send[string](context.Background(), bus, greet{Name: "you"})
	if err != nil || got != "hello you" {
		t.Fatalf("Send: %q, %v; want hello you", got, err)
	}
	if err := bus.Publish(context.Background(), orderPlaced{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.ID != "o1" {
			t.Errorf("event %+v, want o1", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not delivered in 10 s")
	}
}

// greeter holds a Sender made in its constructor. An event handler's
// constructor takes it, so fx builds it while it builds the handlers, before
// they are registered.
type greeter struct{ send *cqrs.Sender[greet, string] }

// A Sender made before registration sends to the local handler: with no
// transport, a route it had kept as "not here" would fail ErrNoHandler.
func TestSender_MadeInAConstructorSendsLocally(t *testing.T) {
	var g *greeter
	app := fxtest.New(t, fx.Supply(cqrs.Config{Service: "orders", Instance: "i1"}), cqrs.Module,
		fx.Provide(func(bus *cqrs.Bus) *greeter { return &greeter{send: cqrs.NewSender[greet, string](bus)} }),
		cqrs.Command[greet, string](func(_ context.Context, g greet) (string, error) { return "hello " + g.Name, nil }),
		cqrs.Event[orderPlaced](func(g *greeter) cqrs.EventHandlerFunc[orderPlaced] {
			return func(ctx context.Context, e orderPlaced) error {
				_, err := g.send.Send(ctx, greet{Name: e.ID})
				return err
			}
		}),
		fx.Populate(&g),
	)
	app.RequireStart()
	defer app.RequireStop()
	for range 2 { // the first Send after Start keeps the route; the second uses it
		got, err := g.send.Send(context.Background(), greet{Name: "you"})
		if err != nil || got != "hello you" {
			t.Fatalf("Send: %q, %v; want hello you from the local handler", got, err)
		}
	}
}

// shop's methods are handlers, registered with the Method helpers.
type shop struct{ events chan orderPlaced }

func (s *shop) Place(_ context.Context, g greet) (string, error) { return "placed " + g.Name, nil }

type count struct{}

func (s *shop) Count(context.Context, count) (int, error) { return 7, nil }

func (s *shop) Placed(_ context.Context, e orderPlaced) error { s.events <- e; return nil }

// A method of a provided type is a handler in one line, named after the
// method; and Use takes a constructor of a behavior, whose dependencies fx
// provides, keeping the order of its arguments.
func TestMethods_AndUseWithAConstructor(t *testing.T) {
	type trail struct{ names []string }
	tr := &trail{}
	var order []string
	s := &shop{events: make(chan orderPlaced, 1)}
	var bus *cqrs.Bus
	app := fxtest.New(t, fx.Supply(cqrs.Config{Service: "shop", Instance: "i1"}, s, tr), cqrs.Module, memory.Module,
		cqrs.CommandMethod((*shop).Place),
		cqrs.QueryMethod((*shop).Count),
		cqrs.EventMethod((*shop).Placed),
		cqrs.Use(
			func(next cqrs.Step) cqrs.Step {
				return cqrs.StepFunc(func(ctx context.Context, m cqrs.Message) error {
					order = append(order, "value")
					return next.Handle(ctx, m)
				})
			},
			func(tr *trail) cqrs.Behavior {
				return func(next cqrs.Step) cqrs.Step {
					return cqrs.StepFunc(func(ctx context.Context, m cqrs.Message) error {
						order = append(order, "constructor")
						tr.names = append(tr.names, m.HandlerName())
						return next.Handle(ctx, m)
					})
				}
			}),
		fx.Populate(&bus),
	)
	app.RequireStart()
	defer app.RequireStop()

	if got, err := cqrs.Send[string](context.Background(), bus, greet{Name: "a"}); err != nil || got != "placed a" {
		t.Fatalf("Send: %q, %v", got, err)
	}
	if got, err := cqrs.Ask[int](context.Background(), bus, count{}); err != nil || got != 7 {
		t.Fatalf("Ask: %d, %v", got, err)
	}
	if err := bus.Publish(context.Background(), orderPlaced{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.events:
	case <-time.After(10 * time.Second):
		t.Fatal("the event method did not run in 10 s")
	}
	if len(order) < 2 || order[0] != "value" || order[1] != "constructor" {
		t.Errorf("behaviors ran in order %v, want value then constructor", order)
	}
	if len(tr.names) == 0 || tr.names[0] != "cqrs_test.(*shop).Place" {
		t.Errorf("handler names %v, want cqrs_test.(*shop).Place first", tr.names)
	}
}

// A Use argument that is neither a behavior nor its constructor is named.
func TestUse_RefusesWhatIsNotABehavior(t *testing.T) {
	app := fx.New(fx.NopLogger, cqrs.Use(func() string { return "" }))
	want := "cqrs.Use: argument 1: the constructor func() string must return a cqrs.Behavior, or a cqrs.Behavior and an error"
	if err := app.Err(); err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}
