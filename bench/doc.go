// Package bench holds the side-by-side benchmarks: Catga against the raw
// clients it is built on and the libraries a team would pick instead, each
// comparison run in one process, one run, on the same broker.
//
// Each comparison is a benchmark with one sub-benchmark per contender:
//
//	BenchmarkInProcessSend/catga, .../direct, .../watermill
//	BenchmarkNATSEvents/catga, .../raw, .../watermill
//
// Every contender does the same work per op (for the brokers: one message
// published, consumed, handled and acknowledged, end to end) and reports
// allocations. cmd/ratios turns the output into a table of catga/contender
// ratios; make bench and make bench-quick run both.
package bench
