package system

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
)

type stockCounts struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
}

func stockOf(t *testing.T, base, sku string) stockCounts {
	t.Helper()
	resp, err := client.Get(base + "/inventory/" + sku)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st stockCounts
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /inventory/%s: %d, %v", sku, resp.StatusCode, err)
	}
	return st
}

// payments is an order's charges and refunds.
func payments(t *testing.T, base, id string) (charges, refunds int) {
	t.Helper()
	resp, err := client.Get(base + "/payments?order_id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Charges, Refunds []json.RawMessage }
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return len(r.Charges), len(r.Refunds)
}

// payment-service is down past ORDER_PAYMENT_TIMEOUT: the orders are
// cancelled by the saga's timeout and their stock released. When payment
// comes back it charges the commands that waited for it; each charge came
// after its order's cancellation, so the saga refunds it: every cancelled
// order ends with one charge and one refund, and stays cancelled.
func TestSaga_PaymentDownPastTheTimeoutCancelsAndRefunds(t *testing.T) {
	s := startSystemWith(t, &pgSystem{paymentTimeout: "3s"})
	inv := s.base("inventory-service")
	before := stockOf(t, inv, "C")
	s.procs["payment-service"].stop(t)
	const n = 20
	var ids []string
	for i := range n {
		ids = append(ids, postOrder(t, s.base("order-service"), fmt.Sprintf(`{"customer_id":"c%d","items":[{"sku":"C","qty":2,"price_cents":100}]}`, i)))
	}
	cases := make([]orderCase, n)
	for i := range cases {
		cases[i] = orderCase{want: "cancelled"}
	}
	waitOrders(t, []string{s.base("order-service")}, cases, ids)
	var st stockCounts
	if !catgatest.Poll(30*time.Second, func() bool { st = stockOf(t, inv, "C"); return st == before }) {
		t.Fatalf("C after %d cancelled orders: %+v, want as before %+v", n, st, before)
	}
	s.procs["payment-service"] = s.start(t, "payment-service")
	pay := s.base("payment-service")
	for _, id := range ids {
		var c, r int
		if !catgatest.Poll(60*time.Second, func() bool { c, r = payments(t, pay, id); return c == 1 && r == 1 }) {
			t.Fatalf("order %s: %d charges, %d refunds after payment came back; want 1 and 1", id, c, r)
		}
		if o, _ := getOrder(t, s.base("order-service"), id); o.Status != "cancelled" {
			t.Fatalf("order %s is %s after its late payment, want cancelled", id, o.Status)
		}
	}
	if st := stockOf(t, inv, "C"); st != before {
		t.Fatalf("C after the late payments: %+v, want %+v", st, before)
	}
	t.Logf("%d orders cancelled after 3 s with payment down, stock released (%+v); payment back: each charged once and refunded once", n, st)
}

// order-service, which holds the saga, is SIGKILLed while orders flow and
// started again: every order reaches its state, and nothing happened twice:
// one charge per paid order, one OrderShipped each, and the inventory
// holds exactly the shipped orders' stock (no reservation twice, every
// failed payment's released).
func TestSaga_OrderServiceKilledMidFlowCompletesEachOnce(t *testing.T) {
	s := startPGSystem(t)
	inv := s.base("inventory-service")
	before := stockOf(t, inv, "A")
	cases := orderCases(100)
	ids := postOrders(t, []string{s.base("order-service")}, cases[:50], nil)
	// Killed while the first half's sagas take their steps.
	done := 0
	for _, status := range []string{"shipped", "rejected", "payment_failed"} {
		done += listed(t, s.base("order-service"), status)
	}
	s.procs["order-service"].kill()
	if done >= 50 {
		t.Fatalf("every saga of the first 50 orders had finished before the kill: it tests nothing")
	}
	s.procs["order-service"] = s.start(t, "order-service")
	ids = append(ids, postOrders(t, []string{s.base("order-service")}, cases[50:], nil)...)
	paid := waitOrders(t, []string{s.base("order-service")}, cases, ids)
	for _, id := range paid {
		if c, _ := payments(t, s.base("payment-service"), id); c != 1 {
			t.Fatalf("order %s charged %d times, want 1", id, c)
		}
		var o order
		catgatest.Poll(10*time.Second, func() bool {
			o, _ = getOrder(t, s.base("order-service"), id)
			return len(o.History) >= 4
		})
		shipped := 0
		for _, h := range o.History {
			if h.Event == "OrderShipped" {
				shipped++
			}
		}
		if shipped != 1 {
			t.Fatalf("order %s shipped %d times, want once", id, shipped)
		}
	}
	want := stockCounts{SKU: "A", Available: before.Available - int64(2*len(paid)), Reserved: before.Reserved + int64(2*len(paid))}
	var st stockCounts
	if !catgatest.Poll(30*time.Second, func() bool { st = stockOf(t, inv, "A"); return st == want }) {
		t.Fatalf("A after %d shipped orders of 2: %+v, want %+v", len(paid), st, want)
	}
	tv := stockOf(t, inv, "TV")
	if tv.Reserved != 0 {
		t.Fatalf("TV: %+v: every payment_failed order's stock must be released", tv)
	}
	t.Logf("order-service SIGKILLed after 50 of 100 orders (%d of them finished) and restarted: %d shipped, each charged and shipped once; A %+v; TV %+v", done, len(paid), st, tv)
}

// listed is how many orders GET /orders?status= lists.
func listed(t *testing.T, base, status string) int {
	t.Helper()
	resp, err := client.Get(base + "/orders?status=" + status)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct{ Orders []json.RawMessage }
	_ = json.NewDecoder(resp.Body).Decode(&l)
	return len(l.Orders)
}
