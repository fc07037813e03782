package natsmod_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/modules/natsmod"
	"github.com/catga-go/catga/modules/natsmod/natstest"
)

// logBuffer collects a logger's output; the client's goroutines write
// while the test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the logs hold s.
func (l *logBuffer) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	if !catgatest.Poll(within, func() bool { return strings.Contains(l.String(), s) }) {
		t.Fatalf("no %q logged within %v; logs:\n%s", s, within, l)
	}
}

func bufferLogger(buf *logBuffer) *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(buf), zapcore.DebugLevel))
}

// credentialURL is a URL with user info; redactedUserInfo is what a
// redacted one may show there.
var (
	credentialURL    = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://([^/\s"@]*)@`)
	redactedUserInfo = regexp.MustCompile(`^([^:]*:)?(xxxxx|\[redacted\])$`)
)

// assertSecretFree fails if text holds one of secrets or a URL with
// credentials not redacted.
func assertSecretFree(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			t.Fatalf("%s: an empty secret in the test table", where)
		}
		if i := strings.Index(text, s); i >= 0 {
			t.Errorf("%s shows a secret (%.12s...) at %d:\n%s", where, s, i, text)
		}
	}
	for _, m := range credentialURL.FindAllStringSubmatch(text, -1) {
		if !redactedUserInfo.MatchString(m[1]) {
			t.Errorf("%s shows a URL with credentials %q:\n%s", where, m[0], text)
		}
	}
}

