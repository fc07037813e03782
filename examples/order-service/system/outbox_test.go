package system

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// pgSystem is the four services over NATS, order-service and
// payment-service on PostgreSQL (a database each: state, outbox and inbox
// in one), inventory on Redis; or, redisStores, all of them on Redis
// (state, outbox and inbox in one MULTI/EXEC).
type pgSystem struct {
	nats               *natstest.Server
	orderDB, paymentDB string
	redisAddr, prefix  string
	redisStores        bool
	paymentTimeout     string // ORDER_PAYMENT_TIMEOUT of order-service; "" its default
	procs              map[string]*proc
}

func startPGSystem(t *testing.T) *pgSystem { return startSystem(t, false) }

func startSystem(t *testing.T, redisStores bool) *pgSystem {
	t.Helper()
	return startSystemWith(t, &pgSystem{redisStores: redisStores})
}

// startSystemWith starts the system s describes.
func startSystemWith(t *testing.T, s *pgSystem) *pgSystem {
	t.Helper()
	s.nats, s.procs = natstest.Start(t), map[string]*proc{}
	pg := pgtest.Shared(t)
	s.orderDB, s.paymentDB = pg.NewDatabase(t), pg.NewDatabase(t)
	rs := redistest.Start(t)
	s.redisAddr, s.prefix = rs.Addr(), fmt.Sprintf("sys%06x", rand.IntN(1<<24))
	for _, svc := range services {
		s.procs[svc] = s.start(t, svc)
	}
	return s
}

func (s *pgSystem) env(service string) []string {
	env := []string{"NATS_URL=" + s.nats.URL(), "CATGA_TRANSPORT=nats", "NATS_ACK_WAIT=2s", "PG_OUTBOX_LEAD_RETRY=200ms"}
	switch {
	case s.redisStores || service == "inventory-service":
		env = append(env, "REDIS_URL=redis://"+s.redisAddr+"/0", "REDIS_PREFIX="+s.prefix)
	case service == "order-service":
		env = append(env, "DATABASE_URL="+s.orderDB)
		if s.paymentTimeout != "" {
			env = append(env, "ORDER_PAYMENT_TIMEOUT="+s.paymentTimeout)
		}
	case service == "payment-service":
		env = append(env, "DATABASE_URL="+s.paymentDB)
	}
	return env
}

