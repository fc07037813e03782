package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/catga-go/catga/cqrs/flow"
	"github.com/catga-go/catga/cqrs/memory"
)

func TestFlow_ShowsStateAndHistoryOrWhyNot(t *testing.T) {
	tr := memory.New(memory.Options{})
	defer tr.Close(context.Background())
	store := flow.NewMemoryStore(tr)
	err := store.Run(context.Background(), "checkout", "o1", func(_ context.Context, in *flow.Instance) error {
		in.State = json.RawMessage(`{"status":"paid"}`)
		in.History = append(in.History, flow.Entry{Step: "OrderPlaced", MessageID: "01A"}, flow.Entry{Step: "PaymentDone", MessageID: "01B", Note: "in time"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(flow.Handler(store))
	defer srv.Close()
	out, err := execute(t, "flow", srv.URL, "checkout", "o1")
	if err != nil {
		t.Fatalf("flow: %v\n%s", err, out)
	}
	for _, want := range []string{"checkout o1: version 1", `state: {"status":"paid"}`, "OrderPlaced", "01B  in time"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := execute(t, "flow", srv.URL, "checkout", "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unknown instance: %v, want the 404", err)
	}
	if _, err := execute(t, "flow", "localhost:8080", "checkout", "o1"); err == nil || !strings.Contains(err.Error(), "localhost:8080") {
		t.Errorf("a URL without a scheme: %v, want an error naming it", err)
	}
}
