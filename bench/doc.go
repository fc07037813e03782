// Package bench holds the side-by-side benchmarks: Catga against the raw
// clients it is built on and the libraries a team would pick instead, each
// comparison run in one process, one run, on the same broker.
//
// Each comparison is a benchmark with one sub-benchmark per contender:
//
//	BenchmarkInProcessSend/catga, .../direct, .../watermill
//	BenchmarkNATSEvents/catga, .../raw, .../watermill
//	BenchmarkOutbox/catga, .../direct, .../watermill-sql
//
// Every contender does the same work per op (for the brokers: one message
// published, consumed, handled and acknowledged, end to end) and reports
// allocations. cmd/ratios turns the output into a table of catga/contender
// ratios; make bench and make bench-quick run both.
//
// The outbox comparisons run on a PostgreSQL server of their own
// (pgtest.Start) and an embedded nats-server, a database and streams per
// run: Outbox (one op: a transaction inserting a row and publishing an
// event, relayed to JetStream and consumed; ops/s), OutboxRelay (the relay
// or forwarder alone emptying b.N committed rows; rows/s) and
// OutboxLatency (commit to receipt at a steady OutboxRate transactions per
// second; p50-ms and p99-ms, the table compares p99).
package bench