func (s *pgSystem) start(t *testing.T, service string) *proc {
	t.Helper()
	p := startService(t, service, "1", s.env(service)...)
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (s *pgSystem) base(service string) string { return "http://" + s.procs[service].addr }

// tryPost posts an order and returns its id, or the status and error of a
// failed POST.
func tryPost(base, body string) (string, int, error) {
	resp, err := client.Post(base+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", resp.StatusCode, fmt.Errorf("POST /orders = %d %s", resp.StatusCode, b)
	}
	var r struct{ ID string }
	if err := json.Unmarshal(b, &r); err != nil {
		return "", resp.StatusCode, err
	}
	return r.ID, resp.StatusCode, nil
}

// phantoms counts the charges and reservations of orders the order
// service does not have. A shipment follows a charge, so a phantom
// shipment would show as a phantom charge first.
func (s *pgSystem) phantoms(t *testing.T) (charges, reservations int) {
	t.Helper()
	ctx := context.Background()
	if s.redisStores {
		return s.redisPhantoms(t)
	}
	known := map[string]bool{}
	oc, err := pgx.Connect(ctx, s.orderDB)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close(ctx)
	rows, err := oc.Query(ctx, `SELECT id FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		known[id] = true
	}
	rows.Close()
	pc, err := pgx.Connect(ctx, s.paymentDB)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	rows, err = pc.Query(ctx, `SELECT order_id FROM charges`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		if !known[id] {
			charges++
		}
	}
	rows.Close()
	rdb := redis.NewClient(&redis.Options{Addr: s.redisAddr})
	defer rdb.Close()
	prefix := "{" + s.prefix + ":stock}:reservation:"
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if !known[strings.TrimPrefix(iter.Val(), prefix)] {
			reservations++
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return charges, reservations
}

// redisPhantoms is phantoms for the Redis stores: the orders are the
// members of order-service's index, the charges its lists.
func (s *pgSystem) redisPhantoms(t *testing.T) (charges, reservations int) {
	t.Helper()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: s.redisAddr})
	defer rdb.Close()
	ids, err := rdb.SMembers(ctx, "{"+s.prefix+":order-service}:all").Result()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	for pattern, n := range map[string]*int{
		"{" + s.prefix + ":payment-service}:charges:": &charges,
		"{" + s.prefix + ":stock}:reservation:":       &reservations,
	} {
		iter := rdb.Scan(ctx, 0, pattern+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if !known[strings.TrimPrefix(iter.Val(), pattern)] {
				*n++
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(known) == 0 {
		t.Fatal("no orders in order-service's Redis index: the phantom count would mean nothing")
	}
	return charges, reservations
}

// streamCopies reads every OrderCreated stored in CATGA_EVENTS and returns
// how many there are and how many distinct message ids they carry.
func streamCopies(t *testing.T, url string) (total, distinct int) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "CATGA_EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"catga.events.OrderCreated"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.NumPending)
	ids := map[string]bool{}
	for total < want {
		msgs, err := c.Fetch(min(want-total, 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range msgs.Messages() {
			ids[m.Headers().Get(jetstream.MsgIDHeader)] = true
			total++
			n++
		}
		if n == 0 {
			break
		}
	}
	return total, len(ids)
}

// The scenario of the outbox issue: NATS stopped for 40 s under 20
// orders/s. POST /orders answers 201 throughout (the order and its event
// commit to PostgreSQL); once NATS is back every accepted order reaches
// its terminal state, and nothing happens to an order the order service
// does not have.
func TestOutage_BrokerDown40sUnderLoad(t *testing.T) {
	brokerOutage(t, startPGSystem(t), 40*time.Second)
}

// The same with every store on Redis (state, outbox and inbox in one
// MULTI/EXEC), NATS down 10 s.
func TestOutage_BrokerDownRedisStores(t *testing.T) {
	brokerOutage(t, startSystem(t, true), 10*time.Second)
}

func brokerOutage(t *testing.T, s *pgSystem, outage time.Duration) {
	const rate, before, after = 20, 5 * time.Second, 5 * time.Second
	var (
		mu       sync.Mutex
		ids      []string
		cases    []orderCase
		failures []string
		during   int
	)
	var down bool
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	start := time.Now()
	all := orderCases(int((before + outage + after).Seconds() * rate))
	var wg sync.WaitGroup
	for i := 0; time.Since(start) < before+outage+after; i++ {
		<-tick.C
		switch el := time.Since(start); {
		case !down && el >= before && el < before+outage:
			s.nats.Shutdown()
			down = true
			t.Logf("NATS stopped after %d orders", i)
		case down && el >= before+outage:
			s.nats.StartAgain(t)
			down = false
			t.Logf("NATS started again after %d orders", i)
		}
		c := all[i%len(all)]
		outageNow := down
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := tryPost(s.base("order-service"), c.body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err.Error())
				return
			}
			ids, cases = append(ids, id), append(cases, c)
			if outageNow {
				during++
			}
		}()
	}
	wg.Wait()
	if down {
		s.nats.StartAgain(t)
	}
	if len(failures) > 0 {
		t.Fatalf("%d POSTs failed (the first: %s); want 201 throughout the outage", len(failures), failures[0])
	}
	paid := waitOrders(t, []string{s.base("order-service")}, cases, ids)
	phantomCharges, phantomReservations := s.phantoms(t)
	once, extra := chargeCounts(t, []string{s.base("payment-service")}, paid)
	t.Logf("broker down %v at %d orders/s: %d accepted (%d during the outage), 0 failed; all reached their states; %d paid, %d charged once, %d duplicate charges; phantom charges %d, phantom reservations %d",
		outage, rate, len(ids), during, len(paid), once, extra, phantomCharges, phantomReservations)
	if phantomCharges != 0 || phantomReservations != 0 {
		t.Fatalf("%d charges and %d reservations for orders the order service does not have", phantomCharges, phantomReservations)
	}
	if extra != 0 {
		t.Fatalf("%d duplicate charges; the payment transaction's inbox allows none", extra)
	}
	if during < int(outage.Seconds())*rate/2 {
		t.Fatalf("only %d orders accepted during the outage", during)
	}
}

// The order service is SIGKILLed while its outbox holds rows it could not
// relay (NATS down); NATS comes back and the service is started again:
// every row is relayed, each stored once in the stream, and every order
// reaches its state.
func TestOutage_OrderServiceKilledWithRowsInItsOutbox(t *testing.T) {
	s := startPGSystem(t)
	s.nats.Shutdown()
	cases := orderCases(60)
	ids := make([]string, len(cases))
	for i, c := range cases {
		id, _, err := tryPost(s.base("order-service"), c.body)
		if err != nil {
			t.Fatalf("POST with NATS down: %v", err)
		}
		ids[i] = id
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.orderDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var waiting int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM catga_outbox`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting != len(cases) {
		t.Fatalf("outbox holds %d rows with NATS down, want %d", waiting, len(cases))
	}
	s.procs["order-service"].kill()
	s.nats.StartAgain(t)
	s.procs["order-service"] = s.start(t, "order-service")
	waitOrders(t, []string{s.base("order-service")}, cases, ids)
	total, distinct := streamCopies(t, s.nats.URL())
	t.Logf("order-service SIGKILLed with %d rows in its outbox; restarted: %d OrderCreated in the stream, %d distinct", waiting, total, distinct)
	if total != len(cases) || distinct != len(cases) {
		t.Fatalf("%d OrderCreated stored (%d distinct), want %d, each once", total, distinct, len(cases))
	}
}
