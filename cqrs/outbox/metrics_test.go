package outbox_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/cqrs/transport"
)

func TestRelay_MetricsCountPublishedRetriesAndDepth(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	o := &memOutbox{}
	rec := &outboxtest.Recorder{}
	fails := 2
	rec.FailWith(func(transport.Outgoing) error {
		if fails > 0 {
			fails--
			return cqrs.ErrUnavailable
		}
		return nil
	})
	bus, err := cqrs.New(cqrs.Options{Service: "svc", Instance: "i1", Transport: rec})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 3 {
		if err := o.tx(context.Background(), "", func(ctx context.Context) error { return bus.Publish(ctx, outboxtest.Numbered{N: n}) }); err != nil {
			t.Fatal(err)
		}
	}
	values := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, p := range d.DataPoints {
						out[m.Name] += p.Value
					}
				case metricdata.Gauge[int64]:
					for _, p := range d.DataPoints {
						out[m.Name] = p.Value
					}
				case metricdata.Histogram[float64]:
					for _, p := range d.DataPoints {
						out[m.Name] += int64(p.Count)
					}
				}
			}
		}
		return out
	}
	r, err := outbox.New(o, rec, outbox.Config{Poll: 10 * time.Millisecond, RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond}, nil, mp)
	if err != nil {
		t.Fatal(err)
	}
	if v := values(); v["catga.outbox.depth"] != 3 {
		t.Fatalf("depth %d before relaying, want 3 (%v)", v["catga.outbox.depth"], v)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.Got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	v := values()
	if v["catga.outbox.published"] != 3 || v["catga.outbox.publish_retries"] < 2 || v["catga.outbox.depth"] != 0 || v["catga.outbox.relay_lag"] != 3 {
		t.Fatalf("metrics %v: want 3 published, at least 2 retries, depth 0, 3 lag samples", v)
	}
}
