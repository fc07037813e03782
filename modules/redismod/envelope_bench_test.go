package redismod

import (
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs/transport"
)

// BenchmarkEnvelopeOf is the read of a delivered entry's envelope: its
// header block and payload into a transport.Envelope.
func BenchmarkEnvelopeOf(b *testing.B) {
	env := &transport.Envelope{ID: "01KB6YF8Q0ZPX3N1T7Q0RQ8M2A", Name: "OrderPlaced", Kind: transport.KindEvent,
		CorrelationID: "01KB6YF8Q0ZPX3N1T7Q0RQ8M2A", CausationID: "01KB6YF8Q0ZPX3N1T7Q0RQ8M2B", Source: "orders",
		Instance: "orders-7d9f-abcde", ContentType: "application/json", Time: time.Now(), Payload: []byte(`{"order_id":"o","cents":1}`)}
	values := map[string]any{fieldHeaders: headerBlock(env), fieldPayload: string(env.Payload)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelopeOf(values); err != nil {
			b.Fatal(err)
		}
	}
}

// The block's headers read back as they were written, one lookup per key
// whatever its line, and a key not in the block is empty.
func TestEnvelopeOf_ReadsEveryHeaderOfTheBlock(t *testing.T) {
	env := &transport.Envelope{ID: "id-1", Name: "OrderPlaced", Kind: transport.KindEvent,
		CorrelationID: "corr-1", CausationID: "cause-1", Source: "orders", Instance: "orders-1",
		ContentType: "application/x-other", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState: "k=v", Attempt: 3, Time: time.Date(2026, 12, 4, 1, 2, 3, 4, time.UTC), Payload: []byte(`{}`)}
	got, err := envelopeOf(map[string]any{fieldHeaders: headerBlock(env), fieldPayload: string(env.Payload)})
	if err != nil {
		t.Fatal(err)
	}
	want := *env
	if got.ID != want.ID || got.Name != want.Name || got.Kind != want.Kind || got.CorrelationID != want.CorrelationID ||
		got.CausationID != want.CausationID || got.Source != want.Source || got.Instance != want.Instance ||
		got.ContentType != want.ContentType || got.TraceParent != want.TraceParent || got.TraceState != want.TraceState ||
		!got.Time.Equal(want.Time) || string(got.Payload) != "{}" {
		t.Errorf("read back %+v, want %+v", *got, want)
	}
	// what the block leaves out: the default content type, a correlation equal to the id
	env.ContentType, env.CorrelationID = defaultContentType, env.ID
	got, err = envelopeOf(map[string]any{fieldHeaders: headerBlock(env), fieldPayload: "{}"})
	if err != nil || got.ContentType != defaultContentType || got.CorrelationID != env.ID {
		t.Errorf("implied headers: %+v, %v; want content type %s, correlation %s", got, err, defaultContentType, env.ID)
	}
}
