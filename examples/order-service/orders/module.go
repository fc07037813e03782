package orders

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/flow"
	httpmod "github.com/catga-go/catga/modules/http"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/redismod"
)

// Module is the order service: its store, handlers and routes.
var Module = fx.Module("orders",
	fx.Provide(NewStore, NewProjector, NewConfig, NewSaga, NewFlowStore),
	flow.Steps[SagaState](),
	cqrs.Command[CreateOrder, OrderID](NewCreateOrderHandler),
	cqrs.Query[GetOrder, Order](NewGetOrderHandler),
	cqrs.Query[ListOrders, OrderList](NewListOrdersHandler),
	cqrs.EventMethod((*Projector).OrderCreated),
	cqrs.EventMethod((*Projector).StockReserved),
	cqrs.EventMethod((*Projector).StockRejected),
	cqrs.EventMethod((*Projector).PaymentCompleted),
	cqrs.EventMethod((*Projector).PaymentFailed),
	cqrs.EventMethod((*Projector).OrderShipped),
	cqrs.EventMethod((*Projector).OrderCancelled),
	cqrs.EventMethod((*Projector).StockReleased),
	cqrs.EventMethod((*Projector).PaymentRefunded),
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

// Created is the answer to POST /orders: {"id": "..."}.
type Created struct {
	ID OrderID `json:"id"`
}

// NewRoutes serves POST /orders, GET /orders/{id}, GET /orders?status=
// and the sagas' state and history, GET /flows/order/{id}.
func NewRoutes(bus *cqrs.Bus, flows flow.Store) httpmod.MountFunc {
	return func(r chi.Router) {
		r.Mount("/flows", http.StripPrefix("/flows", flow.Handler(flows)))
		r.Post("/orders", httpmod.Command[CreateOrder, OrderID](bus, http.StatusCreated,
			func(id OrderID) any { return Created{ID: id} }))
		r.Get("/orders/{id}", httpmod.Query[GetOrder, Order](bus, func(r *http.Request) (GetOrder, error) {
			return GetOrder{ID: OrderID(chi.URLParam(r, "id"))}, nil
		}))
		r.Get("/orders", httpmod.Query[ListOrders, OrderList](bus, func(r *http.Request) (ListOrders, error) {
			return ListOrders{Status: Status(r.URL.Query().Get("status"))}, nil
		}))
	}
}
