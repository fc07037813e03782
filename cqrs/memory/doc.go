// Package memory is the in-process transport, the default of catga.Module.
//
// It behaves as a broker would, so a service that works on it works on NATS
// or Redis: every message crosses the envelope and the codec; each consumer
// group gets every event once and, within a group, one instance handles it;
// failed deliveries come back after their delay with the attempt counted;
// dead letters are kept, listed and replayed; requests go to one instance of
// the owning group and fail at once with cqrs.ErrNoHandler when none serves.
//
// A Broker is the shared state; each Transport is one connection to it, so
// tests can run several services and instances in one process. Groups are
// durable for the broker's life: messages published while a group has no
// running instance wait for it. A group starts with the messages published
// after it first subscribed (JetStream's DeliverNew, Redis's "$").
//
// Resources are bounded: each group queue holds Options.QueueSize messages
// (a publisher waits for room until its context ends) and the dead-letter
// list holds Options.MaxDeadLetters (the oldest are dropped and counted).
// Scheduled messages (Bus.PublishAt) wait in a timer heap, one goroutine
// on the earliest, and go to the groups subscribed when they are due,
// late by about a millisecond. Nothing survives the process.
package memory
