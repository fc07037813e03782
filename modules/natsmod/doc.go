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
// Scheduled messages (Bus.PublishAt, DispatchAt) use the server's message
// scheduling on 2.12 and later: <prefix>.schedules.<kind>.<id> in the
// kind's stream (the streams are given those subjects and
// allow_msg_schedules at start), late by at most about 250 ms, due within
// NATS_STREAM_MAX_AGE. On older servers they wait in <P>_SCHEDULES, on
// <prefix>.scheduled.<id>, fired by the transports' shared consumer
// catga_scheduler with delayed naks, late by milliseconds. Both survive a
// restart of the server and of the services (schedule.go).
//
// # Starting before the broker
//
// Start does not need NATS to be up. A server that cannot be reached yet
// (a refused or timed-out dial, a name that does not resolve yet, a
// JetStream that does not answer or answers 503, no peers yet to place a
// replica on) is tried again, from 250 ms doubling to 2 s apart with
// ±20 % jitter (github.com/cenkalti/backoff/v5), each attempt logged at
// warn with its number, the wait and the error; one attempt's JetStream
// requests are bounded by 5 s. The bus's consumers are created the same
// way (Subscribe waits until its ctx ends). Under app (and
// catga.Module) the HTTP server starts first, so while Start waits
// /health answers 200 and /ready 503, and the service is ready once NATS
// is, without a restart. The wait ends with the start context: app gives
// it CATGA_START_TIMEOUT (15 s by default); then Start fails with the last
// attempt's error, naming the servers, with the number of attempts, and
// errors.Is(err, context.DeadlineExceeded). Start without a deadline waits
// for as long as it takes. A server that refuses the credentials
// (authorization violation, expired or revoked) or the TLS handshake, a
// stream that exists with other settings, or a JetStream API error that
// is an answer (a bad config, a limit) fails Start at once.
//
// # Publishing
//
// Publish returns after the stream's ack (or when ctx ends; 5 s when it
// has no deadline), and its error tells what happened to the message:
//
//   - nil: stored.
//   - cqrs.ErrOutcomeUnknown: sent, and no ack came back: a timeout, ctx
//     ending while waiting, the connection lost after the write, Close
//     giving up on it. It may be stored. Do not compensate; publish the
//     same envelope again (the same id) until it is acknowledged: within
//     NATS_DUPLICATE_WINDOW the stream keeps one copy.
//   - cqrs.ErrUnavailable: not connected, or no stream answers for the
//     subject (no responders). Nothing was stored and nothing will be: the
//     caller may compensate, or retry later.
//   - any other error is as definite: cqrs.ErrClosed (the transport is
//     stopped), cqrs.ErrPayloadTooLarge and a topic that is not durable
//     (both cqrs.IsPermanent), ctx ending before the send, or a JetStream
//     API error (the stream refused it: a limit, say).
//
// The connection has no reconnect buffer, so a publish while disconnected
// or reconnecting fails at once with cqrs.ErrUnavailable rather than being
// kept and sent after the reconnect, when its caller has been told it
// failed. The same holds for whatever else is sent meanwhile: a Send or Ask
// fails at once with cqrs.ErrUnavailable (cqrs.CodeOf gives
// CodeUnavailable, HTTP 503, as for Publish and Dispatch) and is not run
// later; an ack
// that is refused means a redelivery after NATS_ACK_WAIT (the inbox
// absorbs it); a pull request is reissued once the connection is back.
//
// PublishBatch (transport.BatchPublisher, which the outbox relay uses) sends a
// batch in order with asynchronous publishes, at most NATS_PUBLISH_WINDOW
// (256) awaiting their acks at once per call, and gives each message the
// outcome Publish would. It stops at the first message it cannot send for
// the connection, ctx or Close: that one and the rest fail, definitely,
// unsent, so a retry cannot put them behind later ones; a message refused
// for itself (too large) is skipped. Close waits for the acks of publishes
// in flight until its context ends, then drains.
//
// # Consuming
//
// Each group (CATGA_SERVICE) has one durable pull consumer per kind,
// <group>_events and <group>_commands, whose filter is the subjects of the
// group's topics of that kind, so a service's cost on the server does not
// grow with its message types (on a server older than 2.10, without
// multi-subject filters, one per topic, <group>_<kind>_<Name>; per-topic
// consumers left by such a server or an earlier release are replaced
// without loss; see layout.go for the trade-offs). Each has explicit acks, NATS_ACK_WAIT and
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
// (transport.WithDrain). Each pull is one request (a Fetch) of up to the batch,
// issued when the previous one has ended: nats.go's Messages iterator can
// miss issuing its next request (see pull in fetch.go), which stalled a
// consumer of concurrency 1 for seconds at a time. A pull request expires
// after 5 s (nats.go's default is 30 s), with a 2 s idle heartbeat, so a
// pull the server lost is noticed and reissued within seconds rather than
// leaving a live instance idle for half a minute; an idle consumer costs
// one pull request per 5 s.
//
// The consumers have no MaxDeliver of their own, though JetStream offers one on
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
// (before Start has connected too) or a consumer cannot fetch; with
// NATS_PING_INTERVAL 2s a dead link shows within seconds, a closed one at
// once. Stop waits for publishes in flight, then drains the connection.
// Auth is one of a creds file, an nkey seed file, user and password, or a
// token; TLS by CA, certificate and key files. Secrets are redacted from every
// error and log line (URLs included) and from Config.String.
//
// Works with nats-server 2.9 and later: on 2.10 and later the consumers
// use multi-subject filters, the one feature beyond 2.9 (NakWithDelay,
// Term). The tests run on an embedded server of the newest release
// (natstest), the layout test also on the system's nats-server (Debian's
// is 2.9); CATGA_TEST_NATS_URL runs the conformance suite on another.
//
// Libraries: github.com/nats-io/nats.go and its jetstream package;
// github.com/nats-io/nats-server/v2 in natstest.
package natsmod
