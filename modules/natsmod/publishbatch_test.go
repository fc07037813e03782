package natsmod_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

// tickBatch is n Tick messages from first on.
func tickBatch(first, n int) []transport.Outgoing {
	msgs := make([]transport.Outgoing, n)
	for i := range msgs {
		msgs[i] = transport.Outgoing{Topic: tickTopic, Envelope: tickEnv(first + i)}
	}
	return msgs
}

// storedTicks reads every Tick of cfg's events stream, in stream order.
func storedTicks(t *testing.T, url string, cfg natsmod.Config) []int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, cfg.StreamPrefix+"_EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{cfg.Prefix + ".events.Tick"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for uint64(len(out)) < info.NumPending {
		batch, err := c.Fetch(int(info.NumPending)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var tick Tick
			if err := json.Unmarshal(m.Data(), &tick); err != nil {
				t.Fatal(err)
			}
			out = append(out, tick.N)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// 1,000 messages in one batch, four times the window: every outcome nil,
// and a consumer reading the stream in order gets them in the order sent.
// (It reads with an ordered consumer: a bus at concurrency 1 pulls one
// message at a time and can idle up to a heartbeat between pulls.)
func TestPublishBatch_ThousandAcknowledgedAndConsumedInOrder(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	pub := connect(t, cfg, "publisher")
	const total = 1000
	msgs, errs := tickBatch(0, total), make([]error, total)
	start := time.Now()
	pub.PublishBatch(context.Background(), msgs, errs)
	took := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("errs[%d] = %v, want nil", i, err)
		}
	}
	got := storedTicks(t, srv.URL(), cfg)
	if len(got) != total {
		t.Fatalf("consumed %d, want %d", len(got), total)
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("consumed #%d is tick %d, want %d: order not kept (first %v)", i, n, i, got[:min(len(got), 20)])
		}
	}
	t.Logf("%d messages in one batch (window %d): all acknowledged in %v, consumed in order", total, cfg.PublishWindow, took.Round(time.Millisecond))
	if n := natsmod.PendingAcks(pub); n != 0 {
		t.Errorf("%d futures still pending after the batch, want 0", n)
	}
}

