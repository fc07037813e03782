package httpmod_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

type CreateOrder struct {
	CustomerID string `json:"customer_id"`
	Items      []Item `json:"items"`
}

func (c CreateOrder) Validate() error {
	if c.CustomerID == "" {
		return errors.New("customer_id is required")
	}
	return nil
}

type OrderID string

type GetOrder struct{ ID string }

type Order struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
}

// orders is an order service on a real bus: CreateOrder answers
// "order-<customer>", unless the customer is "taken" (conflict) or "panic";
// GetOrder finds "o1" only.
type orders struct {
	created     atomic.Int32
	correlation atomic.Value // of the last CreateOrder
}

func (o *orders) create(ctx context.Context, c CreateOrder) (OrderID, error) {
	o.created.Add(1)
	if m, ok := cqrs.MessageFrom(ctx); ok {
		o.correlation.Store(m.Envelope().CorrelationID)
	}
	switch c.CustomerID {
	case "taken":
		return "", cqrs.Errorf(cqrs.CodeConflict, "customer %s has an open order", c.CustomerID)
	case "panic":
		panic("nil map in " + secret)
	}
	return OrderID("order-" + c.CustomerID), nil
}

func (o *orders) get(_ context.Context, q GetOrder) (Order, error) {
	if q.ID != "o1" {
		return Order{}, cqrs.Errorf(cqrs.CodeNotFound, "order %s not found", q.ID)
	}
	return Order{ID: "o1", CustomerID: "c1"}, nil
}

func newBus(t *testing.T, o *orders) *cqrs.Bus {
	t.Helper()
	bus, err := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](o.create)),
		cqrs.HandleQuery(cqrs.QueryHandlerFunc[GetOrder, Order](o.get)),
	)
	if err != nil {
		t.Fatalf("cqrs.New: %v", err)
	}
	return bus
}

func bindGetOrder(r *http.Request) (GetOrder, error) {
	id := chi.URLParam(r, "id")
	if id == "-" {
		return GetOrder{}, cqrs.NewError(cqrs.CodeInvalid, "id is required")
	}
	return GetOrder{ID: id}, nil
}

// orderServer serves POST /orders and GET /orders/{id} from o with a body
// limit of maxBody bytes (0 for the default).
func orderServer(t *testing.T, o *orders, maxBody int64) http.Handler {
	t.Helper()
	bus := newBus(t, o)
	s := newServer(t, httpmod.Config{MaxBodyBytes: maxBody}, nil, httpmod.MountFunc(func(r chi.Router) {
		r.Post("/orders", httpmod.Command[CreateOrder, OrderID](bus, http.StatusCreated, func(id OrderID) any {
			return map[string]OrderID{"id": id}
		}))
		r.Post("/orders/raw", httpmod.Command[CreateOrder, OrderID](bus, http.StatusAccepted, nil))
		r.Post("/orders/wrong-result", httpmod.Command[CreateOrder, string](bus, http.StatusCreated, nil))
		r.Post("/unhandled", httpmod.Command[Item, OrderID](bus, http.StatusCreated, nil))
		r.Get("/orders/{id}", httpmod.Query[GetOrder, Order](bus, bindGetOrder))
	}))
	return s.Handler()
}

