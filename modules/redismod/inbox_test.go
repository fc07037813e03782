package redismod_test

import (
	"context"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs/inbox"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func TestInbox_ClaimDoneReleaseAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	in := redismod.NewInbox(connect(t, cfg, "inbox").Client(), cfg)
	other := redismod.NewInbox(connect(t, cfg, "other").Client(), cfg)
	ctx := context.Background()
	claim := func(s *redismod.Inbox, lease time.Duration) inbox.State {
		t.Helper()
		st, err := s.Claim(ctx, "svc/h/m1", lease)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := claim(in, time.Minute); st != inbox.StateNew {
		t.Fatalf("first claim: %v, want new", st)
	}
	if st := claim(other, time.Minute); st != inbox.StateBusy {
		t.Fatalf("a second instance while the first runs: %v, want busy", st)
	}
	if err := in.Release(ctx, "svc/h/m1"); err != nil {
		t.Fatal(err)
	}
	if st := claim(other, 200*time.Millisecond); st != inbox.StateNew {
		t.Fatalf("after release: %v, want new", st)
	}
	time.Sleep(300 * time.Millisecond) // the holder crashed: its lease runs out
	if st := claim(in, time.Minute); st != inbox.StateNew {
		t.Fatalf("after the lease: %v, want new", st)
	}
	if err := in.MarkDone(ctx, "svc/h/m1", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st := claim(other, time.Minute); st != inbox.StateDone {
		t.Fatalf("after success: %v, want done", st)
	}
	if err := other.Release(ctx, "svc/h/m1"); err != nil || claim(other, time.Minute) != inbox.StateDone {
		t.Fatal("Release must not forget a success")
	}
	time.Sleep(400 * time.Millisecond)
	if st := claim(in, time.Minute); st != inbox.StateNew {
		t.Fatalf("after the TTL: %v, want new", st)
	}
}
