package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry is the OpenTelemetry SDK of the process: the only place it is
// set up (the libraries use the API). Exporters come from the standard
// variables through go.opentelemetry.io/contrib/exporters/autoexport:
//
//   - OTEL_TRACES_EXPORTER: otlp, console or none. Unset means none here
//     (autoexport's own default is otlp): tracing is off, the bus gets no
//     tracer and pays nothing for it.
//   - OTEL_METRICS_EXPORTER: otlp, console, prometheus or none. Metrics are
//     always served on /metrics in Prometheus format; otlp or console adds
//     that reader too.
//   - OTEL_SERVICE_NAME (default CATGA_SERVICE), OTEL_RESOURCE_ATTRIBUTES,
//     OTEL_EXPORTER_OTLP_ENDPOINT and the rest are the SDK's own.
type Telemetry struct {
	Tracer  trace.TracerProvider // nil when tracing is off
	Meter   metric.MeterProvider
	Metrics http.Handler // Prometheus exposition of Meter's metrics

	shutdown []func(context.Context) error
}

// NewTelemetry sets the SDK up for c and installs it as the global
// provider (and W3C trace context as the propagator) when tracing is on.
func NewTelemetry(ctx context.Context, c Config) (*Telemetry, error) {
	name := os.Getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = c.Service
	}
	// Ours are schemaless: merged into the SDK's default resource, whose
	// schema is the SDK's semconv version, they take it, where attributes
	// with a schema of their own would conflict and fail the merge.
	// OTEL_RESOURCE_ATTRIBUTES still wins, as the SDK documents.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(name), semconv.ServiceInstanceID(c.Instance)))
	if err == nil {
		res, err = resource.Merge(res, resource.Environment())
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t := &Telemetry{}
	if exp := os.Getenv("OTEL_TRACES_EXPORTER"); exp != "" && exp != "none" {
		se, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: %w", exp, err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(se), sdktrace.WithResource(res))
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		t.Tracer = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(promExp), sdkmetric.WithResource(res)}
	if exp := os.Getenv("OTEL_METRICS_EXPORTER"); exp != "" && exp != "none" && exp != "prometheus" {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_METRICS_EXPORTER=%s: %w", exp, err)
		}
		opts = append(opts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	otel.SetMeterProvider(mp)
	t.Meter = mp
	t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	t.shutdown = append(t.shutdown, mp.Shutdown)
	return t, nil
}

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
