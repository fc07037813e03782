package redismod_test

import (
	"context"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// The readiness check follows the server: it fails while Redis is down and
// passes again once it is back, with the consumers reading again.
func TestCheck_FollowsTheServer(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.DialTimeout, cfg.ReadTimeout = 500*time.Millisecond, 500*time.Millisecond
	tr := connect(t, cfg, "ready")
	mu, got := counter(t, tr, "ready", "i1")
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return tr.Check(ctx)
	}
	if err := check(); err != nil {
		t.Fatalf("check with the server up: %v", err)
	}
	srv.Kill()
	catgatest.Eventually(t, 2*time.Second, "check still passes after the server died", func() bool { return check() != nil })
	srv.StartAgain(t)
	var err error
	if !catgatest.Poll(10*time.Second, func() bool { err = check(); return err == nil }) {
		t.Fatalf("check still fails 10s after the server returned: %v", err)
	}
	// The group was in memory only (no AOF): the reader makes it again.
	if err := tr.Publish(context.Background(), tickTopic, tickEnv(1)); err != nil {
		t.Fatal(err)
	}
	if lost, _ := waitAll(t, mu, got, []int{1}, 10*time.Second); len(lost) > 0 {
		t.Fatal("no delivery after the server came back")
	}
}
