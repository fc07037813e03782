package httpmod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/catga-go/catga/cqrs"
)

// Decode reads the JSON body of r into a T. A body that is empty, not JSON,
// of the wrong shape or followed by more data is a 400 RequestError; a body
// over the limit is a 413 one. Missing fields are the message's Validate's
// business (422). It reads the whole body first, into a reused buffer,
// then decodes it with json.Unmarshal: the body's size is bounded by the
// server's BodyLimit (HTTP_MAX_BODY_BYTES); a handler served elsewhere
// bounds its own (http.MaxBytesReader).
func Decode[T any](r *http.Request) (T, error) {
	var v T
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	buf.Reset()
	_, err := buf.ReadFrom(r.Body)
	if err == nil {
		if len(bytes.TrimLeft(buf.Bytes(), " \t\r\n")) == 0 {
			return v, &RequestError{Status: http.StatusBadRequest, Code: CodeMalformed, Err: errors.New("request body is empty; want JSON")}
		}
		if err = json.Unmarshal(buf.Bytes(), &v); err == nil {
			return v, nil
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return v, &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Err: fmt.Errorf("request body over the %d byte limit", tooBig.Limit)}
	}
	return v, &RequestError{Status: http.StatusBadRequest, Code: CodeMalformed, Err: fmt.Errorf("malformed JSON body: %w", err)}
}

// bodies are Decode's read buffers; one that grew past maxPooledBody is
// left to the collector, so the pool holds no large body for long.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 64 << 10

func putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		bodies.Put(b)
	}
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ctxWithRequest carries the request id as the correlation id of what the
// handler sends.
func ctxWithRequest(r *http.Request) context.Context {
	ctx := r.Context()
	if id := middleware.GetReqID(ctx); id != "" {
		ctx = cqrs.WithCorrelationID(ctx, id)
	}
	return ctx
}

// Command returns a handler that decodes the body into C, sends it on bus
// and writes respond(result) (the result itself when respond is nil) as JSON
// with status. Errors are problems.
func Command[C, R any](bus *cqrs.Bus, status int, respond func(R) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cmd, err := Decode[C](r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		res, err := cqrs.Send[R](ctxWithRequest(r), bus, cmd)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		var out any = res
		if respond != nil {
			out = respond(res)
		}
		WriteJSON(w, status, out)
	}
}

// Query returns a handler that builds Q from the request with bind (path
// and query parameters, say), asks it on bus and writes the result as JSON
// with 200. A bind error is a problem: give it a cqrs code (CodeInvalid for
// 422) or return a RequestError.
func Query[Q, R any](bus *cqrs.Bus, bind func(*http.Request) (Q, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := bind(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		res, err := cqrs.Ask[R](ctxWithRequest(r), bus, q)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, res)
	}
}
