// Package otelexport links the OpenTelemetry exporters a service sends its
// traces and metrics with, beside the Prometheus /metrics every service
// serves: OTLP over HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, the
// default) or gRPC, and console, chosen by OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER (see app.Telemetry).
//
//	fx.New(catga.Module, natsmod.Module, otelexport.Module, orders.Module)
//
// It is a module of its own because the exporters are a third of a
// service's binary: OTLP links gRPC and protobuf, even its HTTP exporter,
// through the generated collector packages. A service that exports nothing
// but /metrics leaves it out and links none of it.
//
// Library: go.opentelemetry.io/contrib/exporters/autoexport, which reads
// the standard variables.
package otelexport

import (
	"context"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/fx"

	"github.com/catga-go/catga/app"
)

// Module supplies app.Exporters made by autoexport.
var Module = fx.Module("otelexport", fx.Supply(Exporters()))

// Exporters returns the exporters autoexport makes from the standard
// variables, for app.NewTelemetry without fx.
func Exporters() app.Exporters {
	return app.Exporters{
		Spans:   func(ctx context.Context) (sdktrace.SpanExporter, error) { return autoexport.NewSpanExporter(ctx) },
		Metrics: func(ctx context.Context) (sdkmetric.Reader, error) { return autoexport.NewMetricReader(ctx) },
	}
}
