package cqrstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/transport"
)

// Connect opens a new connection to the backend of one case.
type Connect func(t *testing.T) transport.Transport

// NewBackend prepares an isolated backend for one case.
type NewBackend func(t *testing.T) Connect

// Features says what the transport under test can do and how fast.
type Features struct {
	// Persistent: a durable group keeps its messages while no instance
	// runs, so closing and reopening it loses nothing. Off, the close and
	// reopen, restart and drain cases are skipped.
	Persistent bool
	// MaxPayload is the payload limit to test (the bus's MaxPayload); 0
	// means the bus's default, cqrs.Config's MaxPayload.
	MaxPayload int
	// Timeout bounds each wait of a case; 0 means 20s.
	Timeout time.Duration
	// SchedulePrecision is how late a scheduled message may arrive (the
	// transport's stated precision); 0 means 1s.
	SchedulePrecision time.Duration
	// BrokerGoroutines names goroutines that belong to a broker running in
	// the test process (a substring of their stack, such as
	// "nats-server/v2/server."): the leak check ignores them.
	BrokerGoroutines []string
}

func (f Features) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return 20 * time.Second
}

func (f Features) schedulePrecision() time.Duration {
	if f.SchedulePrecision > 0 {
		return f.SchedulePrecision
	}
	return time.Second
}

// TestTransport runs the whole suite against the transport newBackend makes.
func TestTransport(t *testing.T, f Features, newBackend NewBackend) {
	cases := []suiteCase{
		{"PublishSubscribe_HeadersIntact", testPublishSubscribe, ""},
		{"Concurrency_50PublishersTo50Handlers", testConcurrency, ""},
		{"Topics_EachHandlerSeesOnlyItsType", testTopics, ""},
		{"ConsumerGroups_EachGroupOnceSpreadOverInstances", testConsumerGroups, ""},
		{"OwnGroup_HandlesItsOwnEventsOnce", testOwnGroup, ""},
		{"Redelivery_AttemptsCountAndNothingBlocks", testRedelivery, ""},
		{"DeadLetter_AfterMaxDeliver", testDeadLetterMaxDeliver, ""},
		{"DeadLetter_AtOnceForPermanentBadPayloadUnknownType", testDeadLetterAtOnce, ""},
		{"Replay_OnceToItsGroupOnly", testReplay, ""},
		{"CloseReopen_DurableGroupLosesNothing", testCloseReopen, "persistent"},
		{"ConcurrentClose_NoPanicNoLeak", testConcurrentClose, ""},
		{"Context_CloseCancelsHandlersPublishBounded", testContext, ""},
		{"RequestReply", testRequestReply, ""},
		{"DurableCommands_OnceOverInstancesAndRestart", testDurableCommands, ""},
		{"Idempotency_SameIDRunsHandlerOnce", testIdempotency, ""},
		{"Drain_InFlightFinishRestArriveAfterRestart", testDrain, "persistent"},
		{"Drain_WaitingOnHeldClaimGivenBack", testDrainWaiting, "persistent"},
		{"Payload_LimitRefusedAtPublish", testPayloadLimit, ""},
	}
	runCases(t, f, newBackend, append(cases, scheduleCases...))
}

// scheduleCases are the cases of scheduled messages (transport.Scheduler).
var scheduleCases = []suiteCase{
	{"Schedule_AtItsTimeOnceToEachGroup", testScheduleEvents, ""},
	{"Schedule_CancelledNeverArrives", testScheduleCancel, ""},
	{"Schedule_BusDispatchAtPublishAtCancel", testScheduleBus, ""},
	{"Schedule_WaitsInTheBrokerOverARestart", testScheduleRestart, "persistent"},
}

// TestScheduler runs the cases of scheduled messages alone, which
// TestTransport runs too: for a transport with a second way to schedule
// (natsmod's fallback for servers before 2.12).
func TestScheduler(t *testing.T, f Features, newBackend NewBackend) {
	runCases(t, f, newBackend, scheduleCases)
}

// suiteCase is one case of the suite.
type suiteCase struct {
	name string
	run  func(*testing.T, *harness)
	need string // the feature the case needs, "" for none
}

func runCases(t *testing.T, f Features, newBackend NewBackend, cases []suiteCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.need == "persistent" && !f.Persistent {
				t.Skip("cqrstest: skipped: the transport is not Persistent (Features.Persistent is false)")
			}
			h := &harness{t: t, f: f, connect: newBackend(t), id: fmt.Sprintf("%04x", rand.IntN(1<<16))}
			c.run(t, h)
		})
	}
}

// harness is one case's backend and helpers.
type harness struct {
	t       *testing.T
	f       Features
	connect Connect
	id      string
}

