package app_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/catga-go/catga/app"
)

// spanRecorder is the span exporter OTEL_TRACES_EXPORTER=catga-test names:
// it keeps what it is given, and (unlike tracetest's) keeps it on Shutdown.
type spanRecorder struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (r *spanRecorder) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	return nil
}

func (r *spanRecorder) Shutdown(context.Context) error { return nil }

var recorder = &spanRecorder{}

// toRecorder are exporters whose span exporter is the recorder.
var toRecorder = app.Exporters{Spans: func(context.Context) (sdktrace.SpanExporter, error) { return recorder, nil }}

func useRecorder(t *testing.T) {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "catga-test")
	t.Cleanup(func() { otel.SetTracerProvider(tracenoop.NewTracerProvider()) })
}

// A variable that asks for an exporter the service does not link fails
// the start, naming the module that links them; unset or none is fine.
func TestTelemetry_ExporterNotLinkedNamesOtelexport(t *testing.T) {
	for _, v := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, "otlp")
			_, err := app.NewTelemetry(context.Background(), app.Config{Service: "orders", Instance: "pod-1"}, app.Exporters{})
			if err == nil || !strings.Contains(err.Error(), v+"=otlp") || !strings.Contains(err.Error(), "app/otelexport") {
				t.Fatalf("err = %v, want one naming %s=otlp and app/otelexport", err, v)
			}
		})
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tel, err := app.NewTelemetry(context.Background(), app.Config{Service: "orders", Instance: "pod-1"}, app.Exporters{})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracer != nil {
		t.Error("OTEL_TRACES_EXPORTER=none gave a tracer")
	}
	_ = tel.Shutdown(context.Background())
}

// What leaves the process, spans and metrics, names the service
// (CATGA_SERVICE) and the instance (HOSTNAME), beside the SDK's own
// attributes.
func TestTelemetry_ExportsServiceNameAndInstance(t *testing.T) {
	useRecorder(t)
	tel, err := app.NewTelemetry(context.Background(), app.Config{Service: "orders", Instance: "pod-1"}, toRecorder)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer.Tracer("test").Start(context.Background(), "op")
	span.End()
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	recorder.mu.Lock()
	spans := recorder.spans
	recorder.mu.Unlock()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1", len(spans))
	}
	got := map[attribute.Key]string{}
	for _, kv := range spans[0].Resource().Attributes() {
		got[kv.Key] = kv.Value.Emit()
	}
	for k, want := range map[attribute.Key]string{"service.name": "orders", "service.instance.id": "pod-1", "telemetry.sdk.language": "go"} {
		if got[k] != want {
			t.Errorf("span resource %s = %q, want %q (resource %v)", k, got[k], want, got)
		}
	}

	body, _ := io.ReadAll(rec.Result().Body)
	var info string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "target_info{") {
			info = l
		}
	}
	for _, want := range []string{`service_name="orders"`, `service_instance_id="pod-1"`} {
		if !strings.Contains(info, want) {
			t.Errorf("/metrics target_info %q lacks %s", info, want)
		}
	}
}

// OTEL_SERVICE_NAME, the SDK's own variable, wins over CATGA_SERVICE.
func TestTelemetry_OTELServiceNameWins(t *testing.T) {
	useRecorder(t)
	t.Setenv("OTEL_SERVICE_NAME", "orders-api")
	tel, err := app.NewTelemetry(context.Background(), app.Config{Service: "orders", Instance: "pod-1"}, toRecorder)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if !strings.Contains(string(body), `service_name="orders-api"`) {
		t.Errorf("/metrics lacks service_name=\"orders-api\":\n%s", body)
	}
}
