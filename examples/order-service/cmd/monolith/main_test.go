package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/examples/order-service/inventory"
	"github.com/catga-go/catga/examples/order-service/orders"
	"github.com/catga-go/catga/examples/order-service/shipping"
	httpmod "github.com/catga-go/catga/modules/http"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the monolith in process and returns its base URL.
func start(t *testing.T) string {
	t.Helper()
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("CATGA_SERVICE", "monolith")
	var srv *httpmod.Server
	app := fxtest.New(t, Modules, fx.Populate(&srv))
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	return "http://" + srv.Addr()
}

type order struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
	TotalCents int64  `json:"total_cents"`
	Status     string `json:"status"`
	Items      []struct {
		SKU string `json:"sku"`
	} `json:"items"`
	History []struct {
		Event     string    `json:"event"`
		MessageID string    `json:"message_id"`
		At        time.Time `json:"at"`
	} `json:"history"`
}

func do(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func createOrder(t *testing.T, base, body string) string {
	t.Helper()
	code, _, b := do(t, http.MethodPost, base+"/orders", body)
	if code != http.StatusCreated {
		t.Fatalf("POST /orders = %d %s, want 201", code, b)
	}
	var r struct{ ID string }
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		t.Fatalf("POST /orders body %s: no id", b)
	}
	return r.ID
}

// waitStatus polls the order until it reaches want or the time is up.
func waitStatus(t *testing.T, base, id, want string) order {
	t.Helper()
	var o order
	var code int
	var b []byte
	if !catgatest.Poll(5*time.Second, func() bool {
		o = order{}
		code, _, b = do(t, http.MethodGet, base+"/orders/"+id, "")
		if code != http.StatusOK {
			return false
		}
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		return o.Status == want
	}) {
		t.Fatalf("order %s: status %q (%d %s), want %q", id, o.Status, code, b, want)
	}
	return o
}

func events(o order) []string {
	var out []string
	for _, h := range o.History {
		out = append(out, h.Event)
	}
	return out
}

// waitHistory waits until order id's history holds n entries: each event's
// history entry is written by its own subscription, so the status can reach
// "shipped" before the PaymentCompleted entry lands.
func waitHistory(t *testing.T, base, id string, n int) order {
	t.Helper()
	var o order
	catgatest.Poll(5*time.Second, func() bool {
		o = order{}
		code, _, b := do(t, http.MethodGet, base+"/orders/"+id, "")
		if code != http.StatusOK {
			return false
		}
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		return len(o.History) >= n
	})
	return o
}

func assertHistoryOnce(t *testing.T, o order, want ...string) {
	t.Helper()
	got := events(o)
	seen := map[string]int{}
	ids := map[string]bool{}
	for _, h := range o.History {
		seen[h.Event]++
		if ids[h.MessageID] || h.MessageID == "" || h.At.IsZero() {
			t.Errorf("history entry %+v: empty or repeated message id, or no time", h)
		}
		ids[h.MessageID] = true
	}
	if len(got) != len(want) {
		t.Fatalf("history %v, want each of %v once", got, want)
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Fatalf("history %v, want each of %v once", got, want)
		}
	}
}

