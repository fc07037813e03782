package cqrs

import (
	"context"
	"time"
)

// detached is a call without its cancellation and deadline, for settling
// and recording what its run did: what context.WithoutCancel(c) is, with
// no allocation (a struct of one pointer fits an interface). Its values are
// the call's; context.Cause of it reads its parent's cause, the one
// difference, and nothing here asks for it.
type detached[M, R any] struct{ c *call[M, R] }

func (d detached[M, R]) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d detached[M, R]) Done() <-chan struct{}       { return nil }
func (d detached[M, R]) Err() error                  { return nil }
func (d detached[M, R]) Value(key any) any           { return d.c.Value(key) }

var _ context.Context = detached[struct{}, struct{}]{}