// group returns a consumer group name unique to the case.
func (h *harness) group(name string) string { return name + "-" + h.id }

// n returns full, or small under -short.
func n(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// fastRedelivery makes a broker redelivery quick enough for tests.
var fastRedelivery = cqrs.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2}

// busOptions are what every bus of the suite starts from: no in-process
// retry, so each failure is a broker redelivery the case can count.
type busOptions struct {
	service, instance string
	maxDeliver        int
	maxPayload        int
	concurrency       int
	idempotency       inbox.Store
	redelivery        cqrs.Backoff
	transport         transport.Transport
}

// bus starts a bus on a new connection (or o.transport) with regs.
func (h *harness) bus(o busOptions, regs ...cqrs.Registration) *cqrs.Bus {
	h.t.Helper()
	tr := o.transport
	if tr == nil {
		tr = h.connect(h.t)
	}
	if o.redelivery == (cqrs.Backoff{}) {
		o.redelivery = fastRedelivery
	}
	if o.maxPayload == 0 {
		o.maxPayload = h.f.MaxPayload
	}
	b, err := cqrs.New(cqrs.Options{
		Service: o.service, Instance: o.instance, Transport: tr,
		Delivery: cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{
			Service: o.service, Idempotency: o.idempotency, Timeout: h.f.timeout(),
		}),
		MaxDeliver: o.maxDeliver, MaxPayload: o.maxPayload, Redelivery: o.redelivery, Concurrency: o.concurrency,
	}, regs...)
	if err != nil {
		h.t.Fatalf("cqrs.New: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		h.t.Fatalf("start bus %s/%s: %v", o.service, o.instance, err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
		defer cancel()
		_ = b.Stop(ctx)
	})
	return b
}

// closeTransport closes tr when it can be closed, as a process exit would.
func closeTransport(t *testing.T, tr transport.Transport) {
	t.Helper()
	if c, ok := tr.(interface{ Close(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Logf("close transport: %v", err)
		}
	}
}

// subscribe subscribes raw deliveries of topics to handle, closed at cleanup.
func (h *harness) subscribe(tr transport.Transport, group, instance string, concurrency int, handle func(context.Context, transport.Delivery), topics ...transport.Topic) transport.Closer {
	h.t.Helper()
	s := transport.Subscription{Group: group, Instance: instance, Concurrency: concurrency}
	for _, tp := range topics {
		s.Topics = append(s.Topics, transport.TopicHandler{Topic: tp, Handler: transport.DeliveryHandlerFunc(handle)})
	}
	sub, err := tr.Subscribe(context.Background(), s)
	if err != nil {
		h.t.Fatalf("subscribe %s/%s: %v", group, instance, err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
		defer cancel()
		_ = sub.Close(ctx)
	})
	return sub
}

// publish publishes env on topic, failing the test on error.
func (h *harness) publish(tr transport.Transport, topic transport.Topic, env *transport.Envelope) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.f.timeout())
	defer cancel()
	if err := tr.Publish(ctx, topic, env); err != nil {
		h.t.Fatalf("publish %s %s: %v", topic, env.ID, err)
	}
}

// envelope returns a raw envelope with every header set.
func envelope(kind transport.Kind, name, key string, payload []byte) *transport.Envelope {
	return &transport.Envelope{
		ID: cqrs.NewID(), Name: name, Kind: kind,
		CorrelationID: "corr-" + key, CausationID: "cause-" + key,
		Source: "suite", Instance: "suite-1", ContentType: "application/json",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "suite=" + key,
		Time:    time.Now().UTC(),
		Payload: payload,
	}
}

// eventually waits until cond holds, failing with msg() after the timeout.
func (h *harness) eventually(cond func() bool, msg func() string) {
	h.t.Helper()
	deadline := time.Now().Add(h.f.timeout())
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v: %s", h.f.timeout(), msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDeadLetters waits for want dead letters of service.
func (h *harness) waitDeadLetters(b *cqrs.Bus, service string, want int) []transport.DeadLetter {
	h.t.Helper()
	dls, err := b.DeadLetters()
	if err != nil {
		h.t.Fatalf("dead letters: %v", err)
	}
	var got []transport.DeadLetter
	h.eventually(func() bool {
		got, err = dls.ListDeadLetters(context.Background(), service, 0)
		return err == nil && len(got) >= want
	}, func() string {
		return fmt.Sprintf("%d dead letters of %s (err %v), want %d", len(got), service, err, want)
	})
	return got
}

// quiet gives late duplicates a moment to show before an exactly-once check.
func quiet() { time.Sleep(150 * time.Millisecond) }
