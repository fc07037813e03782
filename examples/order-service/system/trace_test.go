package system

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// span is what the console exporter (stdouttrace) writes of a span.
type span struct {
	Name        string
	SpanKind    int
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	service     string
}

func readSpans(t *testing.T, path, service string) []span {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []span
	dec := json.NewDecoder(f)
	for {
		var s span
		err := dec.Decode(&s)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		s.service = service
		out = append(out, s)
	}
}

// One order across the four services over NATS is one trace: spans
// written by each process (the console exporter, to a file per process)
// share its trace id, and each consumer span's parent is the producer span
// in the process that sent the event.
func TestTrace_AcrossProcessesOverNATS(t *testing.T) {
	srv := natstest.Start(t)
	env := []string{"NATS_URL=" + srv.URL(), "CATGA_TRANSPORT=nats", "OTEL_TRACES_EXPORTER=console"}
	dir := t.TempDir()
	procs := map[string]*proc{}
	for _, s := range services {
		procs[s] = startServiceTo(t, s, "1", filepath.Join(dir, s+".spans"), env...)
	}
	base := "http://" + procs["order-service"].addr
	id := postOrder(t, base, `{"customer_id":"c1","items":[{"sku":"A","qty":1,"price_cents":100}]}`)
	t0 := time.Now()
	waitOrders(t, []string{base}, []orderCase{{want: "shipped"}}, []string{id})
	t.Logf("shipped after %v", time.Since(t0))
	for _, s := range services {
		t1 := time.Now()
		procs[s].stop(t) // flushes the exporter
		t.Logf("%s stopped in %v", s, time.Since(t1))
	}
	var all []span
	for _, s := range services {
		all = append(all, readSpans(t, filepath.Join(dir, s+".spans"), s)...)
	}
	var root *span
	for i := range all {
		if all[i].Name == "POST /orders" {
			root = &all[i]
		}
	}
	if root == nil {
		t.Fatalf("no POST /orders span in %d spans", len(all))
	}
	byID := map[string]span{}
	for _, s := range all {
		if s.SpanContext.TraceID == root.SpanContext.TraceID {
			byID[s.SpanContext.SpanID] = s
		}
	}
	// Each hop: the consumer span in the receiving service, its parent the
	// producer span in the sending one.
	// The order saga in order-service sends each command; each service
	// answers with an event.
	hops := []struct{ event, from, to string }{
		{"ReserveStock", "order-service", "inventory-service"},
		{"StockReserved", "inventory-service", "order-service"},
		{"ChargePayment", "order-service", "payment-service"},
		{"PaymentCompleted", "payment-service", "order-service"},
		{"ShipOrder", "order-service", "shipping-service"},
		{"OrderShipped", "shipping-service", "order-service"},
	}
	for _, h := range hops {
		found := false
		for _, s := range byID {
			if s.Name != "process "+h.event || s.service != h.to {
				continue
			}
			p, ok := byID[s.Parent.SpanID]
			if ok && p.Name == "publish "+h.event && p.service == h.from {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s consumer span in %s whose parent is the publish span in %s (trace %s)", h.event, h.to, h.from, root.SpanContext.TraceID)
		}
	}
	t.Logf("one order over 4 processes: %d spans in trace %s", len(byID), root.SpanContext.TraceID)
}
