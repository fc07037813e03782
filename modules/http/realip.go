package httpmod

import (
	"net/http"
	"net/netip"
	"strings"
)

// RealIP sets r.RemoteAddr to the client's IP from X-Forwarded-For (or,
// without it, X-Real-IP), but only for a request whose peer is one of
// trusted: anyone else can write those headers. With no trusted proxies the
// headers are ignored and RemoteAddr stays the peer's.
//
// X-Forwarded-For is read right to left, each hop appended by the proxy
// that received it: the first address not of a trusted proxy is the
// client, and what the client itself wrote further left is not believed.
// An entry that is not an IP leaves the peer's address.
func RealIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ip, ok := forwardedFor(r, trusted); ok {
				r.RemoteAddr = ip.String()
			}
			next.ServeHTTP(w, r)
		})
	}
}

// forwardedFor returns the client's IP as r's trusted proxies report it.
func forwardedFor(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseIP(r.RemoteAddr)
	if !ok || !within(peer, trusted) {
		return netip.Addr{}, false
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		var client netip.Addr
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := strings.TrimSpace(hops[i])
			if hop == "" {
				continue
			}
			ip, ok := parseIP(hop)
			if !ok {
				return netip.Addr{}, false
			}
			client = ip
			if !within(ip, trusted) {
				break
			}
		}
		// Every hop trusted: the leftmost is as far as the chain goes.
		return client, client.IsValid()
	}
	if v := r.Header.Values("X-Real-IP"); len(v) > 0 {
		return parseIP(strings.TrimSpace(v[len(v)-1])) // the last, set by the closest proxy
	}
	return netip.Addr{}, false
}

// parseIP reads an IP or IP:port, v4-mapped IPv6 folded to IPv4 and any
// zone dropped, so one address has one form to match a prefix with.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

func within(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