func charges(t *testing.T, base, id string) int {
	t.Helper()
	code, _, b := do(t, http.MethodGet, base+"/payments?order_id="+id, "")
	if code != http.StatusOK {
		t.Fatalf("GET /payments = %d %s", code, b)
	}
	var r struct {
		Charges []struct {
			OrderID     string `json:"order_id"`
			AmountCents int64  `json:"amount_cents"`
		} `json:"charges"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return len(r.Charges)
}

func TestFlow_OrderReachesShipped(t *testing.T) {
	base := start(t)
	id := createOrder(t, base, `{"customer_id":"c1","items":[{"sku":"A","qty":2,"price_cents":500}]}`)
	o := waitStatus(t, base, id, "shipped")
	if o.CustomerID != "c1" || o.TotalCents != 1000 || len(o.Items) != 1 || o.Items[0].SKU != "A" {
		t.Fatalf("order %+v", o)
	}
	assertHistoryOnce(t, waitHistory(t, base, id, 4), "OrderCreated", "StockReserved", "PaymentCompleted", "OrderShipped")
	if n := charges(t, base, id); n != 1 {
		t.Fatalf("%d charges for a paid order, want 1", n)
	}
}

func TestFlow_OutOfStockEndsRejected(t *testing.T) {
	base := start(t)
	id := createOrder(t, base, `{"customer_id":"c1","items":[{"sku":"A","qty":1,"price_cents":5},{"sku":"OUT-OF-STOCK","qty":1,"price_cents":5}]}`)
	o := waitStatus(t, base, id, "rejected")
	assertHistoryOnce(t, o, "OrderCreated", "StockRejected")
	if n := charges(t, base, id); n != 0 {
		t.Fatalf("%d charges for a rejected order, want 0", n)
	}
}

func TestFlow_TotalOverLimitEndsPaymentFailed(t *testing.T) {
	base := start(t)
	id := createOrder(t, base, `{"customer_id":"c1","items":[{"sku":"TV","qty":2,"price_cents":500001}]}`)
	waitStatus(t, base, id, "payment_failed")
	assertHistoryOnce(t, waitHistory(t, base, id, 4), "OrderCreated", "StockReserved", "PaymentFailed", "StockReleased")
	if n := charges(t, base, id); n != 0 {
		t.Fatalf("%d charges for a failed payment, want 0", n)
	}
	if st := stock(t, base, "TV"); st.Available != inventory.DefaultInitialStock || st.Reserved != 0 {
		t.Fatalf("TV after a failed payment: %+v, want the stock as before the order", st)
	}
}

type stockCounts struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
}

func stock(t *testing.T, base, sku string) stockCounts {
	t.Helper()
	code, _, b := do(t, http.MethodGet, base+"/inventory/"+sku, "")
	var st stockCounts
	if err := json.Unmarshal(b, &st); code != http.StatusOK || err != nil || st.SKU != sku {
		t.Fatalf("GET /inventory/%s = %d %s", sku, code, b)
	}
	return st
}

// The saga's compensation, counted: 200 orders whose payment fails leave
// the inventory as it was; the 10 shipped ones keep their stock reserved.
func TestSaga_FailedPaymentsReleaseTheirStock(t *testing.T) {
	base := start(t)
	before := stock(t, base, "TV")
	var failed, shipped []string
	for i := range 210 {
		if i%21 == 0 {
			shipped = append(shipped, createOrder(t, base, `{"customer_id":"c","items":[{"sku":"TV","qty":1,"price_cents":100}]}`))
			continue
		}
		failed = append(failed, createOrder(t, base, `{"customer_id":"c","items":[{"sku":"TV","qty":2,"price_cents":500001}]}`))
	}
	for _, id := range failed {
		waitStatus(t, base, id, "payment_failed")
	}
	for _, id := range shipped {
		waitStatus(t, base, id, "shipped")
	}
	want := stockCounts{SKU: "TV", Available: before.Available - int64(len(shipped)), Reserved: int64(len(shipped))}
	var got stockCounts
	if !catgatest.Poll(10*time.Second, func() bool { got = stock(t, base, "TV"); return got == want }) {
		t.Fatalf("TV after %d failed payments and %d shipped orders: %+v, want %+v", len(failed), len(shipped), got, want)
	}
	t.Logf("%d payment_failed orders released their stock; %d shipped hold theirs: %+v", len(failed), len(shipped), got)
}

// The saga's state and history are served at /flows/order/{id}.
func TestSaga_StateAndHistoryOverHTTP(t *testing.T) {
	base := start(t)
	id := createOrder(t, base, `{"customer_id":"c1","items":[{"sku":"A","qty":1,"price_cents":5}]}`)
	waitStatus(t, base, id, "shipped")
	var in struct {
		Flow    string          `json:"flow"`
		Key     string          `json:"key"`
		State   json.RawMessage `json:"state"`
		History []struct {
			Step string `json:"step"`
		} `json:"history"`
	}
	catgatest.Poll(5*time.Second, func() bool {
		_, _, b := do(t, http.MethodGet, base+"/flows/order/"+id, "")
		return json.Unmarshal(b, &in) == nil && len(in.History) == 4
	})
	var steps []string
	for _, h := range in.History {
		steps = append(steps, h.Step)
	}
	if in.Flow != "order" || in.Key != id || !strings.Contains(string(in.State), `"status":"shipped"`) ||
		strings.Join(steps, " ") != "OrderCreated StockReserved PaymentCompleted OrderShipped" {
		t.Fatalf("GET /flows/order/%s: %+v (state %s), want the shipped saga's four steps", id, in, in.State)
	}
}

// Without a payment service, an order is cancelled after
// ORDER_PAYMENT_TIMEOUT and its stock released.
func TestSaga_UnpaidOrderIsCancelledAndItsStockReleased(t *testing.T) {
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("ORDER_PAYMENT_TIMEOUT", "300ms")
	var srv *httpmod.Server
	app := fxtest.New(t, catga.Module, orders.Module, inventory.Module, shipping.Module, fx.Populate(&srv))
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	base := "http://" + srv.Addr()
	var ids []string
	for range 20 {
		ids = append(ids, createOrder(t, base, `{"customer_id":"c","items":[{"sku":"B","qty":3,"price_cents":10}]}`))
	}
	for _, id := range ids {
		waitStatus(t, base, id, "cancelled")
	}
	want := stockCounts{SKU: "B", Available: inventory.DefaultInitialStock}
	var got stockCounts
	if !catgatest.Poll(5*time.Second, func() bool { got = stock(t, base, "B"); return got == want }) {
		t.Fatalf("B after 20 cancelled orders: %+v, want %+v", got, want)
	}
}

func TestFlow_ManyOrdersEachChargedOnce(t *testing.T) {
	base := start(t)
	var ids []string
	for i := range 50 {
		ids = append(ids, createOrder(t, base, fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"A","qty":1,"price_cents":%d}]}`, i, 100+i)))
	}
	for _, id := range ids {
		waitStatus(t, base, id, "shipped")
		assertHistoryOnce(t, waitHistory(t, base, id, 4), "OrderCreated", "StockReserved", "PaymentCompleted", "OrderShipped")
		if n := charges(t, base, id); n != 1 {
			t.Fatalf("order %s charged %d times, want 1", id, n)
		}
	}
	code, _, b := do(t, http.MethodGet, base+"/orders?status=shipped", "")
	var list struct{ Orders []order }
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil || len(list.Orders) != 50 {
		t.Fatalf("GET /orders?status=shipped = %d, %d orders (%v); want 50", code, len(list.Orders), err)
	}
	for _, o := range list.Orders {
		if o.Status != "shipped" {
			t.Fatalf("listed order %s is %s", o.ID, o.Status)
		}
	}
	if code, _, b := do(t, http.MethodGet, base+"/orders?status=pending", ""); code != http.StatusOK || !bytes.Contains(b, []byte(`"orders":[]`)) {
		t.Fatalf("GET /orders?status=pending = %d %s, want an empty list", code, b)
	}
}

