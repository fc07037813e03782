package outbox

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
)

const instrumentation = "github.com/catga-go/catga/cqrs/outbox"

// relayMetrics are the relay's instruments; a nil *relayMetrics records
// nothing.
type relayMetrics struct {
	publishedN metric.Int64Counter
	retries    metric.Int64Counter
	dead       metric.Int64Counter
	lag        metric.Float64Histogram
	depth      metric.Int64ObservableGauge
}

func newRelayMetrics(mp metric.MeterProvider, store Store) (*relayMetrics, error) {
	m := mp.Meter(instrumentation)
	var r relayMetrics
	var err error
	if r.publishedN, err = m.Int64Counter("catga.outbox.published", metric.WithDescription("Outbox records published and removed"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if r.retries, err = m.Int64Counter("catga.outbox.publish_retries", metric.WithDescription("Outbox publishes that failed and will be retried"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if r.dead, err = m.Int64Counter("catga.outbox.dead_lettered", metric.WithDescription("Outbox records the broker refused for good"), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if r.lag, err = m.Float64Histogram("catga.outbox.relay_lag", metric.WithDescription("Time from a message's stamp (in its transaction) to the broker's ack"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)); err != nil {
		return nil, err
	}
	if r.depth, err = m.Int64ObservableGauge("catga.outbox.depth", metric.WithDescription("Outbox records waiting to be published"), metric.WithUnit("{message}"),
		metric.WithInt64Callback(func(ctx context.Context, o metric.Int64Observer) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if n, err := store.Depth(ctx); err == nil {
				o.Observe(n)
			}
			return nil // a scrape during an outage shows no depth, not an error page
		})); err != nil {
		return nil, err
	}
	return &r, nil
}

func (m *relayMetrics) published(ctx context.Context, lag time.Duration) {
	if m == nil {
		return
	}
	m.publishedN.Add(ctx, 1)
	m.lag.Record(ctx, lag.Seconds())
}

func (m *relayMetrics) retried(ctx context.Context, n int) {
	if m != nil {
		m.retries.Add(ctx, int64(n))
	}
}

func (m *relayMetrics) buried(ctx context.Context) {
	if m != nil {
		m.dead.Add(ctx, 1)
	}
}
