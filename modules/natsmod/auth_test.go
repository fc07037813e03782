package natsmod_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

func startErr(t *testing.T, cfg natsmod.Config) error {
	t.Helper()
	tr, err := natsmod.New(cfg, "auth", nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	err = tr.Start(ctx)
	_ = tr.Close(ctx)
	// A refused credential or TLS is not retried: it fails at once, where
	// an unreachable server is waited for until ctx ends.
	if took := time.Since(began); err != nil && (errors.Is(err, context.DeadlineExceeded) || took > 3*time.Second) {
		t.Fatalf("Start failed after %v (%v): want a refusal at once, not retried", took.Round(time.Millisecond), err)
	}
	return err
}

func TestAuth_ConnectsWithTheRightSecretOnly(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		server func(*server.Options)
		good   func(*natsmod.Config)
		bad    func(*natsmod.Config)
		secret string
	}{
		{"user and password",
			func(o *server.Options) { o.Username, o.Password = "svc", "pw-correct-horse" },
			func(c *natsmod.Config) { c.User, c.Password = "svc", "pw-correct-horse" },
			func(c *natsmod.Config) { c.User, c.Password = "svc", "pw-wrong-battery" },
			"pw-wrong-battery"},
		{"token",
			func(o *server.Options) { o.Authorization = "tok-s3cr3t-value" },
			func(c *natsmod.Config) { c.Token = "tok-s3cr3t-value" },
			func(c *natsmod.Config) { c.Token = "tok-guessed-value" },
			"tok-guessed-value"},
		{"nkey",
			func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} },
			func(c *natsmod.Config) { c.NkeySeed = seedFile },
			func(c *natsmod.Config) { c.NkeySeed = otherFile },
			string(otherSeed)},
		{"password in the URL",
			func(o *server.Options) { o.Username, o.Password = "svc", "url-pass-right" },
			func(c *natsmod.Config) { c.URL = strings.Replace(c.URL, "nats://", "nats://svc:url-pass-right@", 1) },
			func(c *natsmod.Config) { c.URL = strings.Replace(c.URL, "nats://", "nats://svc:url-pass-wrong@", 1) },
			"url-pass-wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t, tt.server)
			good := testConfig(srv)
			tt.good(&good)
			if err := startErr(t, good); err != nil {
				t.Fatalf("right secret: %v", err)
			}
			bad := testConfig(srv)
			tt.bad(&bad)
			err := startErr(t, bad)
			if err == nil {
				t.Fatal("a wrong secret connected")
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("error %q contains the secret", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), "authorization") || !strings.Contains(err.Error(), "connect to") {
				t.Fatalf("error %q does not say the credentials were refused", err)
			}
			if s := bad.String(); strings.Contains(s, tt.secret) {
				t.Fatalf("Config.String() %q shows the secret", s)
			}
		})
	}
}
