package httpmod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/catga-go/catga/cqrs"
)

// Decode reads the JSON body of r into a T. A body that is empty, not JSON,
// of the wrong shape or followed by more data is a 400 RequestError; a body
// over the limit is a 413 one. Missing fields are the message's Validate's
// business (422).
func Decode[T any](r *http.Request) (T, error) {
	var v T
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(&v)
	if err == nil {
		// Only whitespace may follow the value; reading it may also hit
		// the body limit, which must stay a 413.
		if _, terr := dec.Token(); terr != io.EOF {
			err = terr
			if err == nil {
				err = errors.New("more data after the JSON value")
			}
		}
	}
	if err == nil {
		return v, nil
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return v, &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Err: fmt.Errorf("request body over the %d byte limit", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return v, &RequestError{Status: http.StatusBadRequest, Code: CodeMalformed, Err: errors.New("request body is empty; want JSON")}
	}
	return v, &RequestError{Status: http.StatusBadRequest, Code: CodeMalformed, Err: fmt.Errorf("malformed JSON body: %w", err)}
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
