// Package fxreg turns a value or a constructor into one member of an fx
// value group, so library helpers (cqrs.Command, health.Check,
// httpmod.Routes) take what users naturally write and users never type a
// group tag.
package fxreg

import (
	"fmt"
	"reflect"
	"sync/atomic"

	"go.uber.org/fx"
)

var seq atomic.Uint64

// Group adds convert(x) to group, where x is the I that v is or that the
// constructor v builds. A constructor's parameters come from the container
// and it may also return an error; fx checks at startup that its result
// implements I and names the constructor when it does not.
func Group[I, T any](group string, v any, convert func(I) T) fx.Option {
	groupTag := fx.ResultTags(`group:"` + group + `"`)
	if x, ok := v.(I); ok {
		return fx.Provide(fx.Annotate(func() T { return convert(x) }, groupTag))
	}
	if v == nil || reflect.TypeOf(v).Kind() != reflect.Func {
		return fx.Error(fmt.Errorf("%v is neither a %v nor a constructor of one", reflect.TypeOf(v), reflect.TypeFor[I]()))
	}
	name := fmt.Sprintf(`name:"catga.fxreg.%d"`, seq.Add(1))
	return fx.Options(
		fx.Provide(fx.Annotate(v, fx.As(new(I)), fx.ResultTags(name))),
		fx.Provide(fx.Annotate(func(x I) T { return convert(x) }, fx.ParamTags(name), groupTag)),
	)
}
