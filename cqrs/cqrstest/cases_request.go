package cqrstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
)

func testRequestReply(t *testing.T, h *harness) {
	c := newCollector()
	svc := h.group("owner")
	for i := range 3 {
		inst := fmt.Sprintf("o%d", i)
		h.bus(busOptions{service: svc, instance: inst},
			cqrs.HandleCommand(cqrs.CommandHandlerFunc[suiteCommand, string](func(_ context.Context, cmd suiteCommand) (string, error) {
				c.add(inst, cmd.Key)
				return "done " + cmd.Key, nil
			})),
			cqrs.HandleQuery(cqrs.QueryHandlerFunc[suiteQuery, string](func(ctx context.Context, q suiteQuery) (string, error) {
				if q.Sleep > 0 {
					time.Sleep(q.Sleep) // past the caller's deadline: the reply is late
				}
				if q.Deadline {
					dl, ok := ctx.Deadline()
					if !ok {
						return "none", nil
					}
					return dl.UTC().Format(time.RFC3339Nano), nil
				}
				if q.Fail != "" {
					return "", cqrs.Errorf(cqrs.Code(q.Fail), "query %s failed on purpose", q.Key)
				}
				return "answer " + q.Key, nil
			})))
	}
	caller := h.bus(busOptions{service: h.group("caller"), instance: "c1"})
	ctx := context.Background()

	t.Run("ResultsAndOnceOverThreeResponders", func(t *testing.T) {
		want := keys("s", n(90, 30))
		var wg sync.WaitGroup
		errs := make(chan error, len(want))
		for _, k := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := cqrs.Send[string](ctx, caller, suiteCommand{Key: k})
				if err != nil || res != "done "+k {
					errs <- fmt.Errorf("Send %s = %q, %v", k, res, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		quiet()
		if d := c.diff(want, true); d != "" {
			t.Error(d)
		}
		if per := c.perInstance(); len(per) != 3 {
			t.Errorf("answered by %v, want all 3 responders", per)
		}
		res, err := cqrs.Ask[string](ctx, caller, suiteQuery{Key: "q1"})
		if err != nil || res != "answer q1" {
			t.Errorf("Ask = %q, %v", res, err)
		}
	})

	t.Run("HandlerErrorKeepsCodeAndMessage", func(t *testing.T) {
		for _, code := range []cqrs.Code{cqrs.CodeNotFound, cqrs.CodeConflict, cqrs.CodeInvalid, cqrs.CodeUnauthorized} {
			_, err := cqrs.Ask[string](ctx, caller, suiteQuery{Key: "q2", Fail: string(code)})
			if cqrs.CodeOf(err) != code || err == nil || err.Error() != "query q2 failed on purpose" {
				t.Errorf("error %v (code %q), want %q with the handler's message", err, cqrs.CodeOf(err), code)
			}
		}
	})

	t.Run("NoResponderFailsFast", func(t *testing.T) {
		start := time.Now()
		_, err := cqrs.Send[string](ctx, caller, suiteOther{Key: "nobody"})
		if !errors.Is(err, cqrs.ErrNoHandler) {
			t.Fatalf("err %v, want ErrNoHandler", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("ErrNoHandler after %v, want within 100ms", d)
		}
	})

	t.Run("HandlerContextHasTheCallersDeadline", func(t *testing.T) {
		want := time.Now().Add(7 * time.Second)
		dctx, cancel := context.WithDeadline(ctx, want)
		defer cancel()
		res, err := cqrs.Ask[string](dctx, caller, suiteQuery{Key: "dl", Deadline: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := time.Parse(time.RFC3339Nano, res)
		if err != nil {
			t.Fatalf("the handler's context has no deadline (%q): the caller's must cross the wire", res)
		}
		if d := got.Sub(want); d < -2*time.Millisecond || d > 2*time.Millisecond {
			t.Fatalf("the handler's deadline is %v, the caller's %v: off by %v", got, want, d)
		}
	})

	t.Run("DeadlineGivesTimeoutLateReplyDropped", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := cqrs.Ask[string](short, caller, suiteQuery{Key: "slow", Sleep: 400 * time.Millisecond})
		if cqrs.CodeOf(err) != cqrs.CodeTimeout {
			t.Fatalf("err %v (code %q), want timeout", err, cqrs.CodeOf(err))
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a 100ms deadline returned after %v", d)
		}
		// Requests made while the slow reply is due each get their own answer.
		deadline := time.Now().Add(600 * time.Millisecond)
		for i := 0; time.Now().Before(deadline); i++ {
			k := fmt.Sprintf("fast%d", i)
			res, err := cqrs.Ask[string](ctx, caller, suiteQuery{Key: k})
			if err != nil || res != "answer "+k {
				t.Fatalf("Ask %s = %q, %v; a late reply went to another request", k, res, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
