package httpmod

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/zap"
)

// Recoverer turns a handler's panic into a 500 problem with the request id
// and no internals, and logs the panic with its stack. http.ErrAbortHandler
// is re-panicked, as net/http expects.
func Recoverer(log *zap.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				log.Error("http handler panicked", zap.String("path", r.URL.Path), zap.String("request_id", middleware.GetReqID(r.Context())),
					zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
				noteLogged(r) // once, here, with the stack; not again in the access log
				WriteError(w, r, fmt.Errorf("panic: %v", v))
			}()
			next.ServeHTTP(w, r)
		})
	}
}
