// Package inventory is the inventory service. It keeps each SKU's stock
// (available and reserved; every SKU starts at INVENTORY_INITIAL_STOCK,
// 1,000,000 by default, except "OUT-OF-STOCK", which starts at 0) and
// answers the order saga's commands: ReserveStock takes an order's items
// from available to reserved, all or none (StockReserved, or StockRejected
// naming the SKU that is short), and ReleaseStock gives them back
// (StockReleased). Each order is reserved and released at most once: a
// redelivered command is answered as the first was, and an order released
// before its reservation came can reserve nothing. GET /inventory/{sku}
// answers {"sku", "available", "reserved"}.
package inventory

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
	httpmod "github.com/catga-go/catga/modules/http"
	"github.com/catga-go/catga/modules/redismod"
)

// OutOfStock is the SKU that starts with no stock.
const OutOfStock = "OUT-OF-STOCK"

// Module is the inventory service.
var Module = fx.Module("inventory",
	fx.Provide(NewConfig, NewStore, NewHandlers),
	cqrs.CommandMethod((*Handlers).Reserve),
	cqrs.CommandMethod((*Handlers).Release),
	cqrs.Query[GetStock, Stock](NewGetStockHandler),
	httpmod.Routes(NewRoutes),
)

// Config is the inventory's configuration, from the environment.
type Config struct {
	InitialStock int64 // INVENTORY_INITIAL_STOCK: what every SKU starts with
}

// DefaultInitialStock is INVENTORY_INITIAL_STOCK's default.
const DefaultInitialStock = 1_000_000

// NewConfig reads INVENTORY_INITIAL_STOCK.
func NewConfig() (Config, error) {
	c := Config{InitialStock: DefaultInitialStock}
	if v := os.Getenv("INVENTORY_INITIAL_STOCK"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("INVENTORY_INITIAL_STOCK: want a count of 0 or more, got %q", v)
		}
		c.InitialStock = n
	}
	return c, nil
}

// initial is what sku starts with.
func (c Config) initial(sku string) int64 {
	if sku == OutOfStock {
		return 0
	}
	return c.InitialStock
}

// Stock is one SKU's counts, as GET /inventory/{sku} answers.
type Stock struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
}

// GetStock asks for one SKU's counts.
type GetStock struct {
	SKU string `json:"sku"`
}

// Validate requires the SKU.
func (q GetStock) Validate() error {
	if q.SKU == "" {
		return cqrs.NewError(cqrs.CodeInvalid, "sku is required")
	}
	return nil
}

// Outcome is what became of an order's reservation.
type Outcome struct {
	Reserved bool   // the items are reserved
	Short    string // the SKU that had too little, when not reserved
	Released bool   // the order was released before it could reserve
}

// Store keeps the stock and each order's reservation.
type Store interface {
	// Reserve reserves items for orderID, all or none, once: a second call
	// returns the first's outcome; an order released before reserves
	// nothing.
	Reserve(ctx context.Context, orderID string, items []contracts.Item) (Outcome, error)
	// Release gives back what orderID reserved, once, and marks it
	// released; it reports whether stock went back.
	Release(ctx context.Context, orderID string) (bool, error)
	Stock(ctx context.Context, sku string) (Stock, error)
}

// Handlers answer the inventory's commands.
type Handlers struct {
	bus   *cqrs.Bus
	store Store
}

// NewHandlers returns the command handlers.
func NewHandlers(bus *cqrs.Bus, store Store) *Handlers { return &Handlers{bus: bus, store: store} }

// Reserve handles ReserveStock.
func (h *Handlers) Reserve(ctx context.Context, c contracts.ReserveStock) (struct{}, error) {
	o, err := h.store.Reserve(ctx, c.OrderID, c.Items)
	if err != nil {
		return struct{}{}, err
	}
	if !o.Reserved {
		return struct{}{}, h.bus.Publish(ctx, contracts.StockRejected{OrderID: c.OrderID, SKU: cmp.Or(o.Short, "(released)")})
	}
	return struct{}{}, h.bus.Publish(ctx, contracts.StockReserved{OrderID: c.OrderID, TotalCents: c.TotalCents})
}

// Release handles ReleaseStock.
func (h *Handlers) Release(ctx context.Context, c contracts.ReleaseStock) (struct{}, error) {
	if _, err := h.store.Release(ctx, c.OrderID); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, h.bus.Publish(ctx, contracts.StockReleased(c))
}

// NewGetStockHandler returns the handler of GetStock.
func NewGetStockHandler(store Store) cqrs.QueryHandlerFunc[GetStock, Stock] {
	return func(ctx context.Context, q GetStock) (Stock, error) { return store.Stock(ctx, q.SKU) }
}

// NewRoutes serves GET /inventory/{sku}.
func NewRoutes(bus *cqrs.Bus) httpmod.MountFunc {
	return func(r chi.Router) {
		r.Get("/inventory/{sku}", httpmod.Query[GetStock, Stock](bus, func(r *http.Request) (GetStock, error) {
			return GetStock{SKU: chi.URLParam(r, "sku")}, nil
		}))
	}
}

// StoreParams choose the store: Redis when a client is provided.
type StoreParams struct {
	fx.In

	Config Config
	Redis  redis.UniversalClient `optional:"true"`
	Prefix redismod.KeyPrefix    `optional:"true"`
}

// NewStore returns the store StoreParams choose.
func NewStore(p StoreParams) Store {
	if p.Redis != nil {
		prefix := cmp.Or(string(p.Prefix), "catga") // a client not from redismod: its default
		return NewRedisStore(p.Redis, "{"+prefix+":stock}", p.Config)
	}
	return NewMemoryStore(p.Config)
}

// quantities sums items' quantities by SKU, in first-seen order.
func quantities(items []contracts.Item) (skus []string, qty map[string]int64) {
	qty = map[string]int64{}
	for _, it := range items {
		if _, ok := qty[it.SKU]; !ok {
			skus = append(skus, it.SKU)
		}
		qty[it.SKU] += int64(it.Qty)
	}
	return skus, qty
}
