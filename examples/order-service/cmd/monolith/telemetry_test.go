package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga/catgatest"
	httpmod "github.com/catga-go/catga/modules/http"
)

// One POST /orders in the monolith is one trace: the HTTP span, then
// CreateOrder, then for each event its publish and consumer spans, every
// span the child of the one that caused it.
func TestTrace_OneOrderIsOneTrace(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var srv *httpmod.Server
	app := fxtest.New(t, Modules,
		fx.Decorate(func(trace.TracerProvider) trace.TracerProvider { return tp }),
		fx.Populate(&srv))
	app.RequireStart()
	defer app.RequireStop()
	defer http.DefaultClient.CloseIdleConnections()
	base := "http://" + srv.Addr()
	id := createOrder(t, base, `{"customer_id":"c1","items":[{"sku":"A","qty":1,"price_cents":100}]}`)
	waitStatus(t, base, id, "shipped")

	// The saga's chain: each event's step sends the next command.
	want := []string{"POST /orders", "handle CreateOrder",
		"publish OrderCreated", "process OrderCreated", "publish ReserveStock", "process ReserveStock",
		"publish StockReserved", "process StockReserved", "publish ChargePayment", "process ChargePayment",
		"publish PaymentCompleted", "process PaymentCompleted", "publish ShipOrder", "process ShipOrder",
		"publish OrderShipped", "process OrderShipped"}
	// A parent span ends after its children (an event's consumer span after
	// the publish its handler made): wait until every child's parent is
	// exported too, not only one span of each name.
	var spans tracetest.SpanStubs
	catgatest.Poll(5*time.Second, func() bool {
		spans = exp.GetSpans()
		return hasAll(spans, want) && len(orphans(spans)) == 0
	})
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if _, seen := byName[s.Name]; !seen {
			byName[s.Name] = s
		}
	}
	for _, n := range want {
		if _, ok := byName[n]; !ok {
			t.Fatalf("no span %q among %v", n, spanNames(spans))
		}
	}
	root := byName["POST /orders"]
	for _, n := range want {
		if byName[n].SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("%s is in another trace", n)
		}
	}
	for _, o := range orphans(spans) {
		t.Error(o)
	}
	if root.SpanKind != trace.SpanKindServer || root.Parent.IsValid() {
		t.Errorf("the HTTP span is %v with parent %v; want a root server span", root.SpanKind, root.Parent)
	}
}

// A caller's W3C traceparent is continued, not replaced.
func TestTrace_ContinuesTheCallersTrace(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var srv *httpmod.Server
	app := fxtest.New(t, Modules, fx.Decorate(func(trace.TracerProvider) trace.TracerProvider { return tp }), fx.Populate(&srv))
	app.RequireStart()
	defer app.RequireStop()
	defer http.DefaultClient.CloseIdleConnections()
	ctx, caller := tp.Tracer("client").Start(context.Background(), "client call")
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+"/orders", strings.NewReader(`{"customer_id":"c1","items":[{"sku":"A","qty":1,"price_cents":1}]}`))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	caller.End()
	for _, s := range exp.GetSpans() {
		if s.Name == "POST /orders" {
			if s.SpanContext.TraceID() != caller.SpanContext().TraceID() || s.Parent.SpanID() != caller.SpanContext().SpanID() {
				t.Fatalf("the HTTP span did not continue the caller's trace")
			}
			return
		}
	}
	t.Fatalf("no POST /orders span among %v", spanNames(exp.GetSpans()))
}

// /metrics after 10 orders shows the handled counters at their values.
func TestMetrics_AfterTenOrders(t *testing.T) {
	base := start(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, createOrder(t, base, fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"A","qty":1,"price_cents":10}]}`, i)))
	}
	for _, id := range ids {
		waitStatus(t, base, id, "shipped")
	}
	// Each event is handled twice in the monolith (its order's projection
	// and saga); each command once.
	want := map[string]float64{"CreateOrder": 10, "OrderCreated": 20, "ReserveStock": 10, "StockReserved": 20,
		"ChargePayment": 10, "PaymentCompleted": 20, "ShipOrder": 10, "OrderShipped": 20}
	var got map[string]float64
	if !catgatest.Poll(5*time.Second, func() bool {
		got = handledOK(t, base)
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("catga_messages_handled_total ok: %v, want %v", got, want)
	}
	text := metricsText(t, base)
	for _, name := range []string{"catga_handler_duration_seconds_bucket", "catga_messages_in_flight", "http_server_request_duration_seconds"} {
		if !strings.Contains(text, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

// handledOK reads catga_messages_handled_total{outcome="ok"} by message.
func handledOK(t *testing.T, base string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(metricsText(t, base), "\n") {
		if !strings.HasPrefix(line, "catga_messages_handled_total{") || !strings.Contains(line, `outcome="ok"`) {
			continue
		}
		i := strings.Index(line, `message="`)
		name := line[i+len(`message="`):]
		name = name[:strings.Index(name, `"`)]
		v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		out[name] += v
	}
	return out
}

func hasAll(spans tracetest.SpanStubs, want []string) bool {
	have := map[string]bool{}
	for _, s := range spans {
		have[s.Name] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// causes is the span each span of the order's trace is the child of.
var causes = map[string]string{
	"handle CreateOrder":       "POST /orders",
	"publish OrderCreated":     "handle CreateOrder",
	"process OrderCreated":     "publish OrderCreated",
	"publish ReserveStock":     "process OrderCreated",
	"process ReserveStock":     "publish ReserveStock",
	"publish StockReserved":    "process ReserveStock",
	"process StockReserved":    "publish StockReserved",
	"publish ChargePayment":    "process StockReserved",
	"process ChargePayment":    "publish ChargePayment",
	"publish PaymentCompleted": "process ChargePayment",
	"process PaymentCompleted": "publish PaymentCompleted",
	"publish ShipOrder":        "process PaymentCompleted",
	"process ShipOrder":        "publish ShipOrder",
	"publish OrderShipped":     "process ShipOrder",
	"process OrderShipped":     "publish OrderShipped",
}

// orphans says which spans' parent is not a span of the name causes gives
// it. An event with two handlers in the monolith has two consumer spans: a
// child's parent is one of the spans of that name.
func orphans(spans tracetest.SpanStubs) []string {
	ids := map[string]map[trace.SpanID]bool{}
	for _, s := range spans {
		if ids[s.Name] == nil {
			ids[s.Name] = map[trace.SpanID]bool{}
		}
		ids[s.Name][s.SpanContext.SpanID()] = true
	}
	var out []string
	for _, s := range spans {
		if p, ok := causes[s.Name]; ok && !ids[p][s.Parent.SpanID()] {
			out = append(out, fmt.Sprintf("%s's parent is not a %s span", s.Name, p))
		}
	}
	return out
}
