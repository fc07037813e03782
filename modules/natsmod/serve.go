package natsmod

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/catga-go/catga/cqrs"
)

// service is a running Serve: a queue subscription per endpoint.
type service struct {
	t    *Transport
	ctx  context.Context
	kill context.CancelFunc
	sem  chan struct{}
	wg   sync.WaitGroup
	subs []*nats.Subscription
	once sync.Once
	err  error
}

// Serve implements cqrs.Transport: each endpoint is a queue subscription on
// its request subject with the group as queue, so one instance of the
// owning service answers each request. The handler's context ends at the
// caller's deadline.
func (t *Transport) Serve(ctx context.Context, s cqrs.Service) (cqrs.Subscriber, error) {
	nc, _, err := t.conn()
	if err != nil {
		return nil, err
	}
	if s.Group == "" || s.Instance == "" || len(s.Endpoints) == 0 {
		return nil, fmt.Errorf("natsmod: service needs a group, an instance and endpoints (got %q, %q, %d)", s.Group, s.Instance, len(s.Endpoints))
	}
	conc := s.Concurrency
	if conc <= 0 {
		conc = cqrs.DefaultConcurrency
	}
	hctx, kill := context.WithCancel(context.Background())
	srv := &service{t: t, ctx: hctx, kill: kill, sem: make(chan struct{}, conc)}
	for _, ep := range s.Endpoints {
		h := ep.Handler
		sub, err := nc.QueueSubscribe(t.requestSubject(ep.Topic), s.Group, func(m *nats.Msg) { srv.dispatch(m, h) })
		if err != nil {
			_ = srv.Close(ctx)
			return nil, fmt.Errorf("natsmod: serve %s: %w", ep.Topic, err)
		}
		srv.subs = append(srv.subs, sub)
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

// dispatch runs a request in its own goroutine, waiting for room first (so
// a busy instance slows its queue down rather than piling up).
func (s *service) dispatch(m *nats.Msg, h cqrs.RequestHandler) {
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		s.answer(m, h)
	}()
}

func (s *service) answer(m *nats.Msg, h cqrs.RequestHandler) {
	var rep *cqrs.Reply
	env, err := cqrs.ParseHeaders(m.Header.Get, m.Data)
	ctx := s.ctx
	if err == nil {
		env.Attempt = 1
		if ns, perr := strconv.ParseInt(m.Header.Get(headerDeadline), 10, 64); perr == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, time.Unix(0, ns))
			defer cancel()
		}
		rep = h.HandleRequest(ctx, env)
	} else {
		rep = cqrs.ReplyError(cqrs.Errorf(cqrs.CodeInvalid, "natsmod: bad request headers: %v", err))
	}
	if rep == nil {
		rep = cqrs.ReplyError(errors.New("natsmod: handler gave no reply"))
	}
	out := &nats.Msg{Header: nats.Header{}, Data: rep.Payload}
	if rep.Err != nil {
		out.Header[cqrs.HeaderErrorCode] = []string{string(rep.Err.Code)}
		out.Header[cqrs.HeaderErrorMessage] = []string{truncate(rep.Err.Message, 2048)}
	} else if rep.ContentType != "" {
		out.Header[cqrs.HeaderContentType] = []string{rep.ContentType}
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

// Close implements cqrs.Subscriber: it leaves the queue groups, then waits
// for requests in flight until ctx ends.
func (s *service) Close(ctx context.Context) error {
	s.once.Do(func() {
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.err = ctx.Err()
			s.kill()
			<-done
		}
		s.kill()
		s.t.mu.Lock()
		delete(s.t.srvs, s)
		s.t.mu.Unlock()
	})
	return s.err
}
