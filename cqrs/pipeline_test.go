package cqrs_test

import (
	"context"
	"testing"

	"github.com/catga-go/catga/cqrs"
)

// A handler called directly reads an empty envelope, not a nil one.
func TestEnvelopeFrom_WithoutAMessageIsEmpty(t *testing.T) {
	env := cqrs.EnvelopeFrom(context.Background())
	if env == nil {
		t.Fatal("EnvelopeFrom without a message: nil, want an empty envelope")
	}
	if env.ID != "" || env.Name != "" || !env.Time.IsZero() {
		t.Errorf("EnvelopeFrom without a message: %+v, want zero values", env)
	}
}

// Inside a run, it is the envelope of the message being handled.
func TestEnvelopeFrom_InAHandlerIsTheMessages(t *testing.T) {
	var id, fromMessage string
	b := newBus(t, cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)}, cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](
		func(ctx context.Context, c CreateOrder) (OrderID, error) {
			if m, ok := cqrs.MessageFrom(ctx); ok {
				fromMessage = m.Envelope().ID
			}
			id = cqrs.EnvelopeFrom(ctx).ID
			return "", nil
		})))
	if _, err := cqrs.Send[OrderID](context.Background(), b, CreateOrder{Customer: "c1"}); err != nil {
		t.Fatal(err)
	}
	if id == "" || id != fromMessage {
		t.Errorf("EnvelopeFrom(ctx).ID = %q, want the message's id %q", id, fromMessage)
	}
}
