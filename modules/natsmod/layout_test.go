package natsmod_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// eventTopics returns n event topics, each counting its deliveries into
// got (by topic name) and acking.
func eventTopics(n int, kind transport.Kind, got *sync.Map) []transport.TopicHandler {
	out := make([]transport.TopicHandler, n)
	for i := range out {
		name := fmt.Sprintf("Type%03d", i)
		out[i] = transport.TopicHandler{Topic: transport.Topic{Kind: kind, Name: name},
			Handler: transport.DeliveryHandlerFunc(func(ctx context.Context, d transport.Delivery) {
				if got != nil {
					c, _ := got.LoadOrStore(d.Envelope().Name, new(atomic.Int64))
					c.(*atomic.Int64).Add(1)
				}
				_ = d.Ack(ctx)
			})}
	}
	return out
}

func subscribeTopics(t *testing.T, tr *natsmod.Transport, group, instance string, topics []transport.TopicHandler) transport.Closer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := tr.Subscribe(ctx, transport.Subscription{Group: group, Instance: instance, Concurrency: 4, Topics: topics})
	if err != nil {
		t.Fatalf("subscribe %s/%s: %v", group, instance, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sub.Close(ctx)
	})
	return sub
}

func consumerNames(t *testing.T, url, stream string) []string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	str, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := str.ConsumerNames(context.Background())
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func publishEvent(t *testing.T, tr transport.Transport, kind transport.Kind, name string) {
	t.Helper()
	env := &transport.Envelope{ID: cqrs.NewID(), Name: name, Kind: kind, ContentType: "application/json", Time: time.Now(), Payload: []byte(`{}`)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Publish(ctx, transport.Topic{Kind: kind, Name: name}, env); err != nil {
		t.Fatalf("publish %s: %v", name, err)
	}
}

// Seen: 10 services x 2 instances, each subscribing to 200 event types,
// on the newest nats-server: the server refused the 1,001st consumer of
// the events stream ("maximum consumers limit reached") and no instance
// started. With one consumer per group and kind, all 20 start on a server
// at its default settings, the events stream holds one consumer per group,
// and an event reaches each group once.
func TestSubscribe_TwoHundredTypesTenServicesTwoInstancesStart(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	const services, instances, types = 10, 2, 200
	got := make([]sync.Map, services)
	var slowest time.Duration
	for s := range services {
		for i := range instances {
			tr := connect(t, cfg, fmt.Sprintf("svc%d-%d", s, i))
			began := time.Now()
			subscribeTopics(t, tr, fmt.Sprintf("svc%d", s), fmt.Sprintf("i%d", i), eventTopics(types, transport.KindEvent, &got[s]))
			slowest = max(slowest, time.Since(began))
		}
	}
	names := consumerNames(t, srv.URL(), cfg.StreamPrefix+"_EVENTS")
	t.Logf("%d instances subscribed to %d types each; slowest Subscribe %v; consumers on the events stream: %d", services*instances, types, slowest, len(names))
	if len(names) != services {
		t.Fatalf("events stream has %d consumers, want one per group (%d): %v", len(names), services, names)
	}
	pub := connect(t, cfg, "pub")
	publishEvent(t, pub, transport.KindEvent, "Type199")
	publishEvent(t, pub, transport.KindEvent, "Type000")
	catgatest.Eventually(t, 10*time.Second, "every group handles both events", func() bool {
		for s := range services {
			for _, name := range []string{"Type000", "Type199"} {
				if c, ok := got[s].Load(name); !ok || c.(*atomic.Int64).Load() != 1 {
					return false
				}
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // a second delivery would show now
	for s := range services {
		got[s].Range(func(k, v any) bool {
			if n := v.(*atomic.Int64).Load(); n != 1 {
				t.Errorf("svc%d handled %s %d times, want once", s, k, n)
			}
			return true
		})
	}
}

// Each consumer is made once at Subscribe: the JetStream API calls of a
// subscription to 200 events and 50 commands do not grow with the number
// of types.
func TestSubscribe_APICallsDoNotGrowWithTypes(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	tr := connect(t, cfg, "calls")
	nc, js := apiClient(t, srv)
	defer nc.Close()
	calls := func() uint64 {
		info, err := js.AccountInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.API.Total
	}
	count := func(group string, events, commands int) uint64 {
		before := calls()
		topics := append(eventTopics(events, transport.KindEvent, nil), eventTopics(commands, transport.KindCommand, nil)...)
		for i := range commands {
			topics[events+i].Topic.Name = fmt.Sprintf("%sCmd%03d", group, i) // a command has one owner
		}
		subscribeTopics(t, tr, group, "i1", topics)
		time.Sleep(300 * time.Millisecond) // the fetch loops' first pulls
		return calls() - before
	}
	few, many := count("few", 2, 1), count("many", 200, 50)
	t.Logf("JetStream API calls of Subscribe: %d with 3 types, %d with 250", few, many)
	if many > few+2 {
		t.Errorf("Subscribe to 250 types made %d JetStream API calls, to 3 types %d: want no growth with the types", many, few)
	}
}

func apiClient(t *testing.T, srv *natstest.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// On a server older than 2.10 (here: the layout forced) each topic has its
// own consumer, <group>_<kind>_<Name>, and delivery works as with one per
// kind.
func TestSubscribe_PerTopicLayoutOnOlderServers(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	tr := connect(t, cfg, "old")
	natsmod.UsePerTopicLayout(tr)
	var got sync.Map
	subscribeTopics(t, tr, "g", "i1", eventTopics(3, transport.KindEvent, &got))
	if names, want := consumerNames(t, srv.URL(), cfg.StreamPrefix+"_EVENTS"), []string{"g_event_Type000", "g_event_Type001", "g_event_Type002"}; !slices.Equal(names, want) {
		t.Fatalf("consumers %v, want %v", names, want)
	}
	publishEvent(t, tr, transport.KindEvent, "Type002")
	catgatest.Eventually(t, 5*time.Second, "Type002 handled", func() bool { _, ok := got.Load("Type002"); return ok })
}

// A group that had per-topic consumers (an older server or release) moves
// to its per-kind consumers without losing what was published while no
// instance ran: events from the lowest point the old consumers had
// acknowledged, commands from their work queue. The old consumers are
// removed, so a work-queue subject does not have two consumers.
func TestSubscribe_MigratesPerTopicConsumersWithoutLoss(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	old := connect(t, cfg, "old")
	natsmod.UsePerTopicLayout(old)
	topics := func(got *sync.Map) []transport.TopicHandler {
		ts := append(eventTopics(2, transport.KindEvent, got), eventTopics(1, transport.KindCommand, got)...)
		ts[2].Topic.Name = "Cmd"
		return ts
	}
	var before sync.Map
	sub := subscribeTopics(t, old, "g", "i1", topics(&before))
	publishEvent(t, old, transport.KindEvent, "Type000")
	catgatest.Eventually(t, 5*time.Second, "the old layout handles Type000", func() bool { _, ok := before.Load("Type000"); return ok })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Published while the group is down, between the releases.
	publishEvent(t, old, transport.KindEvent, "Type000")
	publishEvent(t, old, transport.KindEvent, "Type001")
	publishEvent(t, old, transport.KindCommand, "Cmd")

	tr := connect(t, cfg, "new")
	var after sync.Map
	subscribeTopics(t, tr, "g", "i2", topics(&after))
	catgatest.Eventually(t, 10*time.Second, "the new layout handles what was published between", func() bool {
		for _, n := range []string{"Type000", "Type001", "Cmd"} {
			if _, ok := after.Load(n); !ok {
				return false
			}
		}
		return true
	})
	if names := consumerNames(t, srv.URL(), cfg.StreamPrefix+"_EVENTS"); !slices.Equal(names, []string{"g_events"}) {
		t.Errorf("events consumers %v, want only g_events", names)
	}
	if names := consumerNames(t, srv.URL(), cfg.StreamPrefix+"_COMMANDS"); !slices.Equal(names, []string{"g_commands"}) {
		t.Errorf("commands consumers %v, want only g_commands", names)
	}
	// The one consumer starts after the lowest of the old ones' ack floors
	// (Type001's, which had acked nothing), so the Type000 acked before the
	// change comes again: a duplicate, which the inbox absorbs; none lost.
	if c, _ := after.Load("Type000"); c.(*atomic.Int64).Load() < 1 || c.(*atomic.Int64).Load() > 2 {
		t.Errorf("Type000 handled %d times after the change, want the one published between (and at most the one before again)", c.(*atomic.Int64).Load())
	}
}

// Two instances of one group in a rolling update: the new one handles a
// type the old one does not. A message of that type reaching the old
// instance is given back and handled by the new one.
func TestSubscribe_TypeUnknownToAnOldInstanceReachesANewOne(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	cfg.AckWait = time.Second
	var oldGot, newGot sync.Map
	subscribeTopics(t, connect(t, cfg, "old"), "g", "old", eventTopics(1, transport.KindEvent, &oldGot))
	subscribeTopics(t, connect(t, cfg, "new"), "g", "new", eventTopics(2, transport.KindEvent, &newGot))
	pub := connect(t, cfg, "pub")
	for range 20 {
		publishEvent(t, pub, transport.KindEvent, "Type001")
	}
	catgatest.Eventually(t, 15*time.Second, "the new instance handles all 20", func() bool {
		c, ok := newGot.Load("Type001")
		return ok && c.(*atomic.Int64).Load() == 20
	})
	if _, ok := oldGot.Load("Type001"); ok {
		t.Error("the old instance handled a type it has no handler for")
	}
}

// The system's nats-server (Debian's is 2.9): the layout follows the
// server's version, and a subscription delivers on it.
func TestSubscribe_LayoutOnTheSystemServer(t *testing.T) {
	url, version := natstest.StartSystem(t)
	cfg := testConfigAt(url)
	tr := connect(t, cfg, "system")
	wantPerKind := !strings.HasPrefix(version, "2.9.") && !strings.HasPrefix(version, "2.8.")
	if got := natsmod.PerKindLayout(tr); got != wantPerKind {
		t.Fatalf("server %s: per-kind layout %v, want %v", version, got, wantPerKind)
	}
	var got sync.Map
	subscribeTopics(t, tr, "g", "i1", eventTopics(3, transport.KindEvent, &got))
	want := []string{"g_event_Type000", "g_event_Type001", "g_event_Type002"}
	if wantPerKind {
		want = []string{"g_events"}
	}
	if names := consumerNames(t, url, cfg.StreamPrefix+"_EVENTS"); !slices.Equal(names, want) {
		t.Fatalf("server %s: consumers %v, want %v", version, names, want)
	}
	publishEvent(t, tr, transport.KindEvent, "Type001")
	catgatest.Eventually(t, 5*time.Second, "Type001 handled", func() bool { _, ok := got.Load("Type001"); return ok })
	t.Logf("nats-server %s: consumers %v", version, want)
}
