package main

import (
	"strings"
	"testing"
)

func TestRun_TableOfMedianRatios(t *testing.T) {
	in := `goos: linux
BenchmarkInProcessSend/catga-2   	 1000	        12.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkInProcessSend/catga-2   	 1000	        10.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkInProcessSend/catga-2   	 1000	        99.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkInProcessSend/direct-2  	 1000	         2.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkNATSEvents/catga-2      	 1000	     40000 ns/op	   10000 B/op	     114 allocs/op
BenchmarkNATSEvents/raw-2        	 1000	     32000 ns/op	    5000 B/op	      77 allocs/op
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| InProcessSend | 12.0 | direct | 2.00 | 6.00 | 6.00-6.00 | 0 / 0 | within 8x of a direct call, 0 allocs | yes |",
		"| NATSEvents | 40000 | raw | 32000 | 1.25 | 1.25-1.25 | 114 / 77 | at least 0.95x raw nats.go jetstream throughput | **no** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, got)
		}
	}
}

// A comparison judged by a metric of its own (a latency percentile at a
// fixed rate) is compared on that metric's median, shown with its unit.
func TestRun_MetricComparisonUsesItsMetric(t *testing.T) {
	in := `BenchmarkOutboxLatency/catga-2           1200   999761 ns/op   0.36 p50-ms   4.0 p99-ms   17208 B/op   258 allocs/op
BenchmarkOutboxLatency/catga-2           1200   999828 ns/op   0.37 p50-ms   3.0 p99-ms   17246 B/op   258 allocs/op
BenchmarkOutboxLatency/watermill-sql-2   1100  1002634 ns/op   4.2 p50-ms   12.0 p99-ms   16705 B/op   234 allocs/op
BenchmarkOutbox/catga-2                  8000   150000 ns/op   6667 ops/s   14000 B/op   216 allocs/op
BenchmarkOutbox/watermill-sql-2          8000   300000 ns/op   3333 ops/s   15000 B/op   214 allocs/op
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| OutboxLatency | 3.50 p99-ms | watermill-sql | 12.0 p99-ms | 0.29 | 0.33-0.33 | 258 / 234 |  |  |",
		"| Outbox | 150000 | watermill-sql | 300000 | 0.50 | 0.50-0.50 | 216 / 214 | at least 2x Watermill's outbox throughput | yes |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, got)
		}
	}
}

// The spread is of the per-run ratios, and a target is met only when every
// run meets it: not met when none does, undecided when runs fall on both
// sides.
func TestRun_SpreadDecidesTheVerdict(t *testing.T) {
	in := `BenchmarkNATSEvents/catga-2   1000   40000 ns/op   114 allocs/op
BenchmarkNATSEvents/raw-2     1000   40000 ns/op   77 allocs/op
BenchmarkNATSEvents/catga-2   1000   46000 ns/op   114 allocs/op
BenchmarkNATSEvents/raw-2     1000   40000 ns/op   77 allocs/op
BenchmarkRedisEvents/catga-2  1000   20000 ns/op   33 allocs/op
BenchmarkRedisEvents/raw-2    1000   21000 ns/op   24 allocs/op
BenchmarkRedisEvents/catga-2  1000   21000 ns/op   33 allocs/op
BenchmarkRedisEvents/raw-2    1000   22000 ns/op   24 allocs/op
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| NATSEvents | 43000 | raw | 40000 | 1.07 | 1.00-1.15 | 114 / 77 | at least 0.95x raw nats.go jetstream throughput | undecided |",
		"| RedisEvents | 20500 | raw | 21500 | 0.95 | 0.95-0.95 | 33 / 24 | at least 0.95x raw go-redis throughput | yes |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, got)
		}
	}
}
