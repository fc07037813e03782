package redismod_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/outbox/outboxtest"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/faultproxy"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// obClient is a client of its own on cfg, closed at cleanup.
func obClient(t *testing.T, cfg redismod.Config) redis.UniversalClient {
	t.Helper()
	rdb, err := redismod.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// obNew is an outbox of service on rdb under cfg's (unique) prefix, with a
// short lease and lead retry.
func obNew(t *testing.T, rdb redis.UniversalClient, cfg redismod.Config, service string) *redismod.Outbox {
	t.Helper()
	o, err := redismod.NewOutbox(rdb, cfg, service, redismod.OutboxConfig{Lease: time.Second, LeadRetry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func obHarness(t *testing.T, o *redismod.Outbox) outboxtest.Harness {
	return outboxtest.Harness{
		Open: func(*testing.T) outbox.Store { return o.Store() },
		Tx: func(ctx context.Context, key string, fn func(context.Context) error) error {
			var opts []redismod.TxOption
			if key != "" {
				opts = append(opts, redismod.Key(key))
			}
			return o.Tx(ctx, func(ctx context.Context, _ redis.Pipeliner) error { return fn(ctx) }, opts...)
		},
		Dead: func(t *testing.T) int {
			d, err := o.Store().DeadRecords(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			return len(d)
		},
	}
}

func TestOutboxConformance(t *testing.T) {
	srv := redistest.Start(t)
	outboxtest.TestStore(t, func(t *testing.T) outboxtest.Harness {
		cfg := testConfig(srv.URL())
		return obHarness(t, obNew(t, obClient(t, cfg), cfg, "svc"))
	})
}

func TestOutboxConformance_Cluster(t *testing.T) {
	cluster := redistest.StartCluster(t)
	outboxtest.TestStore(t, func(t *testing.T) outboxtest.Harness {
		cfg := testConfig("")
		cfg.Connection = cluster.Addrs()
		return obHarness(t, obNew(t, obClient(t, cfg), cfg, "svc"))
	})
}

type TxPlaced struct{ OrderID string }
type TxConfirmed struct{ OrderID string }

// obDeliveryBus is a bus on the memory transport whose handler of TxPlaced
// runs fn in a Tx of o, registered with cqrs.OwnInbox.
func obDeliveryBus(t *testing.T, o *redismod.Outbox, concurrency int, fn func(ctx context.Context, pipe redis.Pipeliner, e TxPlaced) error) (*cqrs.Bus, *memory.Transport) {
	t.Helper()
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	b, err := cqrs.New(cqrs.Options{Service: "payment", Instance: "i1", Transport: tr, Concurrency: concurrency,
		Delivery:   cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: &inbox.Memory{}, Service: "payment", Retry: cqrs.RetryPolicy{Attempts: 1}}),
		Redelivery: cqrs.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[TxPlaced](func(ctx context.Context, e TxPlaced) error {
			return o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error { return fn(ctx, pipe, e) })
		}), cqrs.OwnInbox(), cqrs.HandlerName("charger")))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})
	return b, tr
}

var txPlacedTopic = transport.Topic{Kind: transport.KindEvent, Name: "TxPlaced"}

// obDeliver publishes one TxPlaced envelope n times on tr: n deliveries of
// one message.
func obDeliver(t *testing.T, tr transport.Transport, n int) string {
	t.Helper()
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "TxPlaced", Kind: transport.KindEvent, ContentType: "application/json", Payload: []byte(`{"OrderID":"o1"}`)}
	for range n {
		if err := tr.Publish(context.Background(), txPlacedTopic, env); err != nil {
			t.Fatal(err)
		}
	}
	return env.ID
}

func obInt(t *testing.T, rdb redis.UniversalClient, key string) int {
	t.Helper()
	n, err := rdb.Get(context.Background(), key).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("GET %s: %v", key, err)
	}
	return n
}

