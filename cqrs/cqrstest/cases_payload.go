package cqrstest

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/catga-go/catga/cqrs"
)

func testPayloadLimit(t *testing.T, h *harness) {
	limit := h.f.MaxPayload
	if limit <= 0 {
		limit = cqrs.Config{}.WithDefaults().MaxPayload
	}
	var got atomic.Int64
	svc := h.group("svc")
	b := h.bus(busOptions{service: svc, instance: "i1", maxPayload: limit},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[suiteBlob](func(_ context.Context, e suiteBlob) error {
			got.Store(int64(len(e.Data)))
			return nil
		})))
	overhead := len(`{"d":""}`)
	atLimit := suiteBlob{Data: strings.Repeat("x", limit-overhead)}
	over := suiteBlob{Data: strings.Repeat("x", limit-overhead+1)}

	err := b.Publish(context.Background(), over)
	var tooLarge *cqrs.PayloadTooLargeError
	if !errors.As(err, &tooLarge) || !errors.Is(err, cqrs.ErrPayloadTooLarge) {
		t.Fatalf("publish of %d bytes: %v, want a *cqrs.PayloadTooLargeError", limit+1, err)
	}
	if tooLarge.Size != limit+1 || tooLarge.Limit != limit || tooLarge.Name != "SuiteBlob" {
		t.Errorf("error %+v, want size %d, limit %d, name SuiteBlob", tooLarge, limit+1, limit)
	}
	if err := b.Publish(context.Background(), atLimit); err != nil {
		t.Fatalf("publish of exactly %d bytes: %v", limit, err)
	}
	h.eventually(func() bool { return got.Load() == int64(len(atLimit.Data)) },
		func() string { return "the message at the limit never arrived whole" })
	if _, err := cqrs.Send[string](context.Background(), b, suiteCommand{Key: strings.Repeat("y", limit)}); !errors.Is(err, cqrs.ErrPayloadTooLarge) {
		t.Errorf("Send over the limit: %v, want ErrPayloadTooLarge", err)
	}
}
