package cqrs

import "github.com/oklog/ulid/v2"

// NewID returns a new message id: a ULID, unique and sortable by time.
func NewID() string { return ulid.Make().String() }
