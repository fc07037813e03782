package orders

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/contracts"
	httpmod "github.com/catga-go/catga/modules/http"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/redismod"
)

// Module is the order service: its store, handlers and routes.
var Module = fx.Module("orders",
	fx.Provide(NewStore, NewProjector),
	cqrs.Command[CreateOrder, OrderID](NewCreateOrderHandler),
	cqrs.Query[GetOrder, Order](NewGetOrderHandler),
	cqrs.Query[ListOrders, OrderList](NewListOrdersHandler),
	cqrs.Event[contracts.OrderCreated](func(p *Projector) cqrs.EventHandlerFunc[contracts.OrderCreated] { return p.OrderCreated }),
	cqrs.Event[contracts.StockReserved](func(p *Projector) cqrs.EventHandlerFunc[contracts.StockReserved] { return p.StockReserved }),
	cqrs.Event[contracts.StockRejected](func(p *Projector) cqrs.EventHandlerFunc[contracts.StockRejected] { return p.StockRejected }),
	cqrs.Event[contracts.PaymentCompleted](func(p *Projector) cqrs.EventHandlerFunc[contracts.PaymentCompleted] { return p.PaymentCompleted }),
	cqrs.Event[contracts.PaymentFailed](func(p *Projector) cqrs.EventHandlerFunc[contracts.PaymentFailed] { return p.PaymentFailed }),
	cqrs.Event[contracts.OrderShipped](func(p *Projector) cqrs.EventHandlerFunc[contracts.OrderShipped] { return p.OrderShipped }),
	httpmod.Routes(NewRoutes),
)

// StoreParams choose the store: Postgres when a database is provided (the
// services add pgmod when DATABASE_URL is set), else Redis when an outbox
// is (redismod, when REDIS_URL is set), memory otherwise.
type StoreParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	DB        *pgmod.DB        `optional:"true"`
	Outbox    *redismod.Outbox `optional:"true"`
}

// NewStore returns the store StoreParams choose.
func NewStore(p StoreParams) Store {
	switch {
	case p.DB != nil:
		s := NewPostgresStore(p.DB)
		p.Lifecycle.Append(fx.Hook{OnStart: s.Migrate}) // after the DB's own start
		return s
	case p.Outbox != nil:
		return NewRedisStore(p.Outbox)
	}
	return NewMemoryStore()
}

// NewRoutes serves POST /orders, GET /orders/{id} and GET /orders?status=.
func NewRoutes(bus *cqrs.Bus) httpmod.MountFunc {
	return func(r chi.Router) {
		r.Post("/orders", httpmod.Command[CreateOrder, OrderID](bus, http.StatusCreated,
			func(id OrderID) any { return map[string]OrderID{"id": id} }))
		r.Get("/orders/{id}", httpmod.Query[GetOrder, Order](bus, func(r *http.Request) (GetOrder, error) {
			return GetOrder{ID: OrderID(chi.URLParam(r, "id"))}, nil
		}))
		r.Get("/orders", httpmod.Query[ListOrders, OrderList](bus, func(r *http.Request) (ListOrders, error) {
			return ListOrders{Status: Status(r.URL.Query().Get("status"))}, nil
		}))
	}
}
