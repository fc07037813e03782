package httpmod

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type errNoteKey struct{}

// errNote carries a handler's error to the access log, so a 5xx is logged
// once, with the request it belongs to.
type errNote struct {
	err    error
	logged bool // logged already (a panic, with its stack)
}

func noteError(r *http.Request, err error) {
	if n, ok := r.Context().Value(errNoteKey{}).(*errNote); ok && n.err == nil {
		n.err = err
	}
}

func noteLogged(r *http.Request) {
	if n, ok := r.Context().Value(errNoteKey{}).(*errNote); ok {
		n.logged = true
	}
}

// AccessLog logs one line per request: method, path, status, bytes,
// duration, request id, remote address; 5xx at error with the error, probes
// at debug. A probe's 503 (a pod starting or draining) is the probe doing
// its job: info, not error; the /ready body says why.
func AccessLog(log *zap.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			note, ok := r.Context().Value(errNoteKey{}).(*errNote) // the server's request has one
			if !ok {
				note = &errNote{}
				r = r.WithContext(context.WithValue(r.Context(), errNoteKey{}, note))
			}
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			level := zapcore.InfoLevel
			switch {
			case r.URL.Path == "/health" || r.URL.Path == "/ready":
				if status < 300 {
					level = zapcore.DebugLevel
				}
			case status >= 500:
				level = zapcore.ErrorLevel
			case r.URL.Path == "/metrics":
				level = zapcore.DebugLevel
			}
			if ce := log.Check(level, "http request"); ce != nil {
				fields := []zap.Field{
					zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status),
					zap.Int("bytes", ww.BytesWritten()), zap.Duration("duration", time.Since(start)),
					zap.String("request_id", middleware.GetReqID(r.Context())), zap.String("remote", r.RemoteAddr),
				}
				if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
					fields = append(fields, zap.String("trace_id", sc.TraceID().String()), zap.String("span_id", sc.SpanID().String()))
				}
				if note.err != nil && status >= 500 && !note.logged {
					fields = append(fields, zap.Error(note.err))
				}
				ce.Write(fields...)
			}
		})
	}
}