// The wrong-secret and right-secret starts of every way to authenticate,
// with a publish and consume, a broker restart and a reconnect between:
// neither the logs nor any error returned show a secret.
func TestSecret_LogsAndErrorsHoldNoCredentials(t *testing.T) {
	newSeedFile := func() (kp nkeys.KeyPair, file, seed string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		s, _ := kp.Seed()
		file = filepath.Join(t.TempDir(), "user.nk")
		if err := os.WriteFile(file, s, 0o600); err != nil {
			t.Fatal(err)
		}
		return kp, file, string(s)
	}
	userKey, userSeedFile, userSeed := newSeedFile()
	userPub, _ := userKey.PublicKey()
	_, otherSeedFile, otherSeed := newSeedFile()

	chain := newTrustChain(t)
	goodCreds := writeCreds(t, chain.account, nil)
	stranger, _ := newAccountJWT(t, chain.operator, true)
	badCreds := writeCreds(t, stranger, nil)

	pki := newTestPKI(t, "catga")
	otherPKI := newTestPKI(t, "other")

	withURLUser := func(userinfo string) func(*natsmod.Config) {
		return func(c *natsmod.Config) { c.URL = strings.Replace(c.URL, "nats://", "nats://"+userinfo+"@", 1) }
	}
	tests := []struct {
		name      string
		server    func(*server.Options)
		good, bad func(*natsmod.Config)
		secrets   []string
	}{
		{"user and password",
			func(o *server.Options) { o.Username, o.Password = "svc", "pw-correct-horse" },
			func(c *natsmod.Config) { c.User, c.Password = "svc", "pw-correct-horse" },
			func(c *natsmod.Config) { c.User, c.Password = "svc", "pw-wrong-battery" },
			[]string{"pw-correct-horse", "pw-wrong-battery"}},
		{"token",
			func(o *server.Options) { o.Authorization = "tok-s3cr3t-value" },
			func(c *natsmod.Config) { c.Token = "tok-s3cr3t-value" },
			func(c *natsmod.Config) { c.Token = "tok-guessed-value" },
			[]string{"tok-s3cr3t-value", "tok-guessed-value"}},
		{"nkey",
			func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: userPub}} },
			func(c *natsmod.Config) { c.NkeySeed = userSeedFile },
			func(c *natsmod.Config) { c.NkeySeed = otherSeedFile },
			[]string{userSeed, otherSeed}},
		{"password in the URL",
			func(o *server.Options) { o.Username, o.Password = "svc", "url-pass-right" },
			withURLUser("svc:url-pass-right"), withURLUser("svc:url-pass-wrong"),
			[]string{"url-pass-right", "url-pass-wrong"}},
		{"token in the URL",
			func(o *server.Options) { o.Authorization = "url-token-right" },
			withURLUser("url-token-right"), withURLUser("url-token-wrong"),
			[]string{"url-token-right", "url-token-wrong"}},
		{"creds",
			chain.configure,
			func(c *natsmod.Config) { c.Creds = goodCreds.File },
			func(c *natsmod.Config) { c.Creds = badCreds.File },
			[]string{goodCreds.JWT, goodCreds.Seed, badCreds.JWT, badCreds.Seed}},
		{"TLS client certificate",
			mutualTLS(t, pki),
			func(c *natsmod.Config) { c.TLSCA, c.TLSCert, c.TLSKey = pki.CA, pki.ClientCert, pki.ClientKey },
			func(c *natsmod.Config) {
				c.TLSCA, c.TLSCert, c.TLSKey = otherPKI.CA, otherPKI.ClientCert, otherPKI.ClientKey
			},
			append(append([]string{}, pki.KeyPEMs...), otherPKI.KeyPEMs...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t, tt.server)
			var logs logBuffer
			log := bufferLogger(&logs)
			var errs []error

			good := testConfig(srv)
			tt.good(&good)
			tr, err := natsmod.New(good, "secret/i1", log)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Start(ctx); err != nil {
				t.Fatalf("right secret: %v", err)
			}
			t.Cleanup(func() { _ = tr.Close(context.Background()) })
			bus, got := sealedBus(t, tr, "secret")
			errs = append(errs, publishSealed(t, bus, got, 1)...)
			srv.Restart(t) // the disconnect and reconnect are logged, with the server's URL
			logs.waitFor(t, "reconnected to NATS", 15*time.Second)
			errs = append(errs, publishSealed(t, bus, got, 2)...)
			errs = append(errs, bus.Stop(ctx), tr.Close(ctx))

			bad := testConfig(srv)
			tt.bad(&bad)
			btr, err := natsmod.New(bad, "secret/i2", log)
			if err != nil {
				t.Fatal(err)
			}
			berr := btr.Start(ctx)
			if berr == nil {
				t.Fatal("the wrong secret connected")
			}
			errs = append(errs, berr, btr.Close(ctx))

			text := logs.String()
			if !strings.Contains(text, "connected to NATS") {
				t.Fatalf("logs hold no connection line, the check would prove nothing:\n%s", text)
			}
			assertSecretFree(t, "logs", text, tt.secrets)
			for _, err := range errs {
				if err != nil {
					assertSecretFree(t, "error", err.Error(), tt.secrets)
				}
			}
			for _, c := range []natsmod.Config{good, bad} {
				assertSecretFree(t, "Config.String()", c.String(), tt.secrets)
			}
		})
	}
}

// A NATS_URL that does not parse is refused by New, and neither the error
// nor Config.String shows any part of the password in it.
func TestSecret_MalformedURLHidesItsPassword(t *testing.T) {
	tests := []struct {
		name, url string
		secrets   []string
	}{
		{"invalid port", "nats://svc:malformed-pass@127.0.0.1:bad", []string{"malformed-pass"}},
		{"invalid escape", "nats://svc:malformed-pass@127.0.0.1:4222/%zz", []string{"malformed-pass"}},
		{"space in the password", "nats://svc:malformed pass@127.0.0.1:4222", []string{"malformed pass"}},
		{"token and an invalid port", "nats://malformed-token@127.0.0.1:bad", []string{"malformed-token"}},
		{"raw @ in the password and an invalid port", "nats://svc:leftpart@rightpart@127.0.0.1:bad",
			[]string{"leftpart@rightpart", "leftpart", "rightpart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := natsmod.Config{URL: tt.url}
			_, err := natsmod.New(cfg, "malformed", nil)
			if err == nil || !strings.Contains(err.Error(), "NATS_URL") {
				t.Fatalf("New: got %v, want an error naming NATS_URL", err)
			}
			assertSecretFree(t, "error", err.Error(), tt.secrets)
			assertSecretFree(t, "Config.String()", cfg.String(), tt.secrets)
		})
	}
}
