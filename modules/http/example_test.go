package httpmod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/health"
	httpmod "github.com/catga-go/catga/modules/http"
)

type PlaceOrder struct {
	CustomerID string `json:"customer_id"`
}

func (p PlaceOrder) Validate() error {
	if p.CustomerID == "" {
		return errors.New("customer_id is required")
	}
	return nil
}

type FindOrder struct{ ID string }

type OrderView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// A service's HTTP API is a few lines: a route per command or query, with
// the bus's errors turned into problems.
func Example() {
	bus, err := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[PlaceOrder, string](func(_ context.Context, c PlaceOrder) (string, error) {
			return "o-" + c.CustomerID, nil
		})),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := httpmod.New(httpmod.Config{}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv.Mount(httpmod.MountFunc(func(r chi.Router) {
		r.Post("/orders", httpmod.Command[PlaceOrder, string](bus, http.StatusCreated, func(id string) any {
			return map[string]string{"id": id}
		}))
	}))

	for _, body := range []string{`{"customer_id":"c1"}`, `{}`, `{`} {
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		req.Header.Set("X-Request-Id", "req-1")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 201 {"id":"o-c1"}
	// 422 {"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"invalid PlaceOrder: customer_id is required","instance":"/orders","code":"invalid","request_id":"req-1"}
	// 400 {"type":"about:blank","title":"Bad Request","status":400,"detail":"malformed JSON body: unexpected end of JSON input","instance":"/orders","code":"malformed","request_id":"req-1"}
}

// Query builds the query from the request; a handler's not_found is a 404.
func ExampleQuery() {
	bus, err := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)},
		cqrs.HandleQuery(cqrs.QueryHandlerFunc[FindOrder, OrderView](func(_ context.Context, q FindOrder) (OrderView, error) {
			if q.ID != "o1" {
				return OrderView{}, cqrs.Errorf(cqrs.CodeNotFound, "order %s not found", q.ID)
			}
			return OrderView{ID: "o1", Status: "paid"}, nil
		})),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := httpmod.New(httpmod.Config{}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv.Mount(httpmod.MountFunc(func(r chi.Router) {
		r.Get("/orders/{id}", httpmod.Query[FindOrder, OrderView](bus, func(r *http.Request) (FindOrder, error) {
			return FindOrder{ID: chi.URLParam(r, "id")}, nil
		}))
	}))

	for _, path := range []string{"/orders/o1", "/orders/o2"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-Request-Id", "req-2")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 200 {"id":"o1","status":"paid"}
	// 404 {"type":"about:blank","title":"Not Found","status":404,"detail":"order o2 not found","instance":"/orders/o2","code":"not_found","request_id":"req-2"}
}

// WriteError maps any error to a problem; a 500 keeps its cause out of the
// response (the access log has it).
func ExampleWriteError() {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	httpmod.WriteError(rec, req, errors.New("pq: connection refused to 10.0.0.7"))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 500 {"type":"about:blank","title":"Internal Server Error","status":500,"detail":"internal error; quote the request id when reporting it","instance":"/orders","code":"internal"}
}

// Start listens at once, so a port in use fails startup; Stop drains.
// fx calls both from httpmod.Module.
func ExampleServer_Start() {
	reg := health.NewRegistry(time.Second)
	reg.SetState(health.Serving)
	srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, reg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	tr := &http.Transport{DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Get("http://" + srv.Addr() + "/ready")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(body))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(srv.Stop(ctx))
	// Output:
	// 200 {"status":"ok","state":"serving","checks":{}}
	// <nil>
}