// Four callers at once, each with its own batches: each caller's messages
// are stored in its order.
func TestPublishBatch_ConcurrentCallersEachKeepTheirOrder(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	cfg.PublishWindow = 32
	pub := connect(t, cfg, "publisher")
	const callers, batches, size = 4, 5, 100
	var wg sync.WaitGroup
	failures := make(chan error, callers*batches*size)
	for c := range callers {
		wg.Go(func() {
			for b := range batches {
				msgs, errs := tickBatch(c*100_000+b*size, size), make([]error, size)
				pub.PublishBatch(context.Background(), msgs, errs)
				for _, err := range errs {
					if err != nil {
						failures <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatalf("a publish failed: %v", err)
	}
	next := make([]int, callers)
	got := storedTicks(t, srv.URL(), cfg)
	for _, n := range got {
		c, k := n/100_000, n%100_000
		if k != next[c] {
			t.Fatalf("caller %d: stored tick %d after %d, want %d", c, k, next[c]-1, next[c])
		}
		next[c]++
	}
	if len(got) != callers*batches*size {
		t.Fatalf("stored %d, want %d", len(got), callers*batches*size)
	}
}

// A batch while the server is down: every message fails at once as
// unavailable, and none is delivered after the reconnect; whether or not
// the transport has heard of the disconnect yet.
func TestPublishBatch_WhileDisconnectedEveryMessageUnavailableNoneLater(t *testing.T) {
	for _, tt := range []struct {
		name     string
		callback bool
	}{{"as-it-happens", true}, {"before-the-disconnect-callback", false}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			cfg := testConfig(srv)
			mu, handled := tickBus(t, connect(t, cfg, "consumer"), "ticks", "c1")
			got := func(n int) int { mu.Lock(); defer mu.Unlock(); return handled[n] }
			pub := connect(t, cfg, "publisher")
			publishUntilAcked(t, pub, tickEnv(0))
			waitHandled(t, got, 0, 10*time.Second)

			srv.Shutdown()
			waitStatus(t, pub, false)
			if !tt.callback {
				natsmod.PretendConnected(pub)
			}
			msgs, errs := tickBatch(1, 100), make([]error, 100)
			start := time.Now()
			pub.PublishBatch(context.Background(), msgs, errs)
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Errorf("batch while disconnected took %v, want it to fail at once", took)
			}
			for i, err := range errs {
				if !errors.Is(err, cqrs.ErrUnavailable) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
					t.Fatalf("errs[%d] = %v, want a definite cqrs.ErrUnavailable", i, err)
				}
			}
			t.Logf("errs[0] = %v\nerrs[99] = %v", errs[0], errs[99])

			srv.StartAgain(t)
			waitStatus(t, pub, true)
			publishUntilAcked(t, pub, tickEnv(1000))
			waitHandled(t, got, 1000, 10*time.Second)
			time.Sleep(2 * time.Second)
			for n := 1; n <= 100; n++ {
				if got(n) != 0 {
					t.Fatalf("tick %d of the failed batch was delivered after the reconnect", n)
				}
			}
			if n := storedOn(t, srv.URL(), cfg.StreamPrefix+"_EVENTS", cfg.Prefix+".events.Tick"); n != 2 {
				t.Fatalf("stream holds %d Ticks, want 2", n)
			}
		})
	}
}

// The acks are held and ctx ends mid-batch: the window that was sent is
// unknown (and was in fact stored), the rest definitely not sent; nats.go
// lets go of every future once the acks come.
func TestPublishBatch_CtxEndsMidBatchUnackedAreUnknownUnsentAreNot(t *testing.T) {
	srv := natstest.Start(t)
	proxy, cfg := via(t, srv)
	cfg.PublishWindow = 16
	pub := connect(t, cfg, "publisher")
	proxy.BlackholeReplies(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	msgs, errs := tickBatch(0, 100), make([]error, 100)
	start := time.Now()
	pub.PublishBatch(ctx, msgs, errs)
	if took := time.Since(start); took > time.Second {
		t.Errorf("batch returned %v after it began, want soon after ctx ended (300ms)", took)
	}
	for i, err := range errs {
		sent := i < cfg.PublishWindow
		switch {
		case sent && !errors.Is(err, cqrs.ErrOutcomeUnknown):
			t.Fatalf("errs[%d] (sent, unacked) = %v, want cqrs.ErrOutcomeUnknown", i, err)
		case !sent && (errors.Is(err, cqrs.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded)):
			t.Fatalf("errs[%d] (not sent) = %v, want a definite failure for the deadline", i, err)
		}
	}
	t.Logf("errs[0] = %v\nerrs[%d] = %v", errs[0], cfg.PublishWindow, errs[cfg.PublishWindow])
	proxy.BlackholeReplies(false)

	if !catgatest.Poll(10*time.Second, func() bool { return natsmod.PendingAcks(pub) == 0 }) {
		t.Fatalf("%d futures still pending 10s after the acks were let through", natsmod.PendingAcks(pub))
	}
	got := storedTicks(t, srv.URL(), cfg)
	if len(got) != cfg.PublishWindow {
		t.Fatalf("stored %v, want the %d sent", got, cfg.PublishWindow)
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("stored %v, want 0..%d in order", got, cfg.PublishWindow-1)
		}
	}
}

// Close while a batch waits for acks that do not come: the batch returns,
// the unacked as unknown and the unsent as closed.
func TestPublishBatch_CloseWhileWaitingEndsTheBatch(t *testing.T) {
	srv := natstest.Start(t)
	proxy, cfg := via(t, srv)
	cfg.PublishWindow = 16
	pub := connect(t, cfg, "publisher")
	proxy.BlackholeReplies(true)
	msgs, errs := tickBatch(0, 100), make([]error, 100)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		pub.PublishBatch(context.Background(), msgs, errs)
	}()
	if !catgatest.Poll(5*time.Second, func() bool { return natsmod.PendingAcks(pub) >= cfg.PublishWindow }) {
		t.Fatalf("%d pending, want the window of %d", natsmod.PendingAcks(pub), cfg.PublishWindow)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = pub.Close(ctx)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the batch still waits 5s after Close")
	}
	for i, err := range errs {
		sent := i < cfg.PublishWindow
		switch {
		case sent && !errors.Is(err, cqrs.ErrOutcomeUnknown):
			t.Fatalf("errs[%d] (sent, unacked) = %v, want cqrs.ErrOutcomeUnknown", i, err)
		case !sent && (errors.Is(err, cqrs.ErrOutcomeUnknown) || !errors.Is(err, cqrs.ErrClosed)):
			t.Fatalf("errs[%d] (not sent) = %v, want cqrs.ErrClosed", i, err)
		}
	}
	t.Logf("errs[0] = %v\nerrs[%d] = %v", errs[0], cfg.PublishWindow, errs[cfg.PublishWindow])
}

// A message refused for itself does not stop the batch: the others are
// stored, in order.
func TestPublishBatch_RefusedMessageIsSkippedTheRestGo(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	pub := connect(t, cfg, "publisher")
	msgs := tickBatch(0, 5)
	msgs[1].Envelope.Payload = make([]byte, pub.MaxPayload()+(64<<10)) // over the server's max_payload
	msgs[3].Topic = transport.Topic{Kind: transport.KindQuery, Name: "Tick"}
	errs := make([]error, len(msgs))
	pub.PublishBatch(context.Background(), msgs, errs)
	if !errors.Is(errs[1], cqrs.ErrPayloadTooLarge) || !cqrs.IsPermanent(errs[1]) {
		t.Errorf("errs[1] (too large) = %v, want cqrs.ErrPayloadTooLarge", errs[1])
	}
	if !cqrs.IsPermanent(errs[3]) {
		t.Errorf("errs[3] (a query) = %v, want a permanent error", errs[3])
	}
	for _, i := range []int{0, 2, 4} {
		if errs[i] != nil {
			t.Errorf("errs[%d] = %v, want nil", i, errs[i])
		}
	}
	if got := storedTicks(t, srv.URL(), cfg); fmt.Sprint(got) != "[0 2 4]" {
		t.Errorf("stored %v, want [0 2 4]", got)
	}
}
