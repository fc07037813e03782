package httpmod

import (
	"github.com/go-chi/chi/v5/middleware"

	"github.com/catga-go/catga/internal/lazyctx"
)

// request is the server's context of one request in flight, made once by
// its first middleware: the request id (where middleware.GetReqID finds
// it), the access log's error note and the handler's deadline (its timer
// made only if something waits on it), in one allocation and one
// Request.WithContext instead of one of each per middleware. AccessLog
// and handlerTimeout use it when they find it and make their own
// otherwise, so each still works alone.
type request struct {
	lazyctx.Ctx
	id   string
	note errNote
}

// Value answers the request id and the error note, and the other keys as
// its context does.
func (c *request) Value(key any) any {
	switch key {
	case any(middleware.RequestIDKey):
		return c.id
	case any(errNoteKey{}):
		return &c.note
	}
	return c.Ctx.Value(key)
}
