package httpmod

import (
	"fmt"
	"net/http"
)

// BodyLimit refuses a body over max bytes with 413: at once when
// Content-Length says so, and while reading otherwise (Decode reports it).
func BodyLimit(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				WriteError(w, r, &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
					Err: fmt.Errorf("request body is %d bytes, over the %d byte limit", r.ContentLength, max)})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}
