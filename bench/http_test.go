package bench

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/examples/order-service/inventory"
	"github.com/catga-go/catga/examples/order-service/orders"
	"github.com/catga-go/catga/examples/order-service/payment"
	"github.com/catga-go/catga/examples/order-service/shipping"
	httpmod "github.com/catga-go/catga/modules/http"
)

const orderBody = `{"customer_id":"c1","items":[{"sku":"A","qty":2,"price_cents":500}]}`

// load posts b.N orders to url from 16 clients, each keeping its
// connection alive.
func load(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: Publishers}}
	defer client.CloseIdleConnections()
	PublishParallel(b, func(int) error {
		resp, err := client.Post(url, "application/json", strings.NewReader(orderBody))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func init() {
	// catga: the monolith, as users run it: POST /orders decodes and
	// validates CreateOrder, stores the order and publishes OrderCreated;
	// the rest of the flow (four more events) runs on the memory transport.
	register("HTTPCreateOrder", "catga", func(b *testing.B, _ Env) {
		b.Setenv("LOG_LEVEL", "error")
		var srv *httpmod.Server
		app := fx.New(catga.Module, orders.Module, inventory.Module, payment.Module, shipping.Module, fx.NopLogger,
			fx.Replace(httpmod.Config{Addr: "127.0.0.1:0"}), fx.Populate(&srv))
		if err := app.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer app.Stop(context.Background())
		b.ResetTimer()
		load(b, "http://"+srv.Addr()+"/orders")
		b.StopTimer()
	})

	// raw: a bare chi handler doing the same store write: decode, validate,
	// total, store, answer 201 with the id; no bus, no events.
	register("HTTPCreateOrder", "raw", func(b *testing.B, _ Env) {
		store := orders.NewMemoryStore()
		r := chi.NewRouter()
		r.Post("/orders", func(w http.ResponseWriter, r *http.Request) {
			var c orders.CreateOrder
			if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := c.Validate(); err != nil {
				http.Error(w, err.Error(), http.StatusUnprocessableEntity)
				return
			}
			var total int64
			for _, it := range c.Items {
				total += int64(it.Qty) * it.PriceCents
			}
			id := orders.OrderID(cqrs.NewID())
			_ = store.Create(r.Context(), orders.Order{ID: id, CustomerID: c.CustomerID, Items: c.Items, TotalCents: total, Status: orders.StatusPending}, func(context.Context) error { return nil })
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]orders.OrderID{"id": id})
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: r}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		b.ResetTimer()
		load(b, "http://"+ln.Addr().String()+"/orders")
		b.StopTimer()
	})
}

func BenchmarkHTTPCreateOrder(b *testing.B) { compare(b, "HTTPCreateOrder", Env{}) }
