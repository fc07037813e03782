package cqrs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/transport"
)

type collectOutbox struct {
	mu   sync.Mutex
	msgs []transport.Outgoing
}

func (o *collectOutbox) Add(_ context.Context, t transport.Topic, env *transport.Envelope) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, transport.Outgoing{Topic: t, Envelope: env.Clone()})
	return nil
}

func TestOutbox_PublishAndDispatchInsideGoToTheOutboxNotTheBroker(t *testing.T) {
	var delivered atomic.Int32
	b, _ := deliveryBus(t, nil, cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error {
		delivered.Add(1)
		return nil
	})))
	ob := &collectOutbox{}
	ctx := transport.WithOutbox(context.Background(), ob)
	if err := b.Publish(ctx, OrderCreated{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Dispatch(ctx, CreateOrder{Customer: "c1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong delivery
	if n := delivered.Load(); n != 0 {
		t.Fatalf("the event reached its handler %d times before any relay ran, want 0", n)
	}
	if len(ob.msgs) != 2 {
		t.Fatalf("outbox holds %d messages, want 2", len(ob.msgs))
	}
	ev, cmd := ob.msgs[0], ob.msgs[1]
	if ev.Topic != (transport.Topic{Kind: transport.KindEvent, Name: "OrderCreated"}) || ev.Envelope.ID == "" || ev.Envelope.Source != "svc" ||
		string(ev.Envelope.Payload) != `{"ID":"o1","Total":0}` {
		t.Fatalf("event in outbox: %+v %+v", ev.Topic, ev.Envelope)
	}
	if cmd.Topic != (transport.Topic{Kind: transport.KindCommand, Name: "CreateOrder"}) || cmd.Envelope.ID == ev.Envelope.ID {
		t.Fatalf("command in outbox: %+v %+v", cmd.Topic, cmd.Envelope)
	}
	// Without the outbox the same call goes to the broker.
	if err := b.Publish(context.Background(), OrderCreated{ID: "o2"}); err != nil {
		t.Fatal(err)
	}
	catgatest.Poll(5*time.Second, func() bool { return delivered.Load() != 0 })
	if delivered.Load() != 1 {
		t.Fatalf("a publish without an outbox was delivered %d times, want 1", delivered.Load())
	}
}

func TestOutbox_ErrorOfTheOutboxIsThePublishError(t *testing.T) {
	b, _ := deliveryBus(t, nil)
	boom := errors.New("tx aborted")
	ctx := transport.WithOutbox(context.Background(), transport.OutboxFunc(func(context.Context, transport.Topic, *transport.Envelope) error { return boom }))
	if err := b.Publish(ctx, OrderCreated{ID: "o1"}); !errors.Is(err, boom) {
		t.Fatalf("Publish: %v, want the outbox's error", err)
	}
}

func TestOwnInbox_IdempotencyBehaviorLetsRedeliveriesThrough(t *testing.T) {
	var calls atomic.Int32
	inbox := &inbox.Memory{}
	_, tr := deliveryBus(t, cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: inbox, Service: "svc"}),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[OrderCreated](func(context.Context, OrderCreated) error {
			calls.Add(1)
			return nil
		}), cqrs.OwnInbox()))
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "OrderCreated", Kind: transport.KindEvent, ContentType: "application/json", Payload: []byte(`{"ID":"o1"}`)}
	topic := transport.Topic{Kind: transport.KindEvent, Name: "OrderCreated"}
	for range 2 {
		if err := tr.Publish(context.Background(), topic, env); err != nil {
			t.Fatal(err)
		}
	}
	catgatest.Poll(5*time.Second, func() bool { return calls.Load() >= 2 })
	if calls.Load() != 2 || inbox.Len() != 0 {
		t.Fatalf("handler ran %d times, claim inbox holds %d keys; want 2 runs and 0 keys: an OwnInbox handler dedups in its own transaction", calls.Load(), inbox.Len())
	}
}

func TestCodeOf_OutcomeUnknownIsTimeoutUnavailableIsUnavailable(t *testing.T) {
	if c := cqrs.CodeOf(errors.Join(errors.New("x"), cqrs.ErrOutcomeUnknown)); c != cqrs.CodeTimeout {
		t.Fatalf("CodeOf(outcome unknown) = %s, want timeout", c)
	}
	if c := cqrs.CodeOf(errors.Join(errors.New("x"), cqrs.ErrUnavailable)); c != cqrs.CodeUnavailable {
		t.Fatalf("CodeOf(unavailable) = %s, want unavailable", c)
	}
}
