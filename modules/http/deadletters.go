package httpmod

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// DeadLetterView is a dead letter as the admin routes show it: the payload
// as JSON when it is JSON, base64 otherwise.
type DeadLetterView struct {
	ID            string          `json:"id"`
	Service       string          `json:"service"`
	Instance      string          `json:"instance"`
	Error         string          `json:"error"`
	Code          cqrs.Code       `json:"code"`
	Attempts      int             `json:"attempts"`
	Time          time.Time       `json:"time"`
	MessageID     string          `json:"message_id"`
	Message       string          `json:"message"`
	Kind          string          `json:"kind"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Source        string          `json:"source,omitempty"`
	SentAt        time.Time       `json:"sent_at"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
}

func viewOf(dl transport.DeadLetter) DeadLetterView {
	v := DeadLetterView{
		ID: dl.ID, Service: dl.Service, Instance: dl.Instance, Error: dl.Error, Code: cqrs.Code(dl.Code),
		Attempts: dl.Attempts, Time: dl.Time, MessageID: dl.Envelope.ID, Message: dl.Envelope.Name,
		Kind: dl.Envelope.Kind.String(), CorrelationID: dl.Envelope.CorrelationID, Source: dl.Envelope.Source,
		SentAt: dl.Envelope.Time,
	}
	if json.Valid(dl.Envelope.Payload) {
		v.Payload = dl.Envelope.Payload
	} else {
		v.PayloadBase64 = dl.Envelope.Payload
	}
	return v
}

// maxListLimit bounds one listing of dead letters.
const maxListLimit = 1000

// DeadLetterRoutes returns the admin routes over dls, each requiring
// "Authorization: Bearer <token>":
//
//	GET  /catga/deadletters?service=&limit=   list, oldest first (limit 100, at most 1000)
//	GET  /catga/deadletters/{id}              one
//	POST /catga/deadletters/{id}/replay       deliver it again to its service, 202
//
// They are admin routes: the server mounts them only when HTTP_ADMIN_TOKEN
// is set, and an empty token refuses every request.
func DeadLetterRoutes(dls transport.DeadLetters, token string) Mounter {
	return MountFunc(func(r chi.Router) {
		r.Route("/catga/deadletters", func(r chi.Router) {
			r.Use(bearer(token))
			r.Get("/", func(w http.ResponseWriter, req *http.Request) {
				limit := 100
				if s := req.URL.Query().Get("limit"); s != "" {
					n, err := strconv.Atoi(s)
					if err != nil || n < 1 || n > maxListLimit {
						WriteError(w, req, cqrs.Errorf(cqrs.CodeInvalid, "limit %q: want 1 to %d", s, maxListLimit))
						return
					}
					limit = n
				}
				list, err := dls.ListDeadLetters(req.Context(), req.URL.Query().Get("service"), limit)
				if err != nil {
					WriteError(w, req, err)
					return
				}
				views := make([]DeadLetterView, len(list))
				for i, dl := range list {
					views[i] = viewOf(dl)
				}
				WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": views})
			})
			r.Get("/{id}", func(w http.ResponseWriter, req *http.Request) {
				dl, err := dls.GetDeadLetter(req.Context(), chi.URLParam(req, "id"))
				if err != nil {
					WriteError(w, req, err)
					return
				}
				WriteJSON(w, http.StatusOK, viewOf(dl))
			})
			r.Post("/{id}/replay", func(w http.ResponseWriter, req *http.Request) {
				id := chi.URLParam(req, "id")
				if err := dls.ReplayDeadLetter(req.Context(), id); err != nil {
					WriteError(w, req, err)
					return
				}
				WriteJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "replayed"})
			})
		})
	})
}

// bearer refuses a request without "Authorization: Bearer <token>", in
// constant time, and every request when token is empty.
func bearer(token string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			ok = ok && strings.EqualFold(scheme, "Bearer") // the scheme is case-insensitive (RFC 9110 11.1)
			if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="catga admin"`)
				WriteError(w, r, cqrs.NewError(cqrs.CodeUnauthorized, "admin route: a valid bearer token is required"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
