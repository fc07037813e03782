package cqrs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	"github.com/catga-go/catga/cqrs/transport"
)

// servingTransport is the memory transport that keeps the endpoints the
// bus serves, so a test can hand them a request as a broker would.
type servingTransport struct {
	*memory.Transport
	eps []transport.Endpoint
}

func (t *servingTransport) Serve(ctx context.Context, s transport.Responder) (transport.Closer, error) {
	t.eps = append(t.eps, s.Endpoints...)
	return t.Transport.Serve(ctx, s)
}

func TestServe_RequestWhoseCallerDeadlinePassedIsNotStarted(t *testing.T) {
	tr := &servingTransport{Transport: memory.New(memory.Options{})}
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	var runs atomic.Int32
	b := newBus(t, cqrs.Options{Service: "svc", Instance: "i1", Transport: tr},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[CreateOrder, OrderID](func(ctx context.Context, c CreateOrder) (OrderID, error) {
			runs.Add(1)
			return "o1", nil
		})))
	startBus(t, b)
	if len(tr.eps) != 1 {
		t.Fatalf("%d endpoints served, want 1", len(tr.eps))
	}
	env := &transport.Envelope{ID: cqrs.NewID(), Name: "CreateOrder", Kind: transport.KindCommand, ContentType: "application/json", Payload: []byte(`{"Customer":"c1"}`)}

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	rep := tr.eps[0].Handler.HandleRequest(expired, env)
	if rep.Err == nil || rep.Err.Code != string(cqrs.CodeTimeout) || runs.Load() != 0 {
		t.Fatalf("reply %+v after %d runs; want a timeout error and no run: the caller gave up", rep.Err, runs.Load())
	}

	live, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if rep := tr.eps[0].Handler.HandleRequest(live, env); rep.Err != nil || runs.Load() != 1 {
		t.Fatalf("a live request: reply %+v, %d runs; want an answer and one run", rep.Err, runs.Load())
	}
}