// obKeys lists every key under o's hash tag (a single server).
func obKeys(t *testing.T, o *redismod.Outbox) []string {
	t.Helper()
	keys, err := o.Client().Keys(context.Background(), o.Key()+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func obDepth(t *testing.T, o *redismod.Outbox) int64 {
	t.Helper()
	n, err := o.Store().Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOutboxTx_RedeliveryAfterCommitIsSkipped(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "payment")
	var runs atomic.Int32
	var bus *cqrs.Bus
	ready := make(chan struct{})
	b, tr := obDeliveryBus(t, o, 1, func(ctx context.Context, pipe redis.Pipeliner, e TxPlaced) error {
		<-ready
		runs.Add(1)
		pipe.Incr(ctx, o.Key("charges", e.OrderID))
		return bus.Publish(ctx, TxConfirmed(e))
	})
	bus = b
	close(ready)
	obDeliver(t, tr, 2)
	catgatest.Eventually(t, 20*time.Second, "a run committed", func() bool { return obInt(t, o.Client(), o.Key("charges", "o1")) == 1 })
	time.Sleep(300 * time.Millisecond) // the second delivery settles
	if n := obInt(t, o.Client(), o.Key("charges", "o1")); n != 1 {
		t.Fatalf("%d effects of one message delivered twice, want 1", n)
	}
	if r := runs.Load(); r != 1 {
		t.Fatalf("fn ran %d times, want 1: the second delivery finds the inbox mark", r)
	}
	if d := obDepth(t, o); d != 1 {
		t.Fatalf("outbox depth %d, want the one TxConfirmed", d)
	}
}

func TestOutboxTx_FailureLeavesNoStateMarkOrMessageAndTheRedeliveryRuns(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "payment")
	var runs atomic.Int32
	var bus *cqrs.Bus
	var leftBehind []string
	ready := make(chan struct{})
	b, tr := obDeliveryBus(t, o, 1, func(ctx context.Context, pipe redis.Pipeliner, e TxPlaced) error {
		<-ready
		n := runs.Add(1)
		if n == 2 {
			leftBehind = obKeys(t, o) // what the first, failed run left
		}
		pipe.Incr(ctx, o.Key("charges", e.OrderID))
		if err := bus.Publish(ctx, TxConfirmed(e)); err != nil {
			return err
		}
		if n == 1 {
			return errors.New("crashed before commit")
		}
		return nil
	})
	bus = b
	close(ready)
	obDeliver(t, tr, 1)
	catgatest.Eventually(t, 20*time.Second, "the redelivery committed", func() bool { return obInt(t, o.Client(), o.Key("charges", "o1")) == 1 })
	if len(leftBehind) != 0 {
		t.Fatalf("after the failed run, keys %v exist; want none (no state, no mark, no outbox entry)", leftBehind)
	}
	if r, d := runs.Load(), obDepth(t, o); r != 2 || d != 1 {
		t.Fatalf("%d runs and outbox depth %d, want 2 and 1", r, d)
	}
}

func TestOutboxTx_ConcurrentDeliveriesOfOneMessageHaveOneEffect(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "payment")
	var runs atomic.Int32
	both := make(chan struct{})
	var once sync.Once
	_, tr := obDeliveryBus(t, o, 2, func(ctx context.Context, pipe redis.Pipeliner, e TxPlaced) error {
		if runs.Add(1) == 2 {
			once.Do(func() { close(both) })
		}
		select { // both deliveries run fn before either commits
		case <-both:
		case <-time.After(2 * time.Second):
		}
		pipe.Incr(ctx, o.Key("charges", e.OrderID))
		return nil
	})
	obDeliver(t, tr, 2)
	catgatest.Eventually(t, 20*time.Second, "committed", func() bool { return obInt(t, o.Client(), o.Key("charges", "o1")) >= 1 })
	time.Sleep(300 * time.Millisecond)
	if n := obInt(t, o.Client(), o.Key("charges", "o1")); n != 1 {
		t.Fatalf("%d effects of two concurrent deliveries of one message, want 1", n)
	}
	if r := runs.Load(); r != 2 {
		t.Fatalf("fn ran %d times, want 2: both ran, the loser's EXEC failed on the mark and its rerun skipped", r)
	}
}

func TestOutboxTx_OutsideADeliveryWritesNoInboxMark(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "orders")
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	err = o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
		pipe.Set(ctx, o.Key("order", "o1"), "placed", 0)
		return bus.Publish(ctx, TxConfirmed{OrderID: "o1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := obKeys(t, o)
	if len(keys) != 2 || obDepth(t, o) != 1 {
		t.Fatalf("keys %v, want the state key and the outbox stream of one entry", keys)
	}
}

// Read-modify-writes of one counter from many goroutines lose no update,
// guarded by Watch or by Key.
func TestOutboxTx_WatchAndKeyMakeReadModifyWriteSafe(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "counter")
	for _, tc := range []struct {
		name string
		opt  func(key string) redismod.TxOption
	}{
		{"Watch", func(key string) redismod.TxOption { return redismod.Watch(key) }},
		{"Key", func(string) redismod.TxOption { return redismod.Key("the-counter") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := o.Key("counter", tc.name)
			const writers, each = 8, 15
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						err := o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
							n, err := o.Client().Get(ctx, key).Int()
							if err != nil && !errors.Is(err, redis.Nil) {
								return err
							}
							pipe.Set(ctx, key, n+1, 0)
							return nil
						}, tc.opt(key))
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Tx: %v", err)
			}
			if n := obInt(t, o.Client(), key); n != writers*each {
				t.Fatalf("counter %d after %d increments, want %d: no update lost", n, writers*each, writers*each)
			}
		})
	}
}

