package natsmod

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
	"github.com/catga-go/catga/internal/consumer"
	"github.com/catga-go/catga/internal/lazyctx"
)

// service is a running Serve: queue subscriptions per endpoint.
type service struct {
	t    *Transport
	h    consumer.Handlers
	subs []*nats.Subscription
	once sync.Once
	err  error

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
}

// Serve implements transport.Transport: each endpoint is served by several
// queue subscriptions on its request subject, with the group as queue, so
// one instance of the owning service answers each request. Each
// subscription answers in its own callback, with no goroutine handed the
// request: the server spreads requests over them, and over instances, so
// an endpoint answers up to min(concurrency, 2 x GOMAXPROCS, 8) at once
// per instance. The handler's context ends at the caller's deadline.
func (t *Transport) Serve(ctx context.Context, s transport.Responder) (transport.Closer, error) {
	nc, _, err := t.conn()
	if err != nil {
		return nil, err
	}
	if s.Group == "" || s.Instance == "" || len(s.Endpoints) == 0 {
		return nil, fmt.Errorf("natsmod: service needs a group, an instance and endpoints (got %q, %q, %d)", s.Group, s.Instance, len(s.Endpoints))
	}
	conc := s.Concurrency
	if conc <= 0 {
		conc = transport.DefaultConcurrency
	}
	per := max(1, min(conc, 2*runtime.GOMAXPROCS(0), 8))
	srv := &service{t: t, h: consumer.NewHandlers()}
	for _, ep := range s.Endpoints {
		h, topic := ep.Handler, ep.Topic
		for range per {
			sub, err := nc.QueueSubscribe(t.requestSubject(ep.Topic), s.Group, func(m *nats.Msg) { srv.dispatch(m, h, topic) })
			if err != nil {
				_ = srv.Close(ctx)
				return nil, fmt.Errorf("natsmod: serve %s: %w", ep.Topic, err)
			}
			srv.subs = append(srv.subs, sub)
		}
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil { // the server knows the queue group before we return
		_ = srv.Close(ctx)
		return nil, fmt.Errorf("natsmod: serve: %w", err)
	}
	t.mu.Lock()
	t.srvs[srv] = struct{}{}
	t.mu.Unlock()
	return srv, nil
}

// dispatch answers a request in the subscription's callback.
func (s *service) dispatch(m *nats.Msg, h transport.RequestHandler, topic transport.Topic) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return // the caller times out, or another instance answers a retry
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.answer(m, h, topic)
}

func (s *service) answer(m *nats.Msg, h transport.RequestHandler, topic transport.Topic) {
	var rep *transport.Reply
	env, err := envelopeOfTopic(m.Header, m.Data, topic)
	ctx := s.h.Context()
	if err == nil {
		env.Attempt = 1
		if ns, perr := strconv.ParseInt(m.Header.Get(headerDeadline), 10, 64); perr == nil {
			// The caller's deadline, its timer made only if the handler
			// waits on it (most answer from memory or one query).
			dl := lazyctx.WithDeadline(ctx, time.Unix(0, ns))
			defer dl.Cancel()
			ctx = dl
		}
		rep = h.HandleRequest(ctx, env)
	} else {
		rep = transport.Failed(string(cqrs.CodeInvalid), fmt.Sprintf("natsmod: bad request headers: %v", err))
	}
	if rep == nil {
		rep = transport.Failed(string(cqrs.CodeInternal), "natsmod: handler gave no reply")
	}
	// A JSON success carries no header at all: nothing to encode or parse.
	out := &nats.Msg{Data: rep.Payload}
	if rep.Err != nil {
		out.Header = nats.Header{transport.HeaderErrorCode: {string(rep.Err.Code)}, transport.HeaderErrorMessage: {truncate(rep.Err.Message, 2048)}}
	} else if rep.ContentType != "" && rep.ContentType != defaultContentType {
		out.Header = nats.Header{transport.HeaderContentType: {rep.ContentType}}
	}
	if err := m.RespondMsg(out); err != nil {
		s.t.log.Debug("reply not sent; the caller retries or times out: " + errText(err, s.t.cfg))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Close implements transport.Closer: it leaves the queue groups, then waits
// for requests in flight until ctx ends.
func (s *service) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		s.err = s.h.Wait(ctx, s.inflight.Wait)
		s.t.mu.Lock()
		delete(s.t.srvs, s)
		s.t.mu.Unlock()
	})
	return s.err
}
