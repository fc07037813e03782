package httpmod

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/catga-go/catga/cqrs"
)

// Problem is an RFC 9457 problem detail, with the cqrs code and the request id.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// Codes of request problems that are not handler errors.
const (
	CodeMalformed = "malformed"
	CodeTooLarge  = "too_large"
)

// RequestError is a problem with the request itself, before any handler:
// a malformed body (400) or one over the limit (413).
type RequestError struct {
	Status int
	Code   string
	Err    error
}

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// StatusOf returns the HTTP status for err: a RequestError's own (400 or
// 413), 413 for cqrs.ErrPayloadTooLarge, else that of its cqrs code:
// invalid 422, not_found 404, conflict 409, unauthorized 401, unavailable
// 503, timeout 504, and 500 for any other code or none.
func StatusOf(err error) int {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Status
	}
	if errors.Is(err, cqrs.ErrPayloadTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	switch cqrs.CodeOf(err) {
	case cqrs.CodeInvalid:
		return http.StatusUnprocessableEntity
	case cqrs.CodeNotFound:
		return http.StatusNotFound
	case cqrs.CodeConflict:
		return http.StatusConflict
	case cqrs.CodeUnauthorized:
		return http.StatusUnauthorized
	case cqrs.CodeUnavailable:
		return http.StatusServiceUnavailable
	case cqrs.CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// WriteError writes err as a problem. A 500 says only that something went
// wrong and gives the request id to find it in the logs; the error itself is
// logged by the access log, never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status := StatusOf(err)
	code := string(cqrs.CodeOf(err))
	var re *RequestError
	if errors.As(err, &re) {
		code = re.Code
	} else if errors.Is(err, cqrs.ErrPayloadTooLarge) {
		code = CodeTooLarge
	}
	detail := err.Error()
	if status == http.StatusInternalServerError {
		detail = "internal error; quote the request id when reporting it"
		code = string(cqrs.CodeInternal)
	}
	noteError(r, err)
	WriteProblem(w, r, Problem{Status: status, Code: code, Detail: detail})
}

// WriteProblem writes p, filling its type, title, instance and request id.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil {
		p.Instance = r.URL.Path
		p.RequestID = middleware.GetReqID(r.Context())
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
