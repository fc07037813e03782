package otelexport_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/app"
	"github.com/catga-go/catga/app/otelexport"
	httpmod "github.com/catga-go/catga/modules/http"
)

func start(t *testing.T, opts ...fx.Option) (*app.Telemetry, error) {
	t.Helper()
	t.Setenv("CATGA_SERVICE", "orders")
	t.Setenv("LOG_LEVEL", "error")
	t.Cleanup(func() { otel.SetTracerProvider(tracenoop.NewTracerProvider()) })
	var tel *app.Telemetry
	a := fx.New(append(opts, catga.Module, fx.NopLogger, fx.Replace(httpmod.Config{Addr: "127.0.0.1:0"}), fx.Populate(&tel))...)
	if err := a.Err(); err != nil {
		return nil, err
	}
	if err := a.Start(context.Background()); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return tel, nil
}

// With the module, OTEL_TRACES_EXPORTER=console gives the service a tracer
// that exports; without it, the same variable fails the start naming the
// module.
func TestModule_LinksTheExportersTheVariablesName(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	tel, err := start(t, otelexport.Module)
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracer == nil {
		t.Fatal("OTEL_TRACES_EXPORTER=console with otelexport.Module: no tracer")
	}
	if _, err := start(t); err == nil || !strings.Contains(err.Error(), "otelexport") {
		t.Fatalf("without otelexport.Module: err = %v, want one naming otelexport", err)
	}
}

func ExampleExporters() {
	tel, err := app.NewTelemetry(context.Background(), app.Config{Service: "orders", Instance: "pod-1"}, otelexport.Exporters())
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(context.Background())
	// Output:
}
