// Package fxreg turns a value or a constructor into one member of an fx
// value group, so library helpers (cqrs.Command, health.Check,
// httpmod.Routes) take what users naturally write and users never type a
// group tag.
package fxreg

import (
	"fmt"
	"reflect"
	"regexp"
	"sync/atomic"

	"go.uber.org/fx"
)

var seq atomic.Uint64

// Group adds convert(x) to group, where x is the I that v is or that the
// constructor v builds. A constructor's parameters come from the container
// and it may also return an error. A constructor whose result is not an I
// fails the app with one error that starts with what (the helper's call, as
// "cqrs.Command[main.Greet, int]") and names both types; fx's own error for
// it is a page about annotations.
func Group[I, T any](what, group string, v any, convert func(I) T) fx.Option {
	groupTag := fx.ResultTags(`group:"` + group + `"`)
	if x, ok := v.(I); ok {
		return fx.Provide(fx.Annotate(func() T { return convert(x) }, groupTag))
	}
	if err := checkConstructor[I](what, v); err != nil {
		return fx.Error(err)
	}
	name := fmt.Sprintf(`name:"catga.fxreg.%d"`, seq.Add(1))
	return fx.Options(
		fx.Provide(fx.Annotate(v, fx.As(new(I)), fx.ResultTags(name))),
		fx.Provide(fx.Annotate(func(x I) T { return convert(x) }, fx.ParamTags(name), groupTag)),
	)
}

var errorType = reflect.TypeFor[error]()

// checkConstructor reports why v is not a constructor of an I: a func
// returning an I, or an I and an error.
func checkConstructor[I any](what string, v any) error {
	want := reflect.TypeFor[I]()
	ft := reflect.TypeOf(v)
	if v == nil || ft.Kind() != reflect.Func {
		return fmt.Errorf("%s: %s is neither a %s nor a constructor of one", what, TypeName(ft), TypeName(want))
	}
	if ft.NumOut() == 0 || ft.NumOut() > 2 || (ft.NumOut() == 2 && ft.Out(1) != errorType) {
		return fmt.Errorf("%s: the constructor %s must return a %s, or a %s and an error", what, TypeName(ft), TypeName(want), TypeName(want))
	}
	if out := ft.Out(0); !out.AssignableTo(want) {
		return fmt.Errorf("%s: the constructor returns %s, which is not a %s", what, TypeName(out), TypeName(want))
	}
	return nil
}

var (
	importPath = regexp.MustCompile(`(?:[\w.~-]+/)+`)
	comma      = regexp.MustCompile(`,\s*`)
)

// TypeName is t as Go source spells it in the package that uses it: each
// package by its name, not its import path, and type arguments separated
// by ", " (reflect writes "cqrs.Command[github.com/x/orders.Greet,int]").
func TypeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return comma.ReplaceAllString(importPath.ReplaceAllString(t.String(), ""), ", ")
}
