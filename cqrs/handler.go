package cqrs

import "context"

// CommandHandler handles command C and returns R. Its signature holds no
// `any`: the bus calls it with the command's own type.
type CommandHandler[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// CommandHandlerFunc adapts a function to a CommandHandler.
type CommandHandlerFunc[C, R any] func(ctx context.Context, cmd C) (R, error)

// Handle calls f.
func (f CommandHandlerFunc[C, R]) Handle(ctx context.Context, cmd C) (R, error) { return f(ctx, cmd) }

// QueryHandler handles query Q and returns R. It has the shape of a
// CommandHandler; the kind is chosen at registration.
type QueryHandler[Q, R any] interface {
	Handle(ctx context.Context, q Q) (R, error)
}

// QueryHandlerFunc adapts a function to a QueryHandler.
type QueryHandlerFunc[Q, R any] func(ctx context.Context, q Q) (R, error)

// Handle calls f.
func (f QueryHandlerFunc[Q, R]) Handle(ctx context.Context, q Q) (R, error) { return f(ctx, q) }

// EventHandler handles event E.
type EventHandler[E any] interface {
	Handle(ctx context.Context, event E) error
}

// EventHandlerFunc adapts a function to an EventHandler.
type EventHandlerFunc[E any] func(ctx context.Context, event E) error

// Handle calls f.
func (f EventHandlerFunc[E]) Handle(ctx context.Context, event E) error { return f(ctx, event) }

// Validator is implemented by a message that checks itself. The Validation
// behavior calls it before the handler; an error becomes CodeInvalid.
type Validator interface {
	Validate() error
}
