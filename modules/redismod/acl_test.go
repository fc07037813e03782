package redismod_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// A user limited to the transport's keys works; a wrong password fails
// start with an error that names the problem and not the password.
func TestACL_LimitedUserWorksWrongPasswordFails(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	const pass = "s3cret-acl-pass"
	rules := []any{"ACL", "SETUSER", "svc", "on", ">" + pass, "~" + cfg.Prefix + ":*", "resetchannels", "+@all", "-@dangerous"}
	if err := admin.Do(context.Background(), rules...).Err(); err != nil {
		t.Fatal(err)
	}
	good := cfg
	good.Username, good.Password = "svc", pass
	tr := connect(t, good, "acl")
	got := make(chan int, 1)
	b, err := cqrs.New(cqrs.Options{Service: "acl", Instance: "i1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Tick](func(_ context.Context, e Tick) error { got <- e.N; return nil })))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("start with the limited user: %v", err)
	}
	defer b.Stop(context.Background())
	if err := b.Publish(context.Background(), Tick{N: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 7 {
			t.Fatalf("got %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery with the limited user")
	}
	if err := tr.Client().Set(context.Background(), "outside:key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("a key outside the prefix: %v, want NOPERM (the user is limited)", err)
	}

	for name, bad := range map[string]redismod.Config{
		"field": func() redismod.Config { c := cfg; c.Username, c.Password = "svc", "wrong-pass-value"; return c }(),
		"URL": func() redismod.Config {
			c := cfg
			c.URL = "redis://svc:" + url.QueryEscape("wrong-pass-value") + "@" + srv.Addr() + "/0"
			return c
		}(),
	} {
		tr, err := redismod.New(bad, nil, "bad", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		began := time.Now()
		err = tr.Start(ctx)
		took := time.Since(began)
		_ = tr.Close(ctx)
		cancel()
		if err == nil {
			t.Fatalf("%s: a wrong password connected", name)
		}
		if errors.Is(err, context.DeadlineExceeded) || took > 3*time.Second {
			t.Fatalf("%s: Start failed after %v (%v): want the refusal at once, not retried", name, took.Round(time.Millisecond), err)
		}
		if strings.Contains(err.Error(), "wrong-pass-value") {
			t.Fatalf("%s: error %q contains the password", name, err)
		}
		if !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "connect to") {
			t.Fatalf("%s: error %q does not say the password was refused", name, err)
		}
		if strings.Contains(bad.String(), "wrong-pass-value") {
			t.Fatalf("%s: Config.String() shows the password", name)
		}
	}
}
