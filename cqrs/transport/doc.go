// Package transport is the contract between the bus and what carries its
// messages: the one a transport implementer (the memory transport, natsmod,
// redismod) or an outbox store (pgmod, redismod's outbox) writes against. A
// handler author never needs it; package cqrs is theirs.
//
// It holds:
//
//   - the wire form of a message: [Envelope], its [Topic] and [Kind], the
//     header names, [ParseHeaders] and [ValidateName];
//   - the [Transport] interface and what it is given and returns:
//     [Subscription] and [Responder] (what to consume or answer),
//     [Delivery] (one message to settle once), [Reply] and [Failure],
//     [Closer] (the running subscription or responder);
//   - what a transport may add: [BatchPublisher], [PayloadLimiter],
//     [LagReporter], [DeadLetters];
//   - the drain signal of a closing subscription ([WithDrain], [Draining],
//     [ErrDraining]);
//   - the outbox seam: [Outbox], bound to a transaction's context with
//     [WithOutbox], where the bus writes instead of publishing.
//
// The errors a transport returns (cqrs.ErrOutcomeUnknown, cqrs.ErrUnavailable,
// cqrs.ErrNoHandler, cqrs.ErrClosed, cqrs.PayloadTooLargeError) are the ones
// handler authors check, so they live in cqrs. This package imports nothing
// of the project, so cqrs can depend on it; cqrs/cqrstest is the contract
// in code, run by every transport.
package transport
