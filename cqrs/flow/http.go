package flow

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Handler serves the instances of store as JSON: GET /{flow}/{key} answers
// 200 with the Instance (its state and history) or 404. The paths are its
// own: mount it under a prefix with http.StripPrefix (chi's Mount keeps
// the full path), e.g. r.Mount("/flows", http.StripPrefix("/flows",
// flow.Handler(store))) in an httpmod.Routes; `catga flow <url> <flow>
// <key>` reads it.
func Handler(store Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{flow}/{key}", func(w http.ResponseWriter, r *http.Request) {
		in, err := store.Get(r.Context(), r.PathValue("flow"), r.PathValue("key"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case errors.Is(err, ErrNotFound):
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "no instance " + r.PathValue("key") + " of flow " + r.PathValue("flow")})
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		default:
			_ = json.NewEncoder(w).Encode(in)
		}
	})
	return mux
}
