package redismod_test

import (
	"context"
	"testing"
	"time"

	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

func TestInbox_RemembersSuccessForItsTTL(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	tr := connect(t, cfg, "inbox")
	in := redismod.NewInbox(tr.Client(), cfg)
	ctx := context.Background()
	if done, err := in.Done(ctx, "svc/h/m1"); err != nil || done {
		t.Fatalf("new key: done=%v err=%v", done, err)
	}
	if err := in.MarkDone(ctx, "svc/h/m1", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Another instance, another client: the same answer.
	other := redismod.NewInbox(connect(t, cfg, "other").Client(), cfg)
	if done, _ := other.Done(ctx, "svc/h/m1"); !done {
		t.Fatal("another instance does not see the done mark")
	}
	time.Sleep(400 * time.Millisecond)
	if done, _ := in.Done(ctx, "svc/h/m1"); done {
		t.Fatal("the mark outlived its TTL")
	}
}
