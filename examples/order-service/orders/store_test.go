package orders_test

import (
	"context"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/orders"
)

func TestStatus_FurthestWins(t *testing.T) {
	tests := []struct{ a, b, want orders.Status }{
		{orders.StatusPending, orders.StatusShipped, orders.StatusShipped},
		{orders.StatusShipped, orders.StatusReserved, orders.StatusShipped},
		{orders.StatusPaid, orders.StatusReserved, orders.StatusPaid},
		{orders.StatusReserved, orders.StatusPaymentFailed, orders.StatusPaymentFailed},
		{orders.StatusPending, orders.StatusRejected, orders.StatusRejected},
	}
	for _, tt := range tests {
		if got := tt.a.Furthest(tt.b); got != tt.want {
			t.Errorf("%s.Furthest(%s) = %s, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMemoryStore_ApplyOncePerMessageAnyOrder(t *testing.T) {
	ctx := context.Background()
	s := orders.NewMemoryStore()
	if err := s.Create(ctx, orders.Order{ID: "o1", Status: orders.StatusPending}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	// Shipped arrives before reserved, and reserved twice.
	for _, e := range []struct {
		id     string
		status orders.Status
	}{{"m3", orders.StatusShipped}, {"m1", orders.StatusReserved}, {"m1", orders.StatusReserved}} {
		if err := s.Apply(ctx, "o1", orders.HistoryEntry{Event: string(e.status), MessageID: e.id, At: at}, e.status); err != nil {
			t.Fatal(err)
		}
	}
	o, err := s.Get(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != orders.StatusShipped || len(o.History) != 2 {
		t.Fatalf("status %s with %d history entries, want shipped with 2", o.Status, len(o.History))
	}
	if err := s.Apply(ctx, "nope", orders.HistoryEntry{MessageID: "x"}, orders.StatusPaid); cqrs.CodeOf(err) != cqrs.CodeNotFound {
		t.Fatalf("Apply to a missing order: %v, want not_found", err)
	}
}
