package httpmod_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	httpmod "github.com/catga-go/catga/modules/http"
)

// remoteOf serves a request from peer with headers on a server for cfg and
// returns the RemoteAddr the handler saw and the access log's remote field.
func remoteOf(t *testing.T, cfg httpmod.Config, peer string, headers map[string]string) (handler, logged string) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := httpmod.New(cfg, nil, zap.New(core))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.Mount(httpmod.MountFunc(func(r chi.Router) {
		r.Get("/whoami", func(w http.ResponseWriter, r *http.Request) {
			handler = r.RemoteAddr
			w.WriteHeader(http.StatusNoContent)
		})
	}))
	req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
	req.RemoteAddr = peer
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	do(t, s.Handler(), req)
	entries := logs.FilterMessage("http request").AllUntimed()
	if len(entries) != 1 {
		t.Fatalf("access log lines: got %d, want 1", len(entries))
	}
	logged, _ = entries[0].ContextMap()["remote"].(string)
	return handler, logged
}

func TestRealIP_ForwardedHeadersFromAnUntrustedPeerAreIgnored(t *testing.T) {
	const peer = "203.0.113.9:40000"
	tests := []struct {
		name    string
		proxies string
		headers map[string]string
	}{
		{"no trusted proxies, X-Forwarded-For", "", map[string]string{"X-Forwarded-For": "198.51.100.1"}},
		{"no trusted proxies, X-Real-IP", "", map[string]string{"X-Real-IP": "198.51.100.1"}},
		{"no trusted proxies, True-Client-IP", "", map[string]string{"True-Client-IP": "198.51.100.1"}},
		{"peer outside the trusted CIDR", "10.0.0.0/8", map[string]string{"X-Forwarded-For": "198.51.100.1"}},
		{"peer is not the trusted IP", "203.0.113.10", map[string]string{"X-Real-IP": "198.51.100.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, logged := remoteOf(t, httpmod.Config{TrustedProxies: tc.proxies}, peer, tc.headers)
			if handler != peer {
				t.Errorf("RemoteAddr in the handler: got %q, want the peer %q", handler, peer)
			}
			if logged != peer {
				t.Errorf("remote in the access log: got %q, want the peer %q", logged, peer)
			}
		})
	}
}

func TestRealIP_ForwardedHeadersFromATrustedProxyAreUsed(t *testing.T) {
	tests := []struct {
		name    string
		proxies string
		peer    string
		headers map[string]string
		want    string
	}{
		{"X-Forwarded-For from a trusted CIDR", "10.0.0.0/8", "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1"}, "198.51.100.1"},
		{"X-Real-IP from a trusted CIDR", "10.0.0.0/8", "10.1.2.3:5555",
			map[string]string{"X-Real-IP": "198.51.100.1"}, "198.51.100.1"},
		{"from a trusted IP among several", "192.168.0.0/16, 10.9.9.9", "10.9.9.9:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped, right to left", "10.0.0.0/8", "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1, 10.0.0.7"}, "198.51.100.1"},
		{"what the client wrote left of its address is not believed", "10.0.0.0/8", "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"IPv6", "fd00::/8", "[fd00::1]:5555",
			map[string]string{"X-Forwarded-For": "2001:db8::7"}, "2001:db8::7"},
		{"an unparsable hop leaves the peer", "10.0.0.0/8", "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1, not-an-ip"}, "10.1.2.3:5555"},
		{"no header leaves the peer", "10.0.0.0/8", "10.1.2.3:5555", nil, "10.1.2.3:5555"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, logged := remoteOf(t, httpmod.Config{TrustedProxies: tc.proxies}, tc.peer, tc.headers)
			if handler != tc.want {
				t.Errorf("RemoteAddr in the handler: got %q, want %q", handler, tc.want)
			}
			if logged != tc.want {
				t.Errorf("remote in the access log: got %q, want %q", logged, tc.want)
			}
		})
	}
}

func TestConfigValidate_BadTrustedProxyIsNamed(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "10.0.0.300", "proxy.internal", "10.0.0.0/8/1"} {
		t.Run(bad, func(t *testing.T) {
			c := httpmod.Config{TrustedProxies: "192.168.0.0/16, " + bad}.WithDefaults()
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate with HTTP_TRUSTED_PROXIES %q: got nil, want an error", c.TrustedProxies)
			}
			for _, want := range []string{"HTTP_TRUSTED_PROXIES", bad} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error: got %q, want it to name %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "192.168.0.0/16") {
				t.Errorf("Validate error: got %q, want only the bad value named", err)
			}
		})
	}
}

func TestConfigValidate_AcceptsTrustedIPsAndCIDRs(t *testing.T) {
	c := httpmod.Config{TrustedProxies: "10.0.0.0/8,172.16.0.1, fd00::/8 ,::1"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with HTTP_TRUSTED_PROXIES %q: got %v, want nil", c.TrustedProxies, err)
	}
}
