// Package httpmod is the service's HTTP server: a chi router inside an
// *http.Server whose life follows the app's.
//
// Every request passes, in order: request id (X-Request-Id, echoed; one the
// server makes is "<instance>/<random>-<n>", the instance being HOSTNAME),
// real IP, the access log (zap; probes at debug, and a probe's 503 at info,
// never error), the recoverer (a panic is a 500 problem with the request id
// and no internals), the handler deadline, and the body limit (413). The
// server sets ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout
// from Config, so a slow client cannot hold a connection.
//
// The handler deadline (HTTP_HANDLER_TIMEOUT, default 5/6 of
// HTTP_WRITE_TIMEOUT: 25s) is the request context's, so a Send to a broker
// that does not answer ends in time for its 504 to reach the client; past
// HTTP_WRITE_TIMEOUT the server would drop the connection instead, so the
// handler timeout must be below it. A handler that ignores its context is
// not stopped.
//
// The real IP is believed only from a trusted proxy: X-Forwarded-For (read
// right to left, skipping trusted hops) or X-Real-IP replace RemoteAddr when
// the peer is within HTTP_TRUSTED_PROXIES (IPs and CIDRs, comma-separated).
// By default none is trusted and RemoteAddr is the peer.
//
// /metrics and the admin routes (the dead letters, with HTTP_ADMIN_TOKEN,
// and whatever is added with MountAdmin) are on HTTP_ADDR, or, with
// HTTP_ADMIN_ADDR set, only on a second server at that address, started and
// stopped with the first. /health and /ready are on both: Kubernetes probes
// the main port.
//
// Errors are application/problem+json (RFC 9457), mapped from the cqrs error
// code: malformed body 400, invalid 422, not_found 404, conflict 409,
// unauthorized 401, too large 413, unavailable 503, timeout 504, internal 500
// with a generic detail. Command and Query turn a handler of the bus into an
// http.HandlerFunc in one line.
//
// The folder is modules/http; the package is httpmod so it does not shadow
// net/http. It mounts /health and /ready from the health registry.
package httpmod