func TestHTTP_BadRequestsAreProblems(t *testing.T) {
	base := start(t)
	big := `{"customer_id":"` + strings.Repeat("x", 2<<20) + `","items":[{"sku":"A","qty":1,"price_cents":1}]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", http.MethodPost, "/orders", `{"customer_id":`, http.StatusBadRequest, "malformed"},
		{"wrong shape", http.MethodPost, "/orders", `{"items":"many"}`, http.StatusBadRequest, "malformed"},
		{"missing fields", http.MethodPost, "/orders", `{"items":[]}`, http.StatusUnprocessableEntity, "invalid"},
		{"bad item", http.MethodPost, "/orders", `{"customer_id":"c","items":[{"sku":"A","qty":0,"price_cents":1}]}`, http.StatusUnprocessableEntity, "invalid"},
		{"unknown id", http.MethodGet, "/orders/nope", "", http.StatusNotFound, "not_found"},
		{"bad status filter", http.MethodGet, "/orders?status=lost", "", http.StatusUnprocessableEntity, "invalid"},
		{"oversized body", http.MethodPost, "/orders", big, http.StatusRequestEntityTooLarge, "too_large"},
		{"payments without order", http.MethodGet, "/payments", "", http.StatusUnprocessableEntity, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, b := do(t, tt.method, base+tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("got %d %s, want %d", code, b, tt.status)
			}
			if ct := h.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			var p struct {
				Status    int
				Code      string
				Title     string
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(b, &p); err != nil || p.Status != tt.status || p.Code != tt.code || p.Title == "" || p.RequestID == "" {
				t.Fatalf("problem %s: got code %q, want %q with status, title and request id", b, p.Code, tt.code)
			}
		})
	}
}
