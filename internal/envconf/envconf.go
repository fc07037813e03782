// Package envconf reads a module's Config from the environment with
// github.com/caarlos0/env (defaults from `envDefault` tags) and makes every
// error name the variable, not the Go field, so an operator knows what to fix.
//
// A Config's `envDefault` tags are the one place its defaults are written:
// Defaults reads them (T parsed from an empty environment) for the package's
// Default* values and its WithDefaults, and FillZero fills a Config's zero
// fields from them, so a Config built in Go and one read from the
// environment get the same defaults.
package envconf

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Load returns a T read from the environment.
func Load[T any]() (T, error) {
	var v T
	err := Parse(&v)
	return v, err
}

// Parse fills the struct v points to from the environment.
func Parse(v any) error {
	return parse(v, env.Options{})
}

// Defaults returns the T that T's `envDefault` tags describe: T parsed from
// an empty environment, so a field without a default stays zero.
func Defaults[T any]() (T, error) {
	var v T
	err := parse(&v, env.Options{Environment: map[string]string{}})
	return v, err
}

// MustDefaults is Defaults for a package-level variable: a malformed
// `envDefault` tag is a programming error, and it panics at init.
func MustDefaults[T any]() T {
	v, err := Defaults[T]()
	if err != nil {
		panic(fmt.Sprintf("envconf: the envDefault tags of %T: %v", v, err))
	}
	return v
}

// FillZero sets each exported field of the struct dst points to that holds
// its zero value to the same field of def.
func FillZero[T any](dst *T, def T) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(def)
	if d.Kind() != reflect.Struct {
		panic(fmt.Sprintf("envconf.FillZero: %T is not a struct", def))
	}
	for i := 0; i < d.NumField(); i++ {
		if f := d.Field(i); f.CanSet() && f.IsZero() {
			f.Set(s.Field(i))
		}
	}
}

func parse(v any, opts env.Options) error {
	err := env.ParseWithOptions(v, opts)
	if err == nil {
		return nil
	}
	vars := varsOf(reflect.TypeOf(v).Elem())
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := vars[pe.Name]
			if name == "" {
				name = pe.Name
			}
			errs = append(errs, fmt.Errorf("%s: want a %v: %w", name, pe.Type, unwrapAll(pe.Err)))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// unwrapAll strips strconv's "strconv.ParseInt: parsing" preamble, keeping
// the reason.
func unwrapAll(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "strconv.") {
		return errors.New(msg[i+2:])
	}
	return err
}

// varsOf maps each field name of t, nested structs included, to its variable.
func varsOf(t reflect.Type) map[string]string {
	out := map[string]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag, ok := f.Tag.Lookup("env"); ok {
				out[f.Name] = prefix + strings.Split(tag, ",")[0]
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(t, "")
	return out
}
