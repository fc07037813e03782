// Package system holds the example's system tests: the four services
// built as binaries and run as processes, over memory, NATS and Redis, with
// replicas, broker outages and killed instances (see RELIABILITY.md). It
// has no code of its own; `go test ./system` runs them.
package system
