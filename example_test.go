package catga_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

type Greet struct{ Name string }

// ExampleModule composes a service: catga.Module and one command handler.
// A real main calls app.Run(catga.Module, yours.Module) or fx.New(...).Run().
func ExampleModule() {
	var bus *cqrs.Bus
	app := fx.New(
		catga.Module,
		fx.NopLogger,
		fx.Replace(httpmod.Config{Addr: "127.0.0.1:0"}),
		cqrs.Command[Greet, string](func(_ context.Context, g Greet) (string, error) { return "hello, " + g.Name, nil }),
		fx.Populate(&bus),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(ctx)
	msg, err := cqrs.Send[string](ctx, bus, Greet{Name: "Catga"})
	fmt.Println(msg, err)
	// Output: hello, Catga <nil>
}
