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
// set up (the libraries use the API). Metrics are always served on
// /metrics in Prometheus format. What else leaves the process is chosen by
// the standard variables, and made by the Exporters a service links
// (app/otelexport: OTLP over HTTP or gRPC, and console, through
// go.opentelemetry.io/contrib/exporters/autoexport):
//
//   - OTEL_TRACES_EXPORTER: otlp, console or none. Unset means none here
//     (autoexport's own default is otlp): tracing is off, the bus gets no
//     tracer and pays nothing for it.
//   - OTEL_METRICS_EXPORTER: otlp, console, prometheus or none; otlp or
//     console adds that reader beside /metrics.
//   - OTEL_SERVICE_NAME (default CATGA_SERVICE), OTEL_RESOURCE_ATTRIBUTES,
//     OTEL_EXPORTER_OTLP_ENDPOINT and the rest are the SDK's own.
//
// The exporters are a module of their own because they are most of a
// service's binary: OTLP links gRPC and protobuf (its HTTP exporter too,
// through the generated collector packages). A service of catga and
// natsmod without them is 25.6 MB and links 38 modules; with them 37.5 MB
// and 58. Without them, a variable that asks for an exporter fails the
// start, naming the module.
type Telemetry struct {
	Tracer  trace.TracerProvider // nil when tracing is off
	Meter   metric.MeterProvider
	Metrics http.Handler // Prometheus exposition of Meter's metrics

	shutdown []func(context.Context) error
}

// Exporters make what OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER name;
// app/otelexport supplies them. A nil func makes none.
type Exporters struct {
	Spans   func(ctx context.Context) (sdktrace.SpanExporter, error)
	Metrics func(ctx context.Context) (sdkmetric.Reader, error)
}

// noExporters is the error of a variable that asks for an exporter the
// binary does not link.
func noExporters(variable, value string) error {
	return fmt.Errorf("%s=%s: this service links no exporters: add otelexport.Module (github.com/catga-go/catga/app/otelexport) to its fx.New, or set %s=none", variable, value, variable)
}

// NewTelemetry sets the SDK up for c and installs it as the global
// provider (and W3C trace context as the propagator) when tracing is on;
// ex makes the exporters the variables ask for.
func NewTelemetry(ctx context.Context, c Config, ex Exporters) (*Telemetry, error) {
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
		if ex.Spans == nil {
			return nil, noExporters("OTEL_TRACES_EXPORTER", exp)
		}
		se, err := ex.Spans(ctx)
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
		if ex.Metrics == nil {
			return nil, noExporters("OTEL_METRICS_EXPORTER", exp)
		}
		r, err := ex.Metrics(ctx)
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
