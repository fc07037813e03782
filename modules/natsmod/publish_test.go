package natsmod_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/faultproxy"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

var tickTopic = transport.Topic{Kind: transport.KindEvent, Name: "Tick"}

// tickEnv is a Tick event with a new id.
func tickEnv(n int) *transport.Envelope {
	return &transport.Envelope{ID: cqrs.NewID(), Name: "Tick", Kind: transport.KindEvent, ContentType: "application/json",
		Time: time.Now(), Payload: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// waitStatus waits until tr's readiness check passes (up) or fails (down).
func waitStatus(t *testing.T, tr *natsmod.Transport, up bool) {
	t.Helper()
	var err error
	if !catgatest.Poll(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		err = tr.Check(ctx)
		return (err == nil) == up
	}) {
		t.Fatalf("readiness still %v after 15s, want up=%v", err, up)
	}
}

// publishUntilAcked publishes env until the broker acknowledges it (a
// server that just came back may not have its streams loaded yet).
func publishUntilAcked(t *testing.T, tr *natsmod.Transport, env *transport.Envelope) {
	t.Helper()
	var err error
	if !catgatest.Poll(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = tr.Publish(ctx, tickTopic, env)
		return err == nil
	}) {
		t.Fatalf("publish after the reconnect: %v", err)
	}
}

// waitHandled waits until the Tick n was handled, and fails after within.
func waitHandled(t *testing.T, got func(n int) int, n int, within time.Duration) {
	t.Helper()
	catgatest.Eventually(t, within, fmt.Sprintf("tick %d not handled", n), func() bool { return got(n) != 0 })
}

// storedOn counts the messages of subject in stream, through a connection
// of its own.
func storedOn(t *testing.T, url, stream, subject string) uint64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// The seen failure: with the server down, Publish failed, the caller
// compensated, and nats.go's reconnect buffer sent the message after the
// reconnect anyway. Now it fails at once, as unavailable, and is never sent:
// refused by the transport when it knows the connection is down, and by
// nats.go (no reconnect buffer) when the disconnect callback has not run yet.
func TestPublish_WhileDisconnectedFailsAtOnceAndIsNeverDeliveredLater(t *testing.T) {
	for _, tt := range []struct {
		name     string
		callback bool // false: the transport is made to miss the disconnect
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
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := pub.Publish(ctx, tickTopic, tickEnv(1))
			took := time.Since(start)
			if took > 100*time.Millisecond {
				t.Errorf("publish while disconnected took %v, want it to fail at once (under 100ms)", took)
			}
			if !errors.Is(err, cqrs.ErrUnavailable) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
				t.Errorf("publish while disconnected: got %v, want a definite cqrs.ErrUnavailable", err)
			}
			t.Logf("publish while disconnected: %v after %v", err, took.Round(time.Microsecond))

			srv.StartAgain(t)
			waitStatus(t, pub, true)
			publishUntilAcked(t, pub, tickEnv(2))
			waitHandled(t, got, 2, 10*time.Second)
			time.Sleep(2 * time.Second) // what a reconnect buffer held would have arrived by now
			if n := got(1); n != 0 {
				t.Errorf("the publish that failed was delivered %d times after the reconnect, want never", n)
			}
			if n := storedOn(t, srv.URL(), cfg.StreamPrefix+"_EVENTS", cfg.Prefix+".events.Tick"); n != 2 {
				t.Errorf("stream holds %d Ticks, want 2 (the ones published while connected)", n)
			}
		})
	}
}

// via starts a fault proxy to srv and returns it with a Config through it.
func via(t *testing.T, srv *natstest.Server) (*faultproxy.Proxy, natsmod.Config) {
	t.Helper()
	proxy, err := faultproxy.Start(strings.TrimPrefix(srv.URL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	cfg := testConfig(srv)
	cfg.URL = "nats://" + proxy.Addr()
	cfg.PingInterval = time.Minute // the client must not notice the silence and reconnect
	return proxy, cfg
}

// The publish reaches the server and is stored, its ack never comes back:
// the outcome is unknown, not a failure, and publishing the same envelope
// again stores nothing new.
func TestPublish_LostAckIsOutcomeUnknown(t *testing.T) {
	srv := natstest.Start(t)
	proxy, cfg := via(t, srv)
	pub := connect(t, cfg, "publisher")
	env := tickEnv(1)

	proxy.BlackholeReplies(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := pub.Publish(ctx, tickTopic, env)
	cancel()
	if !errors.Is(err, cqrs.ErrOutcomeUnknown) || errors.Is(err, cqrs.ErrUnavailable) {
		t.Fatalf("publish whose ack is lost: got %v, want cqrs.ErrOutcomeUnknown", err)
	}
	t.Logf("publish whose ack is lost: %v", err)
	proxy.BlackholeReplies(false)

	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, tickTopic, env); err != nil {
		t.Fatalf("publish again with the same id: %v", err)
	}
	if n := storedOn(t, srv.URL(), cfg.StreamPrefix+"_EVENTS", cfg.Prefix+".events.Tick"); n != 1 {
		t.Fatalf("stream holds %d copies, want 1: the lost-ack publish was stored, its retry deduplicated", n)
	}
}

// No stream captures the subject (it was deleted): the server answers no
// responders, a definite failure.
func TestPublish_NoStreamIsDefiniteNotUnknown(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	pub := connect(t, cfg, "publisher")
	deleteStreams(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := pub.Publish(ctx, tickTopic, tickEnv(1))
	if !errors.Is(err, cqrs.ErrUnavailable) || errors.Is(err, cqrs.ErrOutcomeUnknown) {
		t.Fatalf("publish with no stream: got %v, want a definite cqrs.ErrUnavailable", err)
	}
	t.Logf("publish with no stream: %v", err)
}

// Publishing steadily while the server stops and starts again: every
// publish that failed definitely is not in the stream, every acknowledged
// one is, and only the unknown ones may be either.
func TestPublish_AcrossARestartEveryDefiniteFailureIsNeverStored(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(srv)
	pub := connect(t, cfg, "publisher")
	type outcome struct {
		env *transport.Envelope
		err error
	}
	var outcomes []outcome
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			env := tickEnv(n)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err := pub.Publish(ctx, tickTopic, env)
			cancel()
			outcomes = append(outcomes, outcome{env, err})
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	srv.Shutdown()
	time.Sleep(time.Second)
	srv.StartAgain(t)
	waitStatus(t, pub, true)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done

	stored := map[string]bool{}
	nc, err := nats.Connect(srv.URL())
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
	for range info.NumPending {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		stored[m.Headers().Get(jetstream.MsgIDHeader)] = true
	}
	var acked, definite, unknownOutcomes int
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			acked++
			if !stored[o.env.ID] {
				t.Errorf("acknowledged publish %s is not stored", o.env.ID)
			}
		case errors.Is(o.err, cqrs.ErrOutcomeUnknown):
			unknownOutcomes++
		default:
			definite++
			if stored[o.env.ID] {
				t.Errorf("publish %s failed definitely (%v) yet is stored", o.env.ID, o.err)
			}
		}
	}
	t.Logf("%d publishes across a restart: %d acknowledged, %d failed definitely, %d unknown; %d stored", len(outcomes), acked, definite, unknownOutcomes, len(stored))
	if definite == 0 || acked == 0 {
		t.Fatalf("want both acknowledged and failed publishes, got %d and %d", acked, definite)
	}
}
