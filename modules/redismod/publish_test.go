package redismod_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/faultproxy"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// A publish that never reached Redis fails definitely and at once:
// errors.Is cqrs.ErrUnavailable, never cqrs.ErrOutcomeUnknown, with
// CodeUnavailable (503), not internal.
func TestPublish_NotSentIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(srv *redistest.Server, tr *redismod.Transport, ctx context.Context) context.Context
	}{
		{"server stopped", func(srv *redistest.Server, _ *redismod.Transport, ctx context.Context) context.Context {
			srv.Stop()
			return ctx
		}},
		{"transport closed", func(_ *redistest.Server, tr *redismod.Transport, ctx context.Context) context.Context {
			_ = tr.Close(ctx)
			return ctx
		}},
		{"context canceled", func(_ *redistest.Server, _ *redismod.Transport, ctx context.Context) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			tr := connect(t, testConfig(srv.URL()), "pub")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctx = tc.setup(srv, tr, ctx)
			start := time.Now()
			err := tr.Publish(ctx, tickTopic, tickEnv(1))
			took := time.Since(start)
			if !errors.Is(err, cqrs.ErrUnavailable) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
				t.Fatalf("got %v, want a definite failure (cqrs.ErrUnavailable)", err)
			}
			if c := cqrs.CodeOf(err); c != cqrs.CodeUnavailable {
				t.Fatalf("code %s, want %s (%v)", c, cqrs.CodeUnavailable, err)
			}
			if took > 3*time.Second {
				t.Fatalf("failed after %v, want within 3s", took)
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
		})
	}
}

// throughProxy is a transport reaching srv through a fault proxy, with
// readTimeout, and one publish done so the connection is made; the proxy
// is closed at cleanup.
func throughProxy(t *testing.T, srv *redistest.Server, readTimeout time.Duration) (*redismod.Transport, *faultproxy.Proxy, redismod.Config) {
	t.Helper()
	proxy, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	cfg := testConfig("redis://" + proxy.Addr() + "/0")
	cfg.ReadTimeout, cfg.WriteTimeout, cfg.DialTimeout = readTimeout, time.Second, time.Second
	tr := connect(t, cfg, "behind-the-proxy")
	if err := tr.Publish(context.Background(), tickTopic, tickEnv(0)); err != nil {
		t.Fatal(err)
	}
	return tr, proxy, cfg
}

// expectLen waits until key holds want entries, then checks that it still
// holds no more a second later.
func expectLen(t *testing.T, rdb redis.Cmdable, key string, want int64, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	var n int64
	if !catgatest.Poll(within, func() bool {
		var err error
		if n, err = rdb.XLen(ctx, key).Result(); err != nil {
			t.Fatal(err)
		}
		if n > want {
			t.Fatalf("%s holds %d entries, want %d", key, n, want)
		}
		return n == want
	}) {
		t.Fatalf("%s holds %d entries after %v, want %d", key, n, within, want)
	}
	time.Sleep(time.Second)
	if n, _ := rdb.XLen(ctx, key).Result(); n != want {
		t.Fatalf("%s holds %d entries a second later, want %d", key, n, want)
	}
}

// The XADD reaches Redis and is stored, but its reply comes after the read
// timeout: the outcome is unknown, not a failure, and the XADD is not sent
// again behind the caller's back (the stream holds it once).
func TestPublish_ReplyLostIsOutcomeUnknown(t *testing.T) {
	srv := redistest.Start(t)
	tr, proxy, cfg := throughProxy(t, srv, 300*time.Millisecond)
	proxy.SetLatency(time.Second, 0)
	err := tr.Publish(context.Background(), tickTopic, tickEnv(1))
	if !errors.Is(err, cqrs.ErrOutcomeUnknown) || errors.Is(err, cqrs.ErrUnavailable) {
		t.Fatalf("got %v, want cqrs.ErrOutcomeUnknown", err)
	}
	if c := cqrs.CodeOf(err); c != cqrs.CodeTimeout {
		t.Fatalf("code %s, want %s", c, cqrs.CodeTimeout)
	}
	t.Log(err)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	expectLen(t, rdb, cfg.Prefix+":{events:Tick}", 2, 5*time.Second) // the first publish and this one
}

