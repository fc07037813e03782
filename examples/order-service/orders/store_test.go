package orders_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/orders"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

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

// stores are the stores under test, each new and empty.
func stores(t *testing.T) map[string]orders.Store {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	db, err := pgmod.New(pgmod.Config{URL: pgtest.Shared(t).NewDatabase(t)}, "order-service", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	pg := orders.NewPostgresStore(db)
	if err := pg.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ob, err := redismod.NewOutbox(rdb, redismod.Config{Prefix: "t"}, "order-service", redismod.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]orders.Store{"memory": orders.NewMemoryStore(), "redis": orders.NewRedisStore(ob), "postgres": pg}
}

func noEvents(context.Context) error { return nil }

func TestStore_ApplyOncePerMessageAnyOrder(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := s.Create(ctx, orders.Order{ID: "o1", Status: orders.StatusPending}, noEvents); err != nil {
				t.Fatal(err)
			}
			at := time.Now().UTC().Truncate(time.Microsecond)
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
			list, err := s.List(ctx, orders.StatusShipped)
			if err != nil || len(list) != 1 || list[0].ID != "o1" {
				t.Fatalf("List(shipped): %v, %v; want o1", list, err)
			}
		})
	}
}

func TestStore_CreateWhoseEventsFailStoresNothing(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			boom := errors.New("publish failed")
			if err := s.Create(ctx, orders.Order{ID: "o2", Status: orders.StatusPending}, func(context.Context) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("Create: %v, want then's error", err)
			}
			if _, err := s.Get(ctx, "o2"); cqrs.CodeOf(err) != cqrs.CodeNotFound {
				t.Fatalf("Get after a failed Create: %v, want not_found", err)
			}
		})
	}
}
