package transport

import (
	"context"
	"time"
)

// Transport moves envelopes between processes. It is shaped after JetStream
// pull consumers and Redis consumer groups so both fit without leaks:
//
//   - Publish stores an event or durable command; it returns once the broker
//     has it (a JetStream publish ack, an XADD reply). Its error tells the
//     truth: one wrapping cqrs.ErrOutcomeUnknown means the message was handed
//     over and its acknowledgement lost (it may be stored); any other error
//     means it was not stored and will never be sent later (no reconnect
//     buffer may hold it). It keeps nothing of env once it returns: the
//     caller may reuse the envelope and its payload (the bus does).
//   - Subscribe joins a consumer group (the service) as one instance. Every
//     group gets each message of its topics once; within a group one instance
//     gets it. The transport sets Envelope.Attempt from the broker's delivery
//     count and keeps a long-running handler's message (in-progress acks,
//     pending-entry claims) on its own.
//   - The bus settles each Delivery exactly once: Ack, Nak with a delay, or
//     DeadLetter. Redelivery policy lives in the bus, not in transports.
//   - Request and Serve carry Send and Ask: one instance of the owning group
//     answers, no responder fails at once with cqrs.ErrNoHandler, and the caller's
//     context bounds the wait.
//
// Close of what Subscribe or Serve returned drains: it stops taking messages, lets the handlers
// that started finish and settle until its context ends, then cancels theirs.
// Handler contexts come from WithDrain, and Close calls its drain first, so
// a delivery that is only waiting (on another instance's idempotency claim)
// is given back at once instead of holding the stop.
// cqrstest.TestTransport is the contract in code.
type Transport interface {
	Publish(ctx context.Context, topic Topic, env *Envelope) error
	Subscribe(ctx context.Context, s Subscription) (Closer, error)
	Request(ctx context.Context, topic Topic, env *Envelope) (*Reply, error)
	Serve(ctx context.Context, r Responder) (Closer, error)
}

// Subscription asks a transport to deliver some topics to one instance of a
// consumer group.
type Subscription struct {
	Group       string // consumer group: the service name
	Instance    string // this instance: HOSTNAME, the pod name
	Concurrency int    // most handlers in flight at once; 0 lets the transport choose
	Topics      []TopicHandler
}

// TopicHandler binds one topic to the handler of its deliveries, so a
// transport hands a message to its handler without looking up a name.
type TopicHandler struct {
	Topic   Topic
	Handler DeliveryHandler
}

// Responder asks a transport to answer requests for some topics as one
// instance of the owning group.
type Responder struct {
	Group       string
	Instance    string
	Concurrency int
	Endpoints   []Endpoint
}

// Endpoint binds one command or query topic to the handler of its requests.
type Endpoint struct {
	Topic   Topic
	Handler RequestHandler
}

// Closer is a running subscription or responder: what Subscribe and Serve
// return.
type Closer interface {
	// Close stops taking messages and waits for handlers in flight until ctx
	// ends; then it cancels their contexts and returns ctx's error.
	Close(ctx context.Context) error
}

// Delivery is one message received from a transport, to be settled once.
type Delivery interface {
	Envelope() *Envelope
	// Ack marks the message handled; it will not be delivered to the group again.
	Ack(ctx context.Context) error
	// Nak asks for redelivery after delay, with the attempt counted.
	Nak(ctx context.Context, delay time.Duration) error
	// DeadLetter stores dl (the transport assigns its ID) and removes the
	// message from the group's queue.
	DeadLetter(ctx context.Context, dl *DeadLetter) error
}

// DeliveryHandler handles deliveries of one topic. It settles every delivery.
type DeliveryHandler interface {
	HandleDelivery(ctx context.Context, d Delivery)
}

// DeliveryHandlerFunc adapts a function to a DeliveryHandler.
type DeliveryHandlerFunc func(ctx context.Context, d Delivery)

// HandleDelivery calls f.
func (f DeliveryHandlerFunc) HandleDelivery(ctx context.Context, d Delivery) { f(ctx, d) }

// RequestHandler answers requests of one topic.
type RequestHandler interface {
	HandleRequest(ctx context.Context, env *Envelope) *Reply
}

// RequestHandlerFunc adapts a function to a RequestHandler.
type RequestHandlerFunc func(ctx context.Context, env *Envelope) *Reply

// HandleRequest calls f.
func (f RequestHandlerFunc) HandleRequest(ctx context.Context, env *Envelope) *Reply {
	return f(ctx, env)
}

// Scheduler is implemented by a transport that delivers scheduled
// messages: Publish of an envelope whose DeliverAt is in the future stores
// it durably (as durably as any message of that transport) and delivers it
// to the topic's groups no earlier than DeliverAt, once to each as any other
// message; Publish's error keeps its meaning. A DeliverAt in the past is
// delivered at once. A transport that does not implement Scheduler never
// sees a DeliverAt: the bus refuses the message first.
type Scheduler interface {
	// Cancel removes the scheduled message with envelope id id. It answers
	// true when the message was still waiting and now never goes, false
	// when none waits under that id (unknown, cancelled, or already
	// delivered). A message whose time came while Cancel ran may go still.
	Cancel(ctx context.Context, id string) (bool, error)
}

// ScheduleLimiter is implemented by a Scheduler that holds scheduled
// messages only so far ahead (natsmod on the server's scheduling: the
// stream's max age). The bus refuses, at PublishAt, a time beyond it, so
// that a transaction never commits a timeout its relay cannot schedule.
type ScheduleLimiter interface {
	MaxScheduleAhead() time.Duration // 0: no limit
}

// PayloadLimiter is implemented by a transport whose broker bounds a
// message's size (NATS's max_payload). The bus refuses, at send, a payload
// over the smaller of its own limit and this one.
type PayloadLimiter interface {
	MaxPayload() int // 0: not known yet
}

// LagReporter is implemented by a transport that can tell how far its
// consumer groups are behind: what waits in the broker for them, and what
// they hold unacknowledged.
type LagReporter interface {
	Lag(ctx context.Context) ([]ConsumerLag, error)
}

// ConsumerLag is one group's backlog on one topic, or on every topic of
// one kind (a Topic without a Name) where the transport reads them through
// one consumer (NATS on 2.10 and later).
type ConsumerLag struct {
	Group   string
	Topic   Topic
	Pending int64 // stored, not yet delivered to the group
	Unacked int64 // delivered, not yet acknowledged
}

// Reply answers a request: a payload, or the failure of its handler.
type Reply struct {
	ContentType string
	Payload     []byte
	Err         *Failure // nil when the request succeeded
}

// Failure is a handler's error as it crosses the wire: its code (a
// cqrs.Code, such as "invalid" or "not_found") and its message.
type Failure struct {
	Code    string
	Message string
}

// Reply header names, for transports that carry replies as headers.
const (
	HeaderErrorCode    = "Catga-Error-Code"
	HeaderErrorMessage = "Catga-Error"
)

// Failed returns the reply for a failed request.
func Failed(code, message string) *Reply {
	return &Reply{Err: &Failure{Code: code, Message: message}}
}

// DefaultConcurrency is how many handlers of one Subscription or Responder a
// transport runs at once when it asks for 0; it is also the default of
// cqrs.Config's CATGA_CONCURRENCY.
const DefaultConcurrency = 32
