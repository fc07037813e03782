// Package natsmod is the NATS JetStream transport: add Module and NATS_URL
// to a service and it becomes one of many.
//
//	fx.New(catga.Module, natsmod.Module, orders.Module).Run()
//
// # On the wire
//
// Events go to <prefix>.events.<Name> in the stream <P>_EVENTS (limits
// retention: every group reads them), durable commands to
// <prefix>.commands.<Name> in <P>_COMMANDS (a work queue: a command is
// removed once its owner acks it, and a second service consuming the same
// command is refused at start), dead letters and replays to <prefix>.dlq.>
// in <P>_DLQ. The prefix is NATS_SUBJECT_PREFIX ("catga") and P is
// NATS_STREAM_PREFIX ("CATGA"). Streams are created at start, or their
// limits updated; a stream that exists with other subjects, retention or
// storage is reported, never changed.
//
// Every publish carries Nats-Msg-Id (the message id), so a publish retried
// after a lost ack is stored once within NATS_DUPLICATE_WINDOW.
//
// # Consuming
//
// Each group (CATGA_SERVICE) has one durable pull consumer per topic,
// <group>_<kind>_<Name>, with explicit acks, NATS_ACK_WAIT and
// NATS_MAX_ACK_PENDING, fetched in batches of NATS_FETCH_BATCH (at most the
// bus's concurrency) and handed to a bounded pool of handlers. Success is
// acked (fire and forget: a lost ack is a redelivery the inbox absorbs),
// failure is NakWithDelay with the bus's backoff, a dead letter is stored in
// the DLQ stream and the message terminated. A handler running longer than
// a third of the ack wait gets in-progress acks, so it keeps its message; a
// crashed instance's messages go to another after the ack wait. Closing a
// subscription stops pulling, gives back at once what was pulled but not
// started (Nak), and waits for the handlers in flight; a handler that is
// only waiting on another instance's idempotency claim is given back too
// (cqrs.WithDrain). Each pull request expires after 5 s (nats.go's default
// is 30 s), so its idle heartbeat is 2.5 s and a pull the server lost is
// noticed and reissued within seconds rather than leaving a live instance
// idle for half a minute; an idle consumer costs one pull request per 5 s.
//
// The consumers have no MaxDeliver of their own, where DESIGN puts one on
// the consumer: the bus counts attempts (from the broker's delivery count)
// and dead-letters after CATGA_MAX_DELIVER, which a consumer limit would
// hide (JetStream stops delivering silently at its MaxDeliver). Likewise the
// redelivery backoff is the bus's CATGA_REDELIVERY_*, applied with
// NakWithDelay, not a consumer BackOff list.
//
// # Requests
//
// Send and Ask use core NATS request/reply on <prefix>.rpc.commands.<Name>
// and <prefix>.rpc.queries.<Name>, with the owning service as queue group:
// one instance answers, no responder fails at once with cqrs.ErrNoHandler,
// the caller's deadline travels in a header and bounds the handler. The rpc
// segment is there because a stream that captures a subject (the commands
// stream does) answers a request to it with its own publish ack.
//
// # Operations
//
// The "nats" readiness check fails while the connection is not CONNECTED
// or a consumer cannot fetch; with NATS_PING_INTERVAL 2s a dead link shows
// within seconds, a closed one at once. Stop drains the connection. Auth is
// one of a creds file, an nkey seed file, user and password, or a token;
// TLS by CA, certificate and key files. Secrets are redacted from every
// error and log line (URLs included) and from Config.String.
//
// Works with nats-server 2.9 and later: only features of 2.9 are used
// (single-subject consumer filters, NakWithDelay, Term). The tests run on an
// embedded server of the newest release (natstest); CATGA_TEST_NATS_URL
// runs the conformance suite on another.
//
// Libraries: github.com/nats-io/nats.go and its jetstream package;
// github.com/nats-io/nats-server/v2 in natstest.
package natsmod
