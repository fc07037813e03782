// Package redismod is the Redis Streams transport, the idempotency inbox on
// Redis, and the shared client the example's stores use.
//
//	fx.New(catga.Module, redismod.Module, orders.Module).Run() // REDIS_URL=redis://redis:6379/0
//
// StoreModule is the same without the transport (client, inbox, readiness),
// for a service on NATS that keeps its state in Redis.
//
// # Starting before the server
//
// Start does not need Redis to be up. Module's client (StoreModule's too)
// and Transport.Start PING until Redis answers: a refused or timed-out
// dial, a name that does not resolve yet, or a server that says it is not
// ready (LOADING, BUSY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, its client
// limit) is tried again, from 250 ms doubling to 2 s apart with ±20 %
// jitter (github.com/cenkalti/backoff/v5), each attempt logged at warn
// with its number, the wait and the error. The bus's consumer groups are
// created the same way (Subscribe and Serve wait until their ctx ends).
// One attempt includes go-redis's own retries of the dial (about 1.7 s for
// a refused one).
// Under app (and catga.Module) the HTTP server starts first, so while
// start waits /health answers 200 and /ready 503, and the service is ready
// once Redis is, without a restart. The wait ends with the start context:
// app gives it CATGA_START_TIMEOUT (15 s by default); then start fails
// with the last attempt's error, naming the server (never the password),
// with the number of attempts, and errors.Is(err,
// context.DeadlineExceeded). A server that refuses the credentials
// (WRONGPASS, NOAUTH, NOPERM) or the TLS handshake, or answers with
// another error, fails start at once.
//
// # Streams
//
// One stream per message name: <prefix>:{events:<Name>} and
// <prefix>:{commands:<Name>}; the hash tag (REDIS_HASH_TAGS, on by default)
// lets a cluster place each stream, and keeps a stream's own keys with it.
// Each service (CATGA_SERVICE) is a consumer group, created with the stream
// when missing (events from "$", the new ones; commands from "0", which wait
// for their owner); each instance (HOSTNAME) is a consumer. A subscription
// reads all its streams in one XREADGROUP COUNT (REDIS_FETCH_BATCH, at most
// the bus's concurrency; per stream, so a round may take a batch from each
// stream that has entries) with BLOCK (REDIS_BLOCK): one read in flight,
// one goroutine and one blocked connection, whatever the number of its
// message types (on a Redis Cluster, whose commands cannot span hash slots,
// one read per stream). Success is acknowledged with XACK, pipelined.
//
// A failed delivery stays pending: a nak sets its idle time with XCLAIM
// TIME so that an XCLAIM for entries idle over REDIS_CLAIM_IDLE takes it
// again when the delay is over, and adds it to the group's due set
// (<prefix>:{due:<service>}, a sorted set by due time), which every
// instance reads every REDIS_CLAIM_INTERVAL: one ZRANGEBYSCORE, and an
// XCLAIM only for streams with entries due. Every REDIS_CLAIM_IDLE/2 an
// XAUTOCLAIM of each stream takes over the entries of a consumer that died
// or stalls (idle over REDIS_CLAIM_IDLE), by one of the instances that read
// those streams for the group, per round (a lease, SET NX, named by the
// streams), in one pipeline; a scan that stops
// short of the end of a large backlog goes on every REDIS_CLAIM_INTERVAL
// until done. That sweep, and the janitor's trims (also one instance per
// stream and round), are the idle costs that grow with the number of
// streams, at the pace of the claim idle and the trim interval. A
// handler that runs long has its entries' idle time reset, so nobody takes
// them while it works. The
// attempt is the entry's delivery count (XPENDING), which drives the bus's
// dead-lettering after CATGA_MAX_DELIVER. Dead letters go to
// <prefix>:{dlq}:records; a replay to the service's own
// <prefix>:{replay:<service>}.
//
// # Publishing
//
// Publish is one XADD; PublishBatch (transport.BatchPublisher, which the outbox
// relay uses) pipelines the XADDs of a batch, up to 256 a round trip, in
// order. Each outcome means one thing:
//
//   - nil: Redis has the entry. With AOF (appendfsync always) it survives
//     a crash.
//   - cqrs.ErrUnavailable: nothing was sent, so nothing will be stored: the
//     connection could not be made (refused, a dial or pool timeout), the
//     transport is closed, ctx ended first, or an earlier failure stopped
//     the batch. The caller may compensate, or publish again later;
//     cqrs.CodeOf gives CodeUnavailable (HTTP 503).
//   - cqrs.ErrOutcomeUnknown: the XADD was written and its reply lost (a
//     read timeout, the connection reset or closed, ctx's deadline while
//     waiting): it may be stored. The caller must not compensate; it may
//     publish the same envelope (the same message id) again.
//   - any other error: Redis's error reply (OOM, WRONGTYPE, NOPERM, ...),
//     its text kept: refused, not stored.
//
// A failure that cannot be shown to have come before the write is unknown.
// Redis (7) has no publish dedup: an envelope published again after an
// unknown outcome may be stored twice, with the same message id, and the
// receiver's inbox runs its handler once. go-redis would itself retry an
// XADD whose reply was lost (MaxRetries), storing it twice unseen and
// reporting the last attempt's error, which may claim nothing was sent;
// redismod turns go-redis's retries off for its XADDs, so an outcome is
// the truth about the one attempt, and retrying is the caller's.
//
// # Scheduled messages
//
// Bus.PublishAt and DispatchAt store a message in its stream's own sorted
// set (<stream>:scheduled, with its headers and payload in two hashes),
// and a Lua script moves it into the stream when due, atomically, on one
// server or a cluster. An index (<prefix>:{scheduled}) tells every
// started transport's scheduler which streams have something due and
// when; it sleeps until then, or REDIS_SCHEDULE_INTERVAL (1 s) at most.
// A message is late by milliseconds, except one due sooner than the
// interval and scheduled by another process: up to the interval. They are
// as durable as the streams (AOF) and survive a restart of the services.
// Cancel finds a waiting id's stream through <prefix>:{scheduled}:id:<id>.
// See schedule.go for why the index cannot lose a stream.
//
// # Trimming and idle consumers
//
// See Transport.Trim: streams are trimmed only up to what every group has
// acknowledged; REDIS_STREAM_MAX_LEN caps a stream a stalled group would
// grow, and what the cap drops unacknowledged is counted and logged.
// Consumers idle over REDIS_CONSUMER_MAX_IDLE with nothing pending are
// removed.
//
// # Requests
//
// Send and Ask: see rpc.go. A request stream per command or query read by
// the owning group; replies on a list per process; a heartbeat set so that
// a request with no live responder fails at once with cqrs.ErrNoHandler.
// A request that could not be sent (Redis refused or timed out the
// connection, or said it is not ready) fails with cqrs.ErrUnavailable
// (HTTP 503), as Publish and Dispatch do; one written whose reply from
// Redis was lost with cqrs.ErrOutcomeUnknown (504): a handler may run it.
//
// # Inbox
//
// Inbox claims a (service, handler, message id) with SET NX and the run's
// lease, and marks it done with an expiry (CATGA_IDEMPOTENCY_TTL) once the
// handler succeeded; a failed run releases it. A second delivery that finds
// it claimed waits for the first (see cqrs.Idempotency), so two instances
// never run one message at once, and a crashed run's message runs again
// once its lease ends.
//
// # Outbox
//
// Outbox (provided by Module and StoreModule) is the transactional outbox
// and inbox for a service whose state is in Redis: Outbox.Tx runs the
// handler's writes in one MULTI/EXEC with the messages it publishes (an
// XADD to the outbox stream {tag}:_outbox, relayed after EXEC by
// cqrs/outbox's Relay on the bus's transport, one relay leading at a time
// under a renewed lease) and, for a delivered message, its inbox mark,
// WATCHed first so a redelivery after commit is skipped. With this
// package's transport on one server, the XADDs go straight to the
// destination streams in the same MULTI (Outbox.Direct). On a Redis
// Cluster every key of a transaction must come from Outbox.Key, which puts
// it in the outbox's hash slot; another key fails the Tx with ErrCrossSlot
// and writes nothing. Order: one transaction's messages in the order
// written, transactions in EXEC order; Key(k) makes transactions of one
// key serialisable. Tuning: REDIS_OUTBOX_TAG, REDIS_OUTBOX_BATCH,
// REDIS_OUTBOX_POLL, REDIS_OUTBOX_LEASE, REDIS_OUTBOX_LEAD_RETRY,
// REDIS_OUTBOX_ATTEMPTS, REDIS_INBOX_TTL (default CATGA_IDEMPOTENCY_TTL).
//
// # Connection
//
// REDIS_URL (redis:// or rediss://), or REDIS_CONNECTION host:port[,...]
// where several addresses mean Redis Cluster; REDIS_USERNAME and
// REDIS_PASSWORD (ACL) override the URL's; TLS by rediss://, REDIS_TLS and
// the CA, certificate and key files. Built on go-redis's UniversalClient.
// Passwords are redacted from errors, logs and Config.String.
//
// Libraries: github.com/redis/go-redis/v9.
package redismod