// obOtherSlotKeys finds two keys outside the outbox's slot: one on the
// outbox's node, one on another.
func obOtherSlotKeys(t *testing.T, cc *redis.ClusterClient, o *redismod.Outbox) (sameNode, otherNode string) {
	t.Helper()
	ctx := context.Background()
	home, err := cc.MasterForKey(ctx, o.Key("x"))
	if err != nil {
		t.Fatal(err)
	}
	homeSlot, err := cc.ClusterKeySlot(ctx, o.Key("x")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; sameNode == "" || otherNode == ""; i++ {
		k := "elsewhere:" + strconv.Itoa(i)
		slot, err := cc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		m, err := cc.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case slot == homeSlot:
		case m.Options().Addr == home.Options().Addr && sameNode == "":
			sameNode = k
		case m.Options().Addr != home.Options().Addr && otherNode == "":
			otherNode = k
		}
	}
	return sameNode, otherNode
}

func TestOutboxTx_ClusterKeyOutsideTheSlotIsAClearError(t *testing.T) {
	cluster := redistest.StartCluster(t)
	cfg := testConfig("")
	cfg.Connection = cluster.Addrs()
	rdb := obClient(t, cfg)
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client is a %T, want a cluster client", rdb)
	}
	o := obNew(t, rdb, cfg, "orders")
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	sameNode, otherNode := obOtherSlotKeys(t, cc, o)
	for _, tc := range []struct {
		name  string
		write string
		opts  []redismod.TxOption
	}{
		{"write on the same node", sameNode, nil},
		{"write on another node", otherNode, nil},
		{"write with a key", otherNode, []redismod.TxOption{redismod.Key("o1")}},
		{"watch", o.Key("order", "o1"), []redismod.TxOption{redismod.Watch(otherNode)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs int
			err := o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
				runs++
				pipe.Set(ctx, o.Key("order", "o1"), "placed", 0)
				pipe.Set(ctx, tc.write, "stray", 0)
				return bus.Publish(ctx, TxConfirmed{OrderID: "o1"})
			}, tc.opts...)
			if !errors.Is(err, redismod.ErrCrossSlot) {
				t.Fatalf("Tx writing %s: %v, want ErrCrossSlot", tc.write, err)
			}
			t.Logf("%s: %v", tc.name, err)
			if runs > 1 {
				t.Fatalf("fn ran %d times, want at most once: a cross-slot key is not retried", runs)
			}
			for _, k := range []string{o.Key("order", "o1"), tc.write} {
				if n, err := cc.Exists(context.Background(), k).Result(); err != nil || n != 0 {
					t.Fatalf("%s exists (%v): the failed Tx must write nothing", k, err)
				}
			}
			if d := obDepth(t, o); d != 0 {
				t.Fatalf("outbox depth %d, want 0", d)
			}
		})
	}
}

