package cqrs

import (
	"fmt"
	"reflect"
	"unsafe"
)

// Namer is implemented by a message type that chooses its own wire name.
// Without it the wire name is the Go type name ("CreateOrder").
type Namer interface {
	MessageName() string
}

// maxNameLen bounds a wire name; it becomes part of subjects and stream keys.
const maxNameLen = 128

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
	if err := ValidateName(name); err != nil {
		return "", fmt.Errorf("cqrs: message type %v: %w", t, err)
	}
	return name, nil
}

// ValidateName reports whether name can be a wire name: it becomes a NATS
// subject token and part of a Redis key, so it is ASCII letters, digits, '_'
// and '-', starting with a letter, at most 128 bytes.
func ValidateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("wire name %q: want 1 to %d characters", name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter {
			return fmt.Errorf("wire name %q: must start with a letter", name)
		}
		if !letter && !(c >= '0' && c <= '9') && c != '_' && c != '-' {
			return fmt.Errorf("wire name %q: character %q not allowed (letters, digits, '_' and '-')", name, c)
		}
	}
	return nil
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
