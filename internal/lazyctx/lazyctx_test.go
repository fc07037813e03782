package lazyctx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWithDeadline_DoneClosesAtTheDeadline(t *testing.T) {
	at := time.Now().Add(30 * time.Millisecond)
	ctx := WithDeadline(context.Background(), at)
	defer ctx.Cancel()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close at the deadline")
	}
	if time.Now().Before(at) {
		t.Errorf("Done closed before the deadline")
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err: %v, want DeadlineExceeded", err)
	}
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cause: %v, want DeadlineExceeded", err)
	}
}

func TestWithDeadline_ErrAfterTheDeadlineWithoutDone(t *testing.T) {
	ctx := WithDeadline(context.Background(), time.Now().Add(5*time.Millisecond))
	defer ctx.Cancel()
	time.Sleep(20 * time.Millisecond)
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err past the deadline, nobody waiting: %v, want DeadlineExceeded", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Error("Done is open although Err says the deadline passed")
	}
}

func TestWithDeadline_CancelEndsIt(t *testing.T) {
	for _, waited := range []bool{false, true} {
		ctx := WithDeadline(context.Background(), time.Now().Add(time.Hour))
		if waited {
			_ = ctx.Done() // made before Cancel
		}
		ctx.Cancel()
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("waited %v: Err after Cancel: %v, want Canceled", waited, err)
		}
		select {
		case <-ctx.Done():
		default:
			t.Errorf("waited %v: Done open after Cancel", waited)
		}
	}
}

func TestWithDeadline_ParentEndsIt(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	ctx := WithDeadline(parent, time.Now().Add(time.Hour))
	defer ctx.Cancel()
	cause := errors.New("parent stopped")
	cancel(cause)
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after the parent's cancel: %v, want Canceled", err)
	}
	<-ctx.Done()
	if got := context.Cause(ctx); !errors.Is(got, cause) {
		t.Errorf("Cause: %v, want the parent's %v", got, cause)
	}
}

func TestWithDeadline_DerivedContextEndsAtTheDeadline(t *testing.T) {
	ctx := WithDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer ctx.Cancel()
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	v := context.WithValue(child, struct{}{}, 1)
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from it did not end at its deadline")
	}
	if err := v.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("derived Err: %v, want DeadlineExceeded", err)
	}
}

func TestWithDeadline_DeadlineIsTheEarlier(t *testing.T) {
	early := time.Now().Add(time.Minute)
	parent, cancel := context.WithDeadline(context.Background(), early)
	defer cancel()
	ctx := WithDeadline(parent, early.Add(time.Hour))
	defer ctx.Cancel()
	if got, ok := ctx.Deadline(); !ok || !got.Equal(early) {
		t.Errorf("Deadline under an earlier parent: %v %v, want %v", got, ok, early)
	}
	late := WithDeadline(context.Background(), early)
	defer late.Cancel()
	if got, ok := late.Deadline(); !ok || !got.Equal(early) {
		t.Errorf("Deadline: %v %v, want %v", got, ok, early)
	}
}

func TestWithDeadline_ValuesReadThrough(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx := WithDeadline(parent, time.Now().Add(time.Hour))
	defer ctx.Cancel()
	if ctx.Value(key{}) != "v" {
		t.Error("value of the parent lost before Done")
	}
	_ = ctx.Done()
	if ctx.Value(key{}) != "v" {
		t.Error("value of the parent lost after Done")
	}
}

func TestWithDeadline_ConcurrentWaitersShareOneChannel(t *testing.T) {
	ctx := WithDeadline(context.Background(), time.Now().Add(time.Hour))
	chans := make([]<-chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chans[i] = ctx.Done()
			_ = ctx.Err()
		}()
	}
	wg.Wait()
	for i, c := range chans {
		if c != chans[0] {
			t.Fatalf("waiter %d got another Done channel", i)
		}
	}
	ctx.Cancel()
	<-chans[0]
}

func TestBound_SetOnceCancelEnds(t *testing.T) {
	var b Bound
	parent := context.Background()
	if b.Context(parent, true) != nil {
		t.Fatal("a zero Bound made a context")
	}
	if !b.Set(time.Now().Add(time.Hour)) {
		t.Fatal("Set on a zero Bound refused")
	}
	if b.Set(time.Now().Add(time.Minute)) {
		t.Error("a second Set took, want it refused (nest instead)")
	}
	ctx := b.Context(parent, true)
	if ctx == nil || ctx.Err() != nil {
		t.Fatalf("bounded context: %v", ctx)
	}
	b.Cancel()
	if !b.Ended() || !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("after Cancel: ended %v, Err %v; want ended and Canceled (its timer stopped)", b.Ended(), ctx.Err())
	}
}

// A context that ended before anyone asked for Done is done for whoever
// kept it: the same closed channel each time, Canceled, its cause too, and
// a context derived from it ends at once; no timer was made for it.
func TestWithDeadline_EndedUnobservedStaysDone(t *testing.T) {
	ctx := WithDeadline(context.Background(), time.Now().Add(time.Hour))
	ctx.Cancel()
	d1, d2 := ctx.Done(), ctx.Done()
	if d1 != d2 {
		t.Error("Done changed between two calls")
	}
	select {
	case <-d1:
	default:
		t.Fatal("Done open after Cancel")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err %v, want Canceled", ctx.Err())
	}
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Errorf("Cause %v, want Canceled", context.Cause(ctx))
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Error("a context derived from an ended one is not done")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("Deadline %v %v changed after Cancel", d, ok)
	}
	n := testing.AllocsPerRun(1000, func() {
		c := WithDeadline(context.Background(), time.Now().Add(time.Second))
		c.Cancel()
		<-c.Done()
		_ = c.Err()
	})
	if n != 1 {
		t.Errorf("%v allocations for a context ended and then waited on, want 1", n)
	}
}

func TestWithDeadline_NobodyWaitingCostsOneAllocation(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := testing.AllocsPerRun(1000, func() {
		ctx := WithDeadline(parent, time.Now().Add(time.Second))
		_, _ = ctx.Deadline()
		_ = ctx.Err()
		ctx.Cancel()
	})
	if n != 1 {
		t.Errorf("%v allocations, want 1 (context.WithTimeout makes about 4 here)", n)
	}
}

func BenchmarkWithDeadline(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("lazy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := WithDeadline(parent, time.Now().Add(time.Second))
			_ = ctx.Err()
			ctx.Cancel()
		}
	})
	b.Run("context.WithDeadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithDeadline(parent, time.Now().Add(time.Second))
			_ = ctx.Err()
			cancel()
		}
	})
}
