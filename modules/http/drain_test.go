package httpmod_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	httpmod "github.com/catga-go/catga/modules/http"
)

// After Drain, every answer closes its connection, so a client that kept
// one alive reconnects (through its Service, to another pod); the server
// still answers until Stop.
func TestDrain_AnswersCloseTheirConnections(t *testing.T) {
	s := newServer(t, httpmod.Config{Addr: "127.0.0.1:0"}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Get("/x", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func() *http.Response {
		t.Helper()
		resp, err := client.Get("http://" + s.Addr() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.Close || resp.StatusCode != http.StatusOK {
		t.Fatalf("before Drain: status %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	s.Drain()
	if resp := get(); !resp.Close || resp.StatusCode != http.StatusOK {
		t.Errorf("after Drain: status %d, close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
}
