package system

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/catga-go/catga/modules/natsmod/natstest"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func orderCount() int {
	if testing.Short() {
		return 100
	}
	return 500
}

// replicas starts n replicas of every service with env.
func replicas(t *testing.T, n int, env ...string) map[string][]*proc {
	t.Helper()
	out := map[string][]*proc{}
	for _, s := range services {
		for r := 1; r <= n; r++ {
			out[s] = append(out[s], startService(t, s, fmt.Sprint(r), env...))
		}
	}
	return out
}

func bases(ps []*proc) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = "http://" + p.addr
	}
	return out
}

// chargeCounts returns how many paid orders were charged once, and the
// extra charges of the others.
func chargeCounts(t *testing.T, paymentBases []string, paid []string) (once, extra int) {
	t.Helper()
	for i, id := range paid {
		switch n := charges(t, paymentBases[i%len(paymentBases)], id); {
		case n == 1:
			once++
		case n == 0:
			t.Fatalf("paid order %s has no charge", id)
		default:
			extra += n - 1
		}
	}
	return once, extra
}

func redisEnv(t *testing.T, transport string, extra ...string) []string {
	srv := redistest.Start(t)
	return append([]string{
		"CATGA_TRANSPORT=" + transport, "REDIS_URL=" + srv.URL(), fmt.Sprintf("REDIS_PREFIX=sys%06x", rand.IntN(1<<24)),
		"REDIS_CLAIM_IDLE=2s", "REDIS_BLOCK=500ms",
	}, extra...)
}

// Two replicas of each service, transport Redis, stores Redis: orders
// posted round-robin reach their states and every paid order is charged
// exactly once.
func TestReplicas_RedisTransportRedisStores(t *testing.T) {
	ps := replicas(t, 2, redisEnv(t, "redis")...)
	paid := runOrders(t, bases(ps["order-service"]), orderCases(orderCount()))
	once, extra := chargeCounts(t, bases(ps["payment-service"]), paid)
	if extra != 0 {
		t.Fatalf("%d paid orders, %d extra charges; want exactly one each", len(paid), extra)
	}
	t.Logf("%d orders over 2 replicas x 4 services on Redis: %d paid, each charged once", orderCount(), once)
}

// The same with NATS (embedded) for messages and Redis for the stores.
func TestReplicas_NATSTransportRedisStores(t *testing.T) {
	nats := natstest.Start(t)
	ps := replicas(t, 2, redisEnv(t, "nats", "NATS_URL="+nats.URL(), "NATS_ACK_WAIT=2s")...)
	paid := runOrders(t, bases(ps["order-service"]), orderCases(orderCount()))
	once, extra := chargeCounts(t, bases(ps["payment-service"]), paid)
	if extra != 0 {
		t.Fatalf("%d paid orders, %d extra charges; want exactly one each", len(paid), extra)
	}
	t.Logf("%d orders over 2 replicas x 4 services on NATS with Redis stores: %d paid, each charged once", orderCount(), once)
}

// A payment replica is killed (SIGKILL) halfway: every order still reaches
// its state, and no order is charged twice: a handler killed between its
// charge and its ack runs again on the other replica, where the charge's
// transaction finds the inbox mark it committed with.
func TestReplicas_PaymentReplicaKilledHalfway(t *testing.T) {
	ps := replicas(t, 2, redisEnv(t, "redis")...)
	orderBases := bases(ps["order-service"])
	cases := orderCases(orderCount())
	ids := postOrders(t, orderBases, cases, func() { ps["payment-service"][0].kill() }) // orders in flight
	paid := waitOrders(t, orderBases, cases, ids)
	once, extra := chargeCounts(t, bases(ps["payment-service"][1:]), paid)
	t.Logf("%d orders, payment-service/1 SIGKILLed after %d were posted: all reached their states; %d paid, %d charged once, %d duplicate charges",
		len(cases), len(cases)/2, len(paid), once, extra)
	if extra != 0 {
		t.Fatalf("%d duplicate charges; the charge, its inbox mark and its outcome commit together", extra)
	}
	if resp, err := client.Get("http://" + ps["payment-service"][1].addr + "/ready"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the surviving payment replica is not ready: %v", err)
	}
}
