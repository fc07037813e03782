package cqrs_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
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