// The connection is cut after the XADD was written, and the server is
// unreachable from then on: the outcome is unknown at once (not after the
// read timeout), and no retry turns it into a refused dial that would say
// nothing was sent.
func TestPublish_ConnectionCutAfterWriteIsOutcomeUnknown(t *testing.T) {
	srv := redistest.Start(t)
	tr, proxy, _ := throughProxy(t, srv, 5*time.Second)
	proxy.SetLatency(2*time.Second, 0) // the XADD waits in the proxy
	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		err := tr.Publish(context.Background(), tickTopic, tickEnv(1))
		done <- result{err, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	proxy.Close() // resets the connections and refuses new ones
	r := <-done
	if r.took > 2*time.Second {
		t.Fatalf("returned after %v (%v), want at the cut", r.took, r.err)
	}
	if !errors.Is(r.err, cqrs.ErrOutcomeUnknown) || errors.Is(r.err, cqrs.ErrUnavailable) {
		t.Fatalf("got %v, want cqrs.ErrOutcomeUnknown", r.err)
	}
	t.Log(r.err)
}

func ticks(topic transport.Topic, from, n int) []transport.Outgoing {
	out := make([]transport.Outgoing, n)
	for i := range out {
		env := tickEnv(from + i)
		env.Name = topic.Name
		out[i] = transport.Outgoing{Topic: topic, Envelope: env}
	}
	return out
}

// streamNs returns the N of every Tick in key, in stream order.
func streamNs(t *testing.T, rdb redis.Cmdable, key string) []int {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, 0, len(msgs))
	for _, m := range msgs {
		p, _ := m.Values["payload"].(string)
		var tick Tick
		if err := json.Unmarshal([]byte(p), &tick); err != nil {
			t.Fatalf("entry %s: %v", m.ID, err)
		}
		out = append(out, tick.N)
	}
	return out
}

func checkSequence(t *testing.T, got []int, from, n int, what string) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s: %d entries, want %d", what, len(got), n)
	}
	for i, v := range got {
		if v != from+i {
			t.Fatalf("%s: entry %d is %d, want %d", what, i, v, from+i)
		}
	}
}

// A batch of 1,000, four round trips, is stored whole and in order.
func TestPublishBatch_ThousandMessagesArriveInOrder(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	tr := connect(t, cfg, "pub")
	msgs := ticks(tickTopic, 0, 1000)
	errs := make([]error, len(msgs))
	tr.PublishBatch(context.Background(), msgs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("errs[%d] = %v, want nil", i, err)
		}
	}
	checkSequence(t, streamNs(t, tr.Client(), cfg.Prefix+":{events:Tick}"), 0, len(msgs), "stream")
}

// With the server stopped, every message of a batch fails definitely, and
// at once: the first round trip's dial is refused, and the rest is not
// tried.
func TestPublishBatch_StoppedServerFailsEveryMessageDefinitely(t *testing.T) {
	srv := redistest.Start(t)
	tr := connect(t, testConfig(srv.URL()), "pub")
	srv.Stop()
	msgs := ticks(tickTopic, 0, 600)
	errs := make([]error, len(msgs))
	start := time.Now()
	tr.PublishBatch(context.Background(), msgs, errs)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v, want within 3s", took)
	}
	for i, err := range errs {
		if !errors.Is(err, cqrs.ErrUnavailable) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
			t.Fatalf("errs[%d] = %v, want a definite failure (cqrs.ErrUnavailable)", i, err)
		}
	}
	t.Logf("errs[0] = %v; errs[%d] = %v", errs[0], len(errs)-1, errs[len(errs)-1])
}

// The replies of the first round trip are lost: its messages are unknown
// (Redis may have run them), and the rest of the batch is, definitely, not
// sent.
func TestPublishBatch_ReplyLostStopsTheBatch(t *testing.T) {
	srv := redistest.Start(t)
	tr, proxy, cfg := throughProxy(t, srv, 300*time.Millisecond)
	proxy.SetLatency(time.Second, 0)
	msgs := ticks(tickTopic, 1, 600)
	errs := make([]error, len(msgs))
	tr.PublishBatch(context.Background(), msgs, errs)
	unknown := 0
	for unknown < len(errs) && errors.Is(errs[unknown], cqrs.ErrOutcomeUnknown) {
		unknown++
	}
	if unknown == 0 || unknown == len(errs) {
		t.Fatalf("%d of %d unknown (first error %v), want the first round trip's", unknown, len(errs), errs[0])
	}
	for i, err := range errs[unknown:] {
		if !errors.Is(err, cqrs.ErrUnavailable) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
			t.Fatalf("errs[%d] = %v, want not sent (cqrs.ErrUnavailable)", unknown+i, err)
		}
	}
	// Once the proxy has forwarded what it held, the stream holds the
	// first publish and, in order, those of the unknown ones Redis ran
	// before the connection closed; none of those not sent.
	time.Sleep(2 * time.Second)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	got := streamNs(t, rdb, cfg.Prefix+":{events:Tick}")
	if len(got) > 1+unknown {
		t.Fatalf("the stream holds %d entries, want at most the %d unknown and the first", len(got), unknown)
	}
	checkSequence(t, got, 0, len(got), "stream")
	t.Logf("%d unknown (%d of them stored), %d not sent: %v", unknown, len(got)-1, len(errs)-unknown, errs[unknown])
}

