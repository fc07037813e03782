package redismod_test

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/modules/redismod"
	"github.com/catga-go/catga/modules/redismod/redistest"
)

// logBuffer collects a logger's output; the transport's goroutines write
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

// secretServer is a redis-server a case runs on: its address, and how to
// stop it and start it again.
type secretServer struct {
	addr        string
	stop, again func()
}

// The wrong-secret and right-secret starts of the ACL test and of every
// other way to pass a password, and TLS, with a publish and consume and a
// server restart between: neither the logs nor any error returned show a
// secret or a URL with credentials.
func TestSecret_LogsAndErrorsHoldNoCredentials(t *testing.T) {
	pki := newTestPKI(t, "catga")
	otherPKI := newTestPKI(t, "other")
	plain := func(args ...string) func(t *testing.T) *secretServer {
		return func(t *testing.T) *secretServer {
			s := redistest.Start(t, args...)
			return &secretServer{addr: s.Addr(), stop: s.Stop, again: func() { s.StartAgain(t) }}
		}
	}
	aclUser := func(pass string) []string {
		return []string{"--user", "svc", "on", ">" + pass, "~*", "&*", "+@all", "-@dangerous"}
	}
	withURL := func(scheme, userinfo string) func(*redismod.Config, string) {
		return func(c *redismod.Config, addr string) { c.URL = scheme + "://" + userinfo + "@" + addr + "/0" }
	}
	const escaped = "p@ss/w:rd%right"
	tests := []struct {
		name    string
		server  func(t *testing.T) *secretServer // nil: the TLS server
		good    func(*redismod.Config, string)
		bad     []func(*redismod.Config, string)
		secrets []string
	}{
		{"ACL user and password", plain(aclUser("s3cret-acl-pass")...),
			func(c *redismod.Config, _ string) { c.Username, c.Password = "svc", "s3cret-acl-pass" },
			[]func(*redismod.Config, string){func(c *redismod.Config, _ string) { c.Username, c.Password = "svc", "wrong-pass-value" }},
			[]string{"s3cret-acl-pass", "wrong-pass-value"}},
		{"password in the URL", plain(aclUser("url-pass-right")...),
			withURL("redis", "svc:url-pass-right"),
			[]func(*redismod.Config, string){withURL("redis", "svc:url-pass-wrong")},
			[]string{"url-pass-right", "url-pass-wrong"}},
		{"escaped password in the URL", plain(aclUser(escaped)...),
			withURL("redis", "svc:"+url.QueryEscape(escaped)),
			[]func(*redismod.Config, string){withURL("redis", "svc:"+url.QueryEscape("p@ss/w:rd%wrong"))},
			[]string{escaped, url.QueryEscape(escaped), "p@ss/w:rd%wrong", url.QueryEscape("p@ss/w:rd%wrong")}},
		{"requirepass", plain("--requirepass", "req-pass-right"),
			func(c *redismod.Config, _ string) { c.Password = "req-pass-right" },
			[]func(*redismod.Config, string){func(c *redismod.Config, _ string) { c.Password = "req-pass-wrong" }},
			[]string{"req-pass-right", "req-pass-wrong"}},
		{"TLS with a password in a rediss URL", nil,
			func(c *redismod.Config, addr string) {
				withURL("rediss", ":tls-pass-right")(c, addr)
				c.TLSCA, c.TLSCert, c.TLSKey = pki.CA, pki.ClientCert, pki.ClientKey
			},
			[]func(*redismod.Config, string){
				func(c *redismod.Config, addr string) { // the right password, a client of another CA
					withURL("rediss", ":tls-pass-right")(c, addr)
					c.TLSCA, c.TLSCert, c.TLSKey = otherPKI.CA, otherPKI.ClientCert, otherPKI.ClientKey
				},
				func(c *redismod.Config, addr string) { // the right certificates, a wrong password
					withURL("rediss", ":tls-pass-wrong")(c, addr)
					c.TLSCA, c.TLSCert, c.TLSKey = pki.CA, pki.ClientCert, pki.ClientKey
				},
			},
			append(append([]string{"tls-pass-right", "tls-pass-wrong"}, pki.KeyPEMs...), otherPKI.KeyPEMs...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *secretServer
			if tt.server != nil {
				srv = tt.server(t)
			} else {
				s, noTLS := startTLSRedis(t, pki, "--requirepass", "tls-pass-right")
				if noTLS != "" {
					assertBuiltWithoutTLS(t, noTLS)
					return
				}
				srv = &secretServer{addr: s.addr(), stop: s.stop, again: func() { s.restart(t) }}
			}
			var logs logBuffer
			log := bufferLogger(&logs)
			var errs []error
			var configs []redismod.Config

			good := testConfig("redis://" + srv.addr + "/0")
			tt.good(&good, srv.addr)
			configs = append(configs, good)
			tr, err := redismod.New(good, nil, "secret/i1", log)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := tr.Start(ctx); err != nil {
				t.Fatalf("right secret: %v", err)
			}
			t.Cleanup(func() { _ = tr.Close(context.Background()) })
			bus, got := sealedBus(t, tr, "secret")
			errs = append(errs, publishSealed(t, bus, got, 1)...)
			srv.stop() // the failing reads are logged with their errors
			logs.waitFor(t, "stream read failing", 15*time.Second)
			errs = append(errs, tr.Check(ctx))
			srv.again()
			errs = append(errs, publishSealed(t, bus, got, 2)...)
			errs = append(errs, bus.Stop(ctx), tr.Close(ctx))

			for i, set := range tt.bad {
				bad := testConfig("redis://" + srv.addr + "/0")
				set(&bad, srv.addr)
				configs = append(configs, bad)
				err := startRedisErr(t, bad, log)
				if err == nil {
					t.Fatalf("wrong secret %d connected", i)
				}
				errs = append(errs, err)
			}

			assertSecretFree(t, "logs", logs.String(), tt.secrets)
			for _, err := range errs {
				if err != nil {
					assertSecretFree(t, "error", err.Error(), tt.secrets)
				}
			}
			for _, c := range configs {
				assertSecretFree(t, "Config.String()", c.String(), tt.secrets)
			}
		})
	}
}

// A REDIS_URL that does not parse is refused by New, and neither the error
// nor Config.String shows any part of the password in it.
func TestSecret_MalformedURLHidesItsPassword(t *testing.T) {
	tests := []struct {
		name, url string
		secrets   []string
	}{
		{"invalid port", "redis://svc:malformed-pass@127.0.0.1:bad/0", []string{"malformed-pass"}},
		{"invalid escape", "redis://svc:malformed-pass@127.0.0.1:6379/0%zz", []string{"malformed-pass"}},
		{"space in the password", "redis://svc:malformed pass@127.0.0.1:6379/0", []string{"malformed pass"}},
		{"rediss and an invalid port", "rediss://:malformed-pass@127.0.0.1:bad/0", []string{"malformed-pass"}},
		{"raw @ in the password and an invalid port", "redis://svc:leftpart@rightpart@127.0.0.1:bad/0",
			[]string{"leftpart@rightpart", "leftpart", "rightpart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := redismod.Config{URL: tt.url}
			_, err := redismod.New(cfg, nil, "malformed", nil)
			if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
				t.Fatalf("New: got %v, want an error naming REDIS_URL", err)
			}
			assertSecretFree(t, "error", err.Error(), tt.secrets)
			assertSecretFree(t, "Config.String()", cfg.String(), tt.secrets)
		})
	}
}
