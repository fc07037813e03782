package startretry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func noRedact(err error) string { return strings.ReplaceAll(err.Error(), "secret", "[redacted]") }

// A failing attempt is tried again, logged each time with its number, the
// wait and the redacted error, until it succeeds.
func TestRun_RetriesUntilSuccess(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	n := 0
	err := Run(context.Background(), zap.New(core), noRedact, "not up", func(context.Context) error {
		if n++; n < 3 {
			return errors.New("refused secret")
		}
		return nil
	}, zap.String("server", "s1"))
	if err != nil || n != 3 {
		t.Fatalf("Run: %v after %d attempts, want nil after 3", err, n)
	}
	entries := logs.All()
	if len(entries) != 2 || entries[0].Message != "not up; retrying" {
		t.Fatalf("logs %v, want 2 warnings", entries)
	}
	f := entries[1].ContextMap()
	if f["attempt"] != int64(2) || f["server"] != "s1" || f["error"] != "refused [redacted]" {
		t.Fatalf("fields %v", f)
	}
}

// A permanent error ends the wait at once, returned as it is.
func TestRun_PermanentAtOnce(t *testing.T) {
	boom := errors.New("refused for good")
	n := 0
	err := Run(context.Background(), nil, noRedact, "x", func(context.Context) error { n++; return backoff.Permanent(boom) })
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Run: %v after %d attempts, want the error after 1", err, n)
	}
}

// When ctx ends first, the error is the last attempt's, with the count and
// the deadline.
func TestRun_UntilDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err := Run(ctx, nil, noRedact, "x", func(context.Context) error { return errors.New("connection refused") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused (") ||
		!strings.Contains(err.Error(), "attempts in") {
		t.Fatalf("Run: %v, want the last error, the attempts and the deadline", err)
	}
}