func TestOutboxTx_CommitWakesTheRelay(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "orders")
	rec := &outboxtest.Recorder{}
	const poll = 10 * time.Second
	relay, err := outbox.New(o.Store(), rec, outbox.Config{Poll: poll}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.OnCommit(relay.Notify)
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Stop(context.Background()) })
	catgatest.Eventually(t, 20*time.Second, "the relay leads", relay.Leading)
	time.Sleep(50 * time.Millisecond) // its first pass is over: it waits for a wake or the poll
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: rec})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = o.Tx(context.Background(), func(ctx context.Context, _ redis.Pipeliner) error {
		return bus.Publish(ctx, TxConfirmed{OrderID: "o1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	catgatest.Eventually(t, 20*time.Second, "relayed", func() bool { return len(rec.Got()) == 1 })
	if took := time.Since(start); took > time.Second {
		t.Fatalf("relayed %v after the commit, want well under the %v poll: the commit wakes the relay", took, poll)
	}
	t.Logf("relayed %v after the commit (poll %v)", time.Since(start).Round(time.Microsecond), poll)
}

func TestOutboxTx_UnreachableServerIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []redismod.TxOption
	}{
		{"no watch: EXEC fails to connect", nil},
		{"key: WATCH fails to connect", []redismod.TxOption{redismod.Key("o1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			cfg := testConfig(srv.URL())
			cfg.DialTimeout = time.Second
			o := obNew(t, obClient(t, cfg), cfg, "orders")
			if err := o.Tx(context.Background(), func(context.Context, redis.Pipeliner) error { return nil }, tc.opts...); err != nil {
				t.Fatal(err) // a connection in the pool
			}
			srv.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
				pipe.Set(ctx, o.Key("order", "o1"), "placed", 0)
				return nil
			}, tc.opts...)
			if cqrs.CodeOf(err) != cqrs.CodeUnavailable || errors.Is(err, cqrs.ErrOutcomeUnknown) {
				t.Fatalf("Tx with the server down: %v (code %s), want code unavailable", err, cqrs.CodeOf(err))
			}
		})
	}
}

// The EXEC reaches Redis and commits, but its reply comes after the read
// timeout: the outcome is unknown, not a failure.
func TestOutboxTx_ExecReplyLostIsOutcomeUnknown(t *testing.T) {
	srv := redistest.Start(t)
	proxy, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	cfg := testConfig("redis://" + proxy.Addr() + "/0")
	cfg.ReadTimeout, cfg.WriteTimeout, cfg.DialTimeout = 300*time.Millisecond, time.Second, time.Second
	o := obNew(t, obClient(t, cfg), cfg, "orders")
	err = o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
		proxy.SetLatency(time.Second, 0) // after the WATCH: only the EXEC is slow
		pipe.Set(ctx, o.Key("order", "o1"), "placed", 0)
		return nil
	}, redismod.Key("o1"))
	if !errors.Is(err, cqrs.ErrOutcomeUnknown) || cqrs.CodeOf(err) == cqrs.CodeUnavailable {
		t.Fatalf("Tx whose EXEC reply was lost: %v, want cqrs.ErrOutcomeUnknown", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer direct.Close()
	catgatest.Eventually(t, 20*time.Second, "the EXEC committed", func() bool { return direct.Exists(context.Background(), o.Key("order", "o1")).Val() == 1 })
}

// A command that fails inside EXEC does not roll the others back: Tx says
// so, and the messages it committed are relayed.
func TestOutboxTx_CommandFailingInsideExecIsReportedAsCommitted(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "orders")
	woken := make(chan struct{}, 1)
	o.OnCommit(func() { woken <- struct{}{} })
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Client().Set(context.Background(), o.Key("order", "o1"), "a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err = o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
		pipe.HSet(ctx, o.Key("order", "o1"), "state", "placed") // WRONGTYPE at EXEC
		return bus.Publish(ctx, TxConfirmed{OrderID: "o1"})
	})
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
		t.Fatalf("Tx: %v, want Redis's WRONGTYPE", err)
	}
	if d := obDepth(t, o); d != 1 {
		t.Fatalf("outbox depth %d, want 1: the rest of the EXEC committed", d)
	}
	select {
	case <-woken:
	default:
		t.Fatal("the relay was not woken for the committed message")
	}
}

// obRelay runs a relay of o's outbox onto tr, woken by each commit, until
// the test ends.
func obRelay(t *testing.T, o *redismod.Outbox, tr *redismod.Transport) {
	t.Helper()
	relay, err := outbox.New(o.Store(), tr, outbox.Config{Poll: 50 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.OnCommit(relay.Notify)
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Stop(context.Background()) })
}