// A Redis error reply fails its message only, definitely, with Redis's
// text; the others of the round trip are stored.
func TestPublishBatch_ErrorReplyFailsOnlyItsMessage(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	tr := connect(t, cfg, "pub")
	broken := transport.Topic{Kind: transport.KindEvent, Name: "Broken"}
	if err := tr.Client().Set(context.Background(), cfg.Prefix+":{events:Broken}", "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	msgs := append(append(ticks(tickTopic, 0, 1), ticks(broken, 1, 1)...), ticks(tickTopic, 2, 1)...)
	errs := make([]error, len(msgs))
	tr.PublishBatch(context.Background(), msgs, errs)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("errs %v, want the Tick messages stored", errs)
	}
	if err := errs[1]; !strings.Contains(fmt.Sprint(err), "WRONGTYPE") ||
		errors.Is(err, cqrs.ErrOutcomeUnknown) || errors.Is(err, cqrs.ErrUnavailable) {
		t.Fatalf("errs[1] = %v, want Redis's WRONGTYPE reply", err)
	}
	if got := streamNs(t, tr.Client(), cfg.Prefix+":{events:Tick}"); len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Fatalf("stream holds %v, want [0 2]", got)
	}
	err := tr.Publish(context.Background(), broken, msgs[1].Envelope)
	var rerr redis.Error
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "WRONGTYPE") ||
		errors.Is(err, cqrs.ErrOutcomeUnknown) || errors.Is(err, cqrs.ErrUnavailable) {
		t.Fatalf("Publish: got %v, want Redis's WRONGTYPE reply", err)
	}
	t.Log(err)
}

// On a cluster the batch's round trips are split by node; each topic's
// messages arrive in order.
func TestPublishBatch_ClusterKeepsOrderPerTopic(t *testing.T) {
	cluster := redistest.StartCluster(t)
	cfg := testConfig("")
	cfg.Connection = cluster.Addrs()
	tr := connect(t, cfg, "pub")
	cc, ok := tr.Client().(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client is a %T, want a cluster client", tr.Client())
	}
	ctx := context.Background()
	const topics, per = 6, 200
	var msgs []transport.Outgoing
	for i := range per {
		for k := range topics {
			msgs = append(msgs, ticks(transport.Topic{Kind: transport.KindEvent, Name: fmt.Sprintf("Tick%d", k)}, i, 1)...)
		}
	}
	errs := make([]error, len(msgs))
	tr.PublishBatch(ctx, msgs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("errs[%d] = %v, want nil", i, err)
		}
	}
	masters := map[string]bool{}
	for k := range topics {
		key := fmt.Sprintf("%s:{events:Tick%d}", cfg.Prefix, k)
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
		checkSequence(t, streamNs(t, cc, key), 0, per, key)
	}
	if len(masters) < 2 {
		t.Fatalf("the topics are on %d master(s), want several", len(masters))
	}
}

// BenchmarkPublishBatch compares Publish, one XADD per round trip, with
// PublishBatch of 500 messages (an outbox relay's batch) on one server.
// ns/op is per message.
func BenchmarkPublishBatch(b *testing.B) {
	srv := redistest.Start(b)
	tr, err := newBenchTransport(b, testConfig(srv.URL()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msgs := ticks(tickTopic, 0, 500)
	b.Run("publish", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			m := msgs[i%len(msgs)]
			if err := tr.Publish(ctx, m.Topic, m.Envelope); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch", func(b *testing.B) {
		b.ReportAllocs()
		errs := make([]error, len(msgs))
		for i := 0; i < b.N; i += len(msgs) {
			n := min(len(msgs), b.N-i)
			tr.PublishBatch(ctx, msgs[:n], errs[:n])
			for _, err := range errs[:n] {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
