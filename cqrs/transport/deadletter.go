package transport

import (
	"context"
	"errors"
	"time"
)

// DeadLetter is a message a group gave up on: the original envelope, why,
// after how many attempts, where and when.
type DeadLetter struct {
	ID       string    `json:"id"`
	Envelope Envelope  `json:"envelope"`
	Error    string    `json:"error"`
	Code     string    `json:"code"` // the error's cqrs.Code
	Attempts int       `json:"attempts"`
	Service  string    `json:"service"`
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
}

// DeadLetters lists, inspects and replays dead letters. Every shipped
// transport implements it; cqrs.Bus.DeadLetters returns it.
type DeadLetters interface {
	// ListDeadLetters returns up to limit dead letters, oldest first, of service
	// (all services when empty).
	ListDeadLetters(ctx context.Context, service string, limit int) ([]DeadLetter, error)
	// GetDeadLetter returns one dead letter, or an error with cqrs.CodeNotFound.
	GetDeadLetter(ctx context.Context, id string) (DeadLetter, error)
	// ReplayDeadLetter delivers the dead letter's envelope again, to its
	// service's group only, and removes it from the list.
	ReplayDeadLetter(ctx context.Context, id string) error
}

// ErrNoDeadLetters: the transport keeps no dead letters (or there is none).
var ErrNoDeadLetters = errors.New("cqrs: transport keeps no dead letters")
