package httpmod

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/catga-go/catga/internal/lazyctx"
)

// handlerTimeout gives the request's context a deadline d, below the
// server's WriteTimeout: what the handler sends on the bus inherits it, so
// its 504 is written while the connection still takes it. A handler that
// returns at the deadline without writing anything answers 504 too.
func handlerTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Its timer is made only if something waits on the context:
			// most handlers answer from memory and never do. The server's
			// request context takes the deadline in place, and ends when the
			// handler returns, as the request's own context does (only the
			// access log, outside, reads it after: its values); any other
			// gets a context of its own.
			at := time.Now().Add(d)
			var ctx context.Context
			if rc, ok := r.Context().(*request); ok && rc.Bound.Set(at) {
				defer rc.Bound.Cancel()
				ctx = rc
			} else {
				lc := lazyctx.WithDeadline(r.Context(), at)
				defer lc.Cancel()
				ctx, r = lc, r.WithContext(lc)
			}
			ww, ok := w.(middleware.WrapResponseWriter) // AccessLog's, outside: one to count both
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			next.ServeHTTP(ww, r)
			if ww.Status() == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				WriteError(ww, r, ctx.Err())
			}
		})
	}
}
