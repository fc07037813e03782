// Package outbox is the relay of transactional outboxes: a store writes a
// transaction's messages beside its state (pgmod in PostgreSQL, redismod in
// Redis), and a Relay publishes them once committed, in order, with the
// envelope id as the broker's dedup id, retrying until the broker
// acknowledges, then removes them. One relay of an outbox leads at a time
// (Store.Lead), so several replicas can run one each.
//
// Store is what a store implements for the relay; outboxtest is its
// conformance suite. Users do not call this package: pgmod.Module and
// redismod's outbox start the relay on the bus's transport.
package outbox
