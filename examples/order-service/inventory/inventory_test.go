package inventory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/examples/order-service/contracts"
	"github.com/catga-go/catga/examples/order-service/inventory"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// testStore runs the store's contract against newStore (initial stock 10).
func testStore(t *testing.T, newStore func(t *testing.T) inventory.Store) {
	ctx := context.Background()
	items := func(kv ...any) []contracts.Item {
		var out []contracts.Item
		for i := 0; i < len(kv); i += 2 {
			out = append(out, contracts.Item{SKU: kv[i].(string), Qty: kv[i+1].(int)})
		}
		return out
	}
	stock := func(t *testing.T, s inventory.Store, sku string) inventory.Stock {
		t.Helper()
		st, err := s.Stock(ctx, sku)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	t.Run("ReserveAllOrNoneOnce", func(t *testing.T) {
		s := newStore(t)
		if o, err := s.Reserve(ctx, "o1", items("A", 3, "B", 4, "A", 1)); err != nil || !o.Reserved {
			t.Fatalf("reserve: %+v, %v", o, err)
		}
		if o, _ := s.Reserve(ctx, "o1", items("A", 3, "B", 4, "A", 1)); !o.Reserved {
			t.Fatalf("the same order again: %+v, want reserved as the first", o)
		}
		if a, b := stock(t, s, "A"), stock(t, s, "B"); a != (inventory.Stock{SKU: "A", Available: 6, Reserved: 4}) || b != (inventory.Stock{SKU: "B", Available: 6, Reserved: 4}) {
			t.Fatalf("after one reservation (once): %+v %+v", a, b)
		}
		o, _ := s.Reserve(ctx, "o2", items("A", 1, "B", 7))
		if o.Reserved || o.Short != "B" {
			t.Fatalf("too much B: %+v, want rejected naming B", o)
		}
		if a := stock(t, s, "A"); a.Available != 6 {
			t.Fatalf("a rejected order took A: %+v", a)
		}
		if o, _ := s.Reserve(ctx, "o3", items(inventory.OutOfStock, 1)); o.Reserved || o.Short != inventory.OutOfStock {
			t.Fatalf("OUT-OF-STOCK: %+v", o)
		}
	})
	t.Run("ReleaseGivesBackOnceAndForbidsALateReserve", func(t *testing.T) {
		s := newStore(t)
		_, _ = s.Reserve(ctx, "o1", items("A", 5))
		if ok, err := s.Release(ctx, "o1"); err != nil || !ok {
			t.Fatalf("release: %v, %v", ok, err)
		}
		if ok, _ := s.Release(ctx, "o1"); ok {
			t.Fatal("released twice")
		}
		if a := stock(t, s, "A"); a != (inventory.Stock{SKU: "A", Available: 10}) {
			t.Fatalf("after the release: %+v", a)
		}
		if ok, _ := s.Release(ctx, "early"); ok {
			t.Fatal("a release before any reservation gave stock back")
		}
		if o, _ := s.Reserve(ctx, "early", items("A", 1)); o.Reserved || !o.Released {
			t.Fatalf("a reservation after the release: %+v, want refused", o)
		}
	})
	t.Run("ConcurrentOrdersNeverOversell", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		reserved := 0
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, err := s.Reserve(ctx, fmt.Sprint("c", i), items("A", 1))
				if err != nil {
					t.Error(err)
				}
				if o.Reserved {
					mu.Lock()
					reserved++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if a := stock(t, s, "A"); reserved != 10 || a != (inventory.Stock{SKU: "A", Available: 0, Reserved: 10}) {
			t.Fatalf("30 orders of 1 on a stock of 10: %d reserved, %+v", reserved, a)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(*testing.T) inventory.Store { return inventory.NewMemoryStore(inventory.Config{InitialStock: 10}) })
}

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	testStore(t, func(*testing.T) inventory.Store {
		return inventory.NewRedisStore(rdb, fmt.Sprintf("{t%06x:stock}", rand.IntN(1<<24)), inventory.Config{InitialStock: 10})
	})
}

func TestConfig_InitialStock(t *testing.T) {
	t.Setenv("INVENTORY_INITIAL_STOCK", "")
	if c, err := inventory.NewConfig(); err != nil || c.InitialStock != inventory.DefaultInitialStock {
		t.Fatalf("default: %+v, %v", c, err)
	}
	t.Setenv("INVENTORY_INITIAL_STOCK", "-3")
	if _, err := inventory.NewConfig(); err == nil || !strings.Contains(err.Error(), "INVENTORY_INITIAL_STOCK") || !strings.Contains(err.Error(), "-3") {
		t.Fatalf("a negative stock: %v, want an error naming the variable and value", err)
	}
}
