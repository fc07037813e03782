package cqrs

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/catga-go/catga/cqrs/transport"
)

// Namer is implemented by a message type that chooses its own wire name.
// Without it the wire name is the Go type name ("CreateOrder").
type Namer interface {
	MessageName() string
}

// NameOf returns the wire name of message type T, or an error naming T when
// T cannot be a message (a pointer, an interface, an unnamed type, a bad name).
func NameOf[T any]() (string, error) {
	return nameOfType(reflect.TypeFor[T]())
}

func nameOfType(t reflect.Type) (string, error) {
	switch {
	case t == nil || t.Kind() == reflect.Interface:
		return "", fmt.Errorf("cqrs: message type %v: an interface cannot be a message; use a concrete type", t)
	case t.Kind() == reflect.Pointer:
		return "", fmt.Errorf("cqrs: message type %v: use the value type %v, not a pointer", t, t.Elem())
	}
	name := t.Name()
	if n, ok := reflect.Zero(t).Interface().(Namer); ok {
		name = n.MessageName()
	} else if n, ok := reflect.New(t).Interface().(Namer); ok {
		name = n.MessageName()
	}
	if name == "" {
		return "", fmt.Errorf("cqrs: message type %v has no name: declare a named type or add a MessageName method", t)
	}
	if err := transport.ValidateName(name); err != nil {
		return "", fmt.Errorf("cqrs: message type %v: %w", t, err)
	}
	return name, nil
}

// typeKey identifies a Go type without reflection on the hot path: it is the
// type word of an interface holding a value of that type, so the key of a
// static type parameter and of a dynamic value agree.
type typeKey uintptr

func keyOf(v any) typeKey {
	return typeKey((*[2]uintptr)(unsafe.Pointer(&v))[0])
}

func keyFor[T any]() typeKey {
	var zero T
	return keyOf(zero)
}