func post(target, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestCommand_WritesStatusAndRespondedJSON(t *testing.T) {
	o := &orders{}
	rec := do(t, orderServer(t, o, 0), post("/orders", `{"customer_id":"c1","items":[{"sku":"A","qty":2}]}`))

	if rec.Code != http.StatusCreated {
		t.Fatalf("status code: got %d, want %d (body %s)", rec.Code, http.StatusCreated, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want %q", got, "application/json")
	}
	if got, want := strings.TrimSpace(rec.Body.String()), `{"id":"order-c1"}`; got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
}

func TestCommand_WritesResultItselfWithoutRespond(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders/raw", `{"customer_id":"c1"}`))

	if rec.Code != http.StatusAccepted {
		t.Fatalf("status code: got %d, want %d (body %s)", rec.Code, http.StatusAccepted, rec.Body)
	}
	if got, want := strings.TrimSpace(rec.Body.String()), `"order-c1"`; got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
}

func TestCommand_FailedValidation422AndHandlerNotRun(t *testing.T) {
	o := &orders{}
	rec := do(t, orderServer(t, o, 0), post("/orders", `{"customer_id":""}`))

	p := problemOf(t, rec, http.StatusUnprocessableEntity)
	if p.Code != "invalid" {
		t.Errorf("code: got %q, want %q", p.Code, "invalid")
	}
	if !strings.Contains(p.Detail, "customer_id is required") {
		t.Errorf("detail: got %q, want it to name the failed rule", p.Detail)
	}
	if n := o.created.Load(); n != 0 {
		t.Errorf("handler runs: got %d, want 0", n)
	}
}

func TestCommand_HandlerErrorCodeSetsStatus(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders", `{"customer_id":"taken"}`))

	p := problemOf(t, rec, http.StatusConflict)
	if p.Code != "conflict" || p.Detail != "customer taken has an open order" {
		t.Errorf("problem: got code %q detail %q, want conflict and the handler's message", p.Code, p.Detail)
	}
}

func TestCommand_HandlerPanic500WithoutPanicText(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders", `{"customer_id":"panic"}`))

	p := problemOf(t, rec, http.StatusInternalServerError)
	if p.Code != "internal" {
		t.Errorf("code: got %q, want %q", p.Code, "internal")
	}
	if body := rec.Body.String(); strings.Contains(body, "hunter2") || strings.Contains(body, "nil map") {
		t.Errorf("500 body leaks the panic: %s", body)
	}
}

func TestCommand_NoHandler503(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/unhandled", `{"sku":"A"}`))

	if p := problemOf(t, rec, http.StatusServiceUnavailable); p.Code != "unavailable" {
		t.Errorf("code: got %q, want %q", p.Code, "unavailable")
	}
}

func TestCommand_WrongResultType500(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders/wrong-result", `{"customer_id":"c1"}`))

	if p := problemOf(t, rec, http.StatusInternalServerError); p.Code != "internal" {
		t.Errorf("code: got %q, want %q", p.Code, "internal")
	}
}

func TestCommand_RequestIDIsTheCorrelationID(t *testing.T) {
	o := &orders{}
	req := post("/orders", `{"customer_id":"c1"}`)
	req.Header.Set("X-Request-Id", "req-7")
	do(t, orderServer(t, o, 0), req)

	if got, _ := o.correlation.Load().(string); got != "req-7" {
		t.Errorf("correlation id: got %q, want %q", got, "req-7")
	}
}

func TestCommand_RejectsBadBodies(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"whitespace only", " \n\t"},
		{"truncated", `{"customer_id":`},
		{"not JSON", `customer_id=c1`},
		{"wrong shape", `["c1"]`},
		{"wrong field type", `{"customer_id":42}`},
		{"second value", `{"customer_id":"c1"} {"customer_id":"c2"}`},
		{"trailing garbage", `{"customer_id":"c1"}x`},
		{"trailing bracket", `{"customer_id":"c1"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &orders{}
			rec := do(t, orderServer(t, o, 0), post("/orders", tc.body))

			p := problemOf(t, rec, http.StatusBadRequest)
			if p.Code != httpmod.CodeMalformed {
				t.Errorf("code: got %q, want %q", p.Code, httpmod.CodeMalformed)
			}
			if n := o.created.Load(); n != 0 {
				t.Errorf("handler runs: got %d, want 0", n)
			}
		})
	}
}

func TestCommand_EmptyBodySaysSo(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders", ""))

	if p := problemOf(t, rec, http.StatusBadRequest); !strings.Contains(p.Detail, "empty") {
		t.Errorf("detail: got %q, want it to say the body is empty", p.Detail)
	}
}

func TestCommand_AcceptsTrailingWhitespace(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders", "{\"customer_id\":\"c1\"}\n\n"))

	if rec.Code != http.StatusCreated {
		t.Errorf("status code: got %d, want %d (body %s)", rec.Code, http.StatusCreated, rec.Body)
	}
}

const limit = 64

// orderOfSize returns a CreateOrder body of exactly n bytes.
func orderOfSize(t *testing.T, n int) string {
	t.Helper()
	const frame = `{"customer_id":""}`
	if n < len(frame)+1 {
		t.Fatalf("orderOfSize(%d): want at least %d", n, len(frame)+1)
	}
	return `{"customer_id":"` + strings.Repeat("c", n-len(frame)) + `"}`
}

func TestBodyLimit_AtLimitIsAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(body string) *http.Request
	}{
		{"with Content-Length", func(b string) *http.Request { return post("/orders", b) }},
		{"chunked", func(b string) *http.Request { return chunked(http.MethodPost, "/orders", b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, orderServer(t, &orders{}, limit), tc.req(orderOfSize(t, limit)))
			if rec.Code != http.StatusCreated {
				t.Errorf("status code: got %d, want %d (body %s)", rec.Code, http.StatusCreated, rec.Body)
			}
		})
	}
}

func TestBodyLimit_OverLimit413(t *testing.T) {
	tests := []struct {
		name string
		req  func(t *testing.T) *http.Request
	}{
		{"Content-Length says so", func(t *testing.T) *http.Request { return post("/orders", orderOfSize(t, limit+1)) }},
		{"chunked, value over the limit", func(t *testing.T) *http.Request {
			return chunked(http.MethodPost, "/orders", orderOfSize(t, 4*limit))
		}},
		// The JSON value fits; the body does not. A body over the limit is
		// 413 whatever it holds, and the body is not "more data".
		{"chunked, whitespace past the limit", func(t *testing.T) *http.Request {
			return chunked(http.MethodPost, "/orders", `{"customer_id":"c1"}`+strings.Repeat(" ", 4*limit))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &orders{}
			rec := do(t, orderServer(t, o, limit), tc.req(t))

			p := problemOf(t, rec, http.StatusRequestEntityTooLarge)
			if p.Code != httpmod.CodeTooLarge {
				t.Errorf("code: got %q, want %q (detail %q)", p.Code, httpmod.CodeTooLarge, p.Detail)
			}
			if n := o.created.Load(); n != 0 {
				t.Errorf("handler runs: got %d, want 0", n)
			}
		})
	}
}

func TestBodyLimit_DefaultIsOneMiB(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), post("/orders", orderOfSize(t, 1<<20+1)))
	problemOf(t, rec, http.StatusRequestEntityTooLarge)

	rec = do(t, orderServer(t, &orders{}, 0), post("/orders", orderOfSize(t, 1<<20)))
	if rec.Code != http.StatusCreated {
		t.Errorf("status code of a 1 MiB body: got %d, want %d", rec.Code, http.StatusCreated)
	}
}

func TestDecode_ReadsTheValue(t *testing.T) {
	req := post("/", `{"customer_id":"c1","items":[{"sku":"A","qty":2}]}`)
	got, err := httpmod.Decode[CreateOrder](req)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.CustomerID != "c1" || len(got.Items) != 1 || got.Items[0] != (Item{SKU: "A", Qty: 2}) {
		t.Errorf("Decode: got %+v", got)
	}
}

func TestDecode_ErrorsAreRequestErrors(t *testing.T) {
	_, err := httpmod.Decode[CreateOrder](post("/", `{`))
	var re *httpmod.RequestError
	if !errors.As(err, &re) {
		t.Fatalf("Decode error: got %T %v, want a *RequestError", err, err)
	}
	if re.Status != http.StatusBadRequest || re.Code != httpmod.CodeMalformed {
		t.Errorf("RequestError: got %d %q, want %d %q", re.Status, re.Code, http.StatusBadRequest, httpmod.CodeMalformed)
	}
}

func TestQuery_WritesResult200(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), httptest.NewRequest(http.MethodGet, "/orders/o1", nil))

	if rec.Code != http.StatusOK {
		t.Fatalf("status code: got %d, want %d (body %s)", rec.Code, http.StatusOK, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want %q", got, "application/json")
	}
	var got Order
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body, err)
	}
	if want := (Order{ID: "o1", CustomerID: "c1"}); got != want {
		t.Errorf("body: got %+v, want %+v", got, want)
	}
}

func TestQuery_NotFound404(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), httptest.NewRequest(http.MethodGet, "/orders/nope", nil))

	p := problemOf(t, rec, http.StatusNotFound)
	if p.Code != "not_found" {
		t.Errorf("code: got %q, want %q", p.Code, "not_found")
	}
	if p.Detail != "order nope not found" {
		t.Errorf("detail: got %q, want %q", p.Detail, "order nope not found")
	}
	if p.Instance != "/orders/nope" {
		t.Errorf("instance: got %q, want %q", p.Instance, "/orders/nope")
	}
}

func TestQuery_BindErrorIsAProblem(t *testing.T) {
	rec := do(t, orderServer(t, &orders{}, 0), httptest.NewRequest(http.MethodGet, "/orders/-", nil))

	if p := problemOf(t, rec, http.StatusUnprocessableEntity); p.Detail != "id is required" {
		t.Errorf("detail: got %q, want %q", p.Detail, "id is required")
	}
}
