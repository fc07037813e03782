// Package httpmod is the service's HTTP server: a chi router inside an
// *http.Server whose life follows the app's.
//
// Every request passes, in order: request id (X-Request-Id, echoed), real IP,
// the access log (zap; probes at debug), the recoverer (a panic is a 500
// problem with the request id and no internals), and the body limit (413).
// The server sets ReadHeaderTimeout, ReadTimeout, WriteTimeout and
// IdleTimeout from Config, so a slow client cannot hold a connection.
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
