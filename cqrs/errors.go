package cqrs

import (
	"context"
	"errors"
	"fmt"

	"github.com/catga-go/catga/cqrs/transport"
)

// Code is an error's stable class. It survives the wire; the message text may
// too, a stack trace never does. HTTP maps each code to a status.
type Code string

// The stable codes. Each maps to one HTTP status (httpmod.StatusOf).
const (
	CodeInvalid      Code = "invalid"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeUnauthorized Code = "unauthorized"
	CodeUnavailable  Code = "unavailable"
	CodeTimeout      Code = "timeout"
	CodeInternal     Code = "internal"
)

// ParseCode returns the Code spelled s, or CodeInternal for an unknown spelling
// (a newer peer's code must not break an older reader).
func ParseCode(s string) Code {
	switch c := Code(s); c {
	case CodeInvalid, CodeNotFound, CodeConflict, CodeUnauthorized, CodeUnavailable, CodeTimeout, CodeInternal:
		return c
	}
	return CodeInternal
}

// Sentinels callers match with errors.Is.
var (
	// ErrNoHandler: no handler for a command or query, in process or remote.
	ErrNoHandler = errors.New("cqrs: no handler")
	// ErrResultType: Send or Ask asked for a result type the handler does not return.
	ErrResultType = errors.New("cqrs: result type mismatch")
	// ErrPayloadTooLarge: an encoded message is over the payload limit.
	ErrPayloadTooLarge = errors.New("cqrs: payload too large")
	// ErrClosed: the bus or transport is stopped.
	ErrClosed = errors.New("cqrs: closed")
	// ErrUnavailable: the broker could not be reached, and nothing was sent.
	// A publish that fails with it is a definite failure: the message will
	// not be stored later, so a caller may compensate (undo what it did).
	ErrUnavailable = errors.New("cqrs: broker unavailable")
	// ErrOutcomeUnknown: the message was handed to the broker but its
	// acknowledgement did not come back (a timeout, a connection lost after
	// the write). It may be stored. A caller must not compensate; it may
	// publish the same envelope again (the same message id), which the
	// broker's dedup window (NATS) or the receiver's inbox makes harmless.
	ErrOutcomeUnknown = errors.New("cqrs: outcome unknown")
	// ErrNotScheduled: Cancel found no scheduled message with that id
	// waiting: it was never scheduled, was cancelled, or was delivered.
	ErrNotScheduled = errors.New("cqrs: not scheduled")
	// ErrSchedulingUnsupported: the bus's transport cannot hold a message
	// for later (it does not implement transport.Scheduler), or the bus
	// has no transport.
	ErrSchedulingUnsupported = errors.New("cqrs: scheduling not supported")
)

// Error is an error with a stable code. Handlers return it through [Errorf]
// or [NewError]; a remote handler's Error arrives with its code and message.
type Error struct {
	Code    Code
	Message string
	Err     error // the cause; not sent over the wire
}

// NewError returns an *Error with code and message.
func NewError(code Code, message string) error {
	return &Error{Code: code, Message: message}
}

// Errorf returns an *Error with code and a formatted message; %w wraps a cause.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		if e.Err != nil {
			return e.Err.Error()
		}
		return string(e.Code)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of err: the code of the first *Error in its chain,
// CodeTimeout for a deadline or an unknown outcome, CodeUnavailable for a
// missing handler, an unreachable broker, a cancellation or a closed bus, CodeInvalid for an oversized payload, and
// CodeInternal otherwise. A nil error has no code.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	switch {
	case errors.As(err, &e) && e.Code != "":
		return e.Code
	case errors.Is(err, ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, ErrNoHandler), errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		return CodeUnavailable
	case errors.Is(err, ErrPayloadTooLarge):
		return CodeInvalid
	}
	return CodeInternal
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: a delivery that fails with it
// goes to the dead-letter queue at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err is marked [Permanent] or has CodeInvalid: a
// message that fails validation fails again, however often it is retried.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || CodeOf(err) == CodeInvalid
}

// PayloadTooLargeError is returned when an encoded message is over the limit.
type PayloadTooLargeError struct {
	Name  string
	Size  int
	Limit int
}

func (e *PayloadTooLargeError) Error() string {
	return fmt.Sprintf("cqrs: %s payload is %d bytes, over the %d byte limit", e.Name, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrPayloadTooLarge) true.
func (e *PayloadTooLargeError) Is(target error) bool { return target == ErrPayloadTooLarge }

// PanicError is what the Recover behavior makes of a handler's panic.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("cqrs: handler panicked: %v", e.Value) }

// replyError returns the reply for a request whose handler failed with err:
// its code and message cross the wire, its cause does not.
func replyError(err error) *transport.Reply {
	return transport.Failed(string(CodeOf(err)), err.Error())
}
