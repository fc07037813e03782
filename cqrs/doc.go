// Package cqrs is what a handler author writes against: messages, typed
// handlers, the bus that dispatches them, and the behaviors around every
// dispatch and delivery.
//
// A message is a plain struct; its wire name is its Go type name unless it
// has a MessageName method. A handler is a typed interface or func:
//
//	type PlaceOrder struct{ Customer string }
//	type OrderPlaced struct{ ID string }
//
//	cqrs.Command[PlaceOrder, string](NewPlaceOrderHandler) // fx: one option per handler
//	cqrs.Event[OrderPlaced](func(ctx context.Context, e OrderPlaced) error { ... })
//	cqrs.EventMethod((*Projector).OrderPlaced)             // a method of a type fx provides
//
// and dispatch is typed, with no casts:
//
//	id, err := cqrs.Send[string](ctx, bus, PlaceOrder{Customer: "c1"}) // one handler answers
//	err = bus.Publish(ctx, OrderPlaced{ID: id})                        // every subscribing service
//	err = bus.Dispatch(ctx, Reindex{})                                 // durable, one instance
//
// # Where a message goes
//
// A command or query whose handler is registered on the bus runs in
// process; otherwise it goes over the bus's transport to the service that
// owns it (NATS request/reply, Redis streams), and fails fast with
// ErrNoHandler when nobody serves it. Publish and Dispatch go through the
// transport (the memory transport when no broker is installed), through
// the envelope and codec as a broker would, so a message that cannot cross
// the wire fails on a laptop first. A bus with no transport at all is the
// mediator alone: everything runs in process and synchronously.
//
// # Guarantees
//
// Send and Ask: one handler instance answers, bounded by the caller's
// context. Dispatch: at least once, one instance of the owning service.
// Publish: every subscribing service gets it, one instance each. A failed
// delivery is retried in process (Retry), then redelivered by the broker
// with backoff, then dead-lettered after MaxDeliver attempts; a Permanent
// error, an undecodable payload or an unknown type is dead-lettered at once.
// The Idempotency behavior (an inbox of handled message ids) makes a
// redelivered message skip a handler that already succeeded.
//
// A Publish that fails tells the truth: ErrOutcomeUnknown (the ack was
// lost: it may be stored; do not compensate, publishing again is harmless)
// or a definite failure such as ErrUnavailable (nothing was stored and
// nothing will be sent later). Inside a store's transaction (pgmod.DB.Tx,
// redismod's Outbox.Tx), Publish and Dispatch write to the transaction's
// outbox instead (transport.WithOutbox), and a relay publishes after commit: state
// and messages exist together or not at all, and a handler registered with
// OwnInbox marks its message handled in that same transaction.
//
// # Scheduled messages
//
// PublishAt and DispatchAt hold a message until a time, then deliver it as
// any other (once to each group, at least once); the id they return is
// Cancel's. The transport holds it (transport.Scheduler): the memory
// transport in a timer heap (lost with the process), natsmod in JetStream
// (the server's own scheduling from 2.12, a stream and a scheduler of its
// own before), redismod in sorted sets moved into the streams by a script;
// each package states how late a message may be. Inside a transaction's
// outbox they are written with the state and scheduled after commit, so a
// flow's timeout exists exactly when its state does. The time travels as
// Envelope.DeliverAt (header Catga-Deliver-At).
//
// # Errors
//
// Errors carry a stable Code (invalid, not_found, conflict, unauthorized,
// unavailable, timeout, internal) that survives the wire and maps to an
// HTTP status; build them with Errorf or NewError, mark the hopeless ones
// Permanent.
//
// # Behaviors
//
// A Behavior wraps the next Step of the pipeline around every dispatch (DefaultDispatch: logging, validation,
// recover) and delivery (DefaultDelivery: logging, timeout, validation,
// idempotency, retry, recover) on the http-middleware model; Use adds
// yours, or constructors of yours whose dependencies fx provides. A message with a Validate method is validated before its handler.
//
// # Configuration
//
// Config is the bus's deployment data (CATGA_MAX_DELIVER and the rest);
// NewFromConfig builds a bus from it in one call, and cqrs.Module builds it
// the same way in fx. Each default is written once, in Config's
// `envDefault` tags; Config.WithDefaults fills them in (read a default as
// Config{}.WithDefaults().MaxDeliver). The
// tags are the source, not Go constants, because reading the environment
// needs them anyway: there an unset variable takes its default while an
// explicit CATGA_MAX_DELIVER=0 stays 0 and Validate refuses it. One Backoff
// computes every wait of the bus, the broker's redelivery and Retry's.
//
// Options is the layer under Config, for a test or a hand-built pipeline:
// a bus exactly as given, with its behaviors chosen by the caller (the
// zero value is the mediator alone, with no behaviors). Config becomes
// Options in one place; DeliveryConfig and RetryPolicy are only the
// arguments of DefaultDelivery and Retry, the pieces Config's options are
// built from.
//
// # Transports
//
// The contract a broker implements (Transport, Subscription, Delivery,
// Envelope, the outbox seam) is package cqrs/transport, and the inbox
// stores' contract is package cqrs/inbox; cqrstest is the conformance
// suite, run by the memory, NATS and Redis transports. Handler authors need
// neither: EnvelopeFrom gives a handler its message's metadata.
package cqrs