// obE2E is a service on the Redis transport: TxPlaced's handler writes
// the order and publishes TxConfirmed in one Tx; TxConfirmed's handler
// counts.
func obE2E(t *testing.T, direct bool) {
	cfg := testConfig(redistest.Start(t).URL())
	tr := connect(t, cfg, "shop")
	o := obNew(t, tr.Client(), cfg, "shop")
	if direct {
		if !o.Direct(tr) {
			t.Fatal("Direct on the transport's single-server client refused")
		}
	} else { // no relay for direct writes: they need none
		obRelay(t, o, tr)
	}
	var mu sync.Mutex
	confirmed := map[string]int{}
	var bus *cqrs.Bus
	ready := make(chan struct{})
	b, err := cqrs.New(cqrs.Options{Service: "shop", Instance: "i1", Transport: tr,
		Delivery:   cqrs.DefaultDelivery(nil, cqrs.DeliveryConfig{Idempotency: redismod.NewInbox(tr.Client(), cfg), Service: "shop"}),
		Redelivery: cqrs.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[TxPlaced](func(ctx context.Context, e TxPlaced) error {
			<-ready
			return o.Tx(ctx, func(ctx context.Context, pipe redis.Pipeliner) error {
				pipe.HSet(ctx, o.Key("order", e.OrderID), "state", "confirmed")
				return bus.Publish(ctx, TxConfirmed(e))
			}, redismod.Key(e.OrderID))
		}), cqrs.OwnInbox(), cqrs.HandlerName("confirm")),
		cqrs.HandleEvent(cqrs.EventHandlerFunc[TxConfirmed](func(_ context.Context, e TxConfirmed) error {
			mu.Lock()
			confirmed[e.OrderID]++
			mu.Unlock()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	bus = b
	close(ready)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})
	const orders = 20
	for i := range orders {
		if err := b.Publish(context.Background(), TxPlaced{OrderID: fmt.Sprint("o", i)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n, dups int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range confirmed {
			n++
			dups += c - 1
		}
		return n, dups
	}
	catgatest.Eventually(t, 20*time.Second, "every order confirmed", func() bool { n, _ := count(); return n == orders })
	time.Sleep(300 * time.Millisecond)
	if n, dups := count(); n != orders || dups != 0 {
		t.Fatalf("%d orders confirmed with %d duplicates, want %d once each", n, dups, orders)
	}
	for i := range orders {
		if s := tr.Client().HGet(context.Background(), o.Key("order", fmt.Sprint("o", i)), "state").Val(); s != "confirmed" {
			t.Fatalf("order o%d state %q, want confirmed", i, s)
		}
	}
	if d := obDepth(t, o); d != 0 {
		t.Fatalf("outbox depth %d, want 0", d)
	}
}

func TestOutbox_EndToEndOnTheRedisTransport(t *testing.T) {
	t.Run("relayed", func(t *testing.T) { obE2E(t, false) })
	t.Run("direct", func(t *testing.T) { obE2E(t, true) })
}

// Direct writes need the transport's own single-server client: a cluster
// puts the streams in other slots, and another client is another
// connection pool, perhaps another server.
func TestOutboxDirect_OnlyOnTheTransportsSingleServerClient(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	tr := connect(t, cfg, "shop")
	if o := obNew(t, obClient(t, cfg), cfg, "shop"); o.Direct(tr) {
		t.Fatal("Direct with another client: on, want off")
	}
	cluster := redistest.StartCluster(t)
	ccfg := testConfig("")
	ccfg.Connection = cluster.Addrs()
	ctr := connect(t, ccfg, "shop")
	if o := obNew(t, ctr.Client(), ccfg, "shop"); o.Direct(ctr) {
		t.Fatal("Direct on a cluster: on, want off")
	}
	if o := obNew(t, tr.Client(), cfg, "shop"); !o.Direct(tr) {
		t.Fatal("Direct on the transport's own client: off, want on")
	}
}

// The modules provide the *Outbox and wire its relay: StoreModule relays
// to the bus's transport (memory here), Module writes to its own streams.
func TestModule_OutboxWiring(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name    string
		mod     fx.Option
		relayed bool
	}{
		{"StoreModule relays", redismod.StoreModule, true},
		{"Module writes directly", redismod.Module, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HTTP_ADDR", "127.0.0.1:0")
			t.Setenv("LOG_LEVEL", "error")
			t.Setenv("CATGA_SERVICE", "wired")
			cfg := testConfig(srv.URL())
			got := make(chan string, 10)
			var o *redismod.Outbox
			var bus *cqrs.Bus
			app := fxtest.New(t, catga.Module, tc.mod, fx.Replace(cfg),
				cqrs.Event[TxConfirmed](func(_ context.Context, e TxConfirmed) error { got <- e.OrderID; return nil }),
				fx.Populate(&o, &bus),
			)
			app.RequireStart()
			defer http.DefaultClient.CloseIdleConnections()
			err := o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
				pipe.Set(ctx, o.Key("order", "o1"), "confirmed", 0)
				return bus.Publish(ctx, TxConfirmed{OrderID: "o1"})
			})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-got:
				if id != "o1" {
					t.Fatalf("got %q, want o1", id)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the event committed in Tx did not arrive")
			}
			if o.Key("x") != "{"+cfg.Prefix+":wired}:x" {
				t.Fatalf("Key = %q, want the service's tag", o.Key("x"))
			}
			// The relay leaves the outbox stream behind, empty; a direct
			// write never makes it.
			if n := o.Client().Exists(context.Background(), o.Key("_outbox")).Val(); (n == 1) != tc.relayed {
				t.Fatalf("outbox stream exists: %v, want %v", n == 1, tc.relayed)
			}
			app.RequireStop()
		})
	}
}

// The lead passes on: a crashed holder's lease runs out, a lease that is no
// longer ours is lost at the next renewal, and Release deletes only ours.
func TestOutboxStore_LeadLeaseRunsOutIsLostAndReleasesOnlyItsOwn(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	rdb := obClient(t, cfg)
	o, err := redismod.NewOutbox(rdb, cfg, "orders", redismod.OutboxConfig{Lease: 300 * time.Millisecond, LeadRetry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lease := o.Key("_outbox", "lead")
	if err := rdb.Set(ctx, lease, "a crashed relay", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l, err := o.Store().Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("led %v after a crashed holder's 300ms lease, want once it ran out", took)
	}
	time.Sleep(time.Second) // renewals keep it
	select {
	case <-l.Lost():
		t.Fatal("the lead was lost while renewed")
	default:
	}
	if err := rdb.Set(ctx, lease, "another relay", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(time.Second):
		t.Fatal("the lead is not lost 1s after its lease became another's")
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v := rdb.Get(ctx, lease).Val(); v != "another relay" {
		t.Fatalf("lease %q after Release of a lost lead, want another relay's kept", v)
	}
	if err := rdb.Del(ctx, lease).Err(); err != nil {
		t.Fatal(err)
	}
	l, err = o.Store().Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, lease).Val(); n != 0 {
		t.Fatal("the lease is still there after Release")
	}
}

// An entry the relay cannot read back is buried with the reason, not
// published, and holds nothing up.
func TestOutboxStore_UnreadableEntryIsBuried(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	o := obNew(t, obClient(t, cfg), cfg, "orders")
	bus, err := cqrs.New(cqrs.Options{Service: "orders", Instance: "i1", Transport: &outboxtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Client().XAdd(context.Background(), &redis.XAddArgs{Stream: o.Key("_outbox"), Values: []any{"topic", "nonsense", "h", "garbage"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := o.Tx(context.Background(), func(ctx context.Context, _ redis.Pipeliner) error {
		return bus.Publish(ctx, TxConfirmed{OrderID: "o1"})
	}); err != nil {
		t.Fatal(err)
	}
	rec := &outboxtest.Recorder{}
	relay, err := outbox.New(o.Store(), rec, outbox.Config{Poll: 20 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Stop(context.Background()) })
	catgatest.Eventually(t, 20*time.Second, "the outbox empty", func() bool { return obDepth(t, o) == 0 })
	if got := rec.Got(); len(got) != 1 || got[0].Topic.Name != "TxConfirmed" {
		t.Fatalf("published %v, want only TxConfirmed", got)
	}
	dead, err := o.Store().DeadRecords(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Error == "" || dead[0].Time.IsZero() || dead[0].Ref == "" {
		t.Fatalf("dead records %+v, want the unreadable entry with its error, time and ref", dead)
	}
	t.Logf("buried: %s", dead[0].Error)
}

// A message scheduled inside a direct Tx (Outbox.Direct) waits in the
// outbox for the relay, whose publish holds it until its time: written
// straight into the stream it would go at once.
func TestOutboxDirect_ScheduledMessageWaitsForItsTime(t *testing.T) {
	cfg := testConfig(redistest.Start(t).URL())
	tr := connect(t, cfg, "shop")
	o := obNew(t, tr.Client(), cfg, "shop")
	if !o.Direct(tr) {
		t.Fatal("Direct on the transport's single-server client refused")
	}
	obRelay(t, o, tr)
	arrived := make(chan time.Time, 2)
	b, err := cqrs.New(cqrs.Options{Service: "shop", Instance: "i1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[TxConfirmed](func(context.Context, TxConfirmed) error {
			arrived <- time.Now()
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	due := time.Now().Add(time.Second)
	err = o.Tx(context.Background(), func(ctx context.Context, pipe redis.Pipeliner) error {
		_, err := b.PublishAt(ctx, due, TxConfirmed{OrderID: "later"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-arrived:
		if at.Before(due) {
			t.Fatalf("arrived %v before its time", due.Sub(at))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduled message never arrived")
	}
}
