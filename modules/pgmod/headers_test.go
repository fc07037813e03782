package pgmod

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

func testEnvelope() *transport.Envelope {
	return &transport.Envelope{
		ID: cqrs.NewID(), Name: "OrderPlaced", Kind: transport.KindEvent,
		CorrelationID: "c-1", Source: "orders", Instance: "i-1", ContentType: "application/json",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Attempt: 2,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Payload: []byte(`{"x":1}`),
	}
}

// The headers round-trip, through the fast path and through the escapes
// that take encoding/json's.
func TestHeadersRoundTrip(t *testing.T) {
	for _, inst := range []string{"i-1", `a "quoted" \ one`, "tab\there", "ünïcode", "<&>", "bad\xffutf8"} {
		env := testEnvelope()
		env.Instance = inst
		h := encodeHeaders(env)
		var m map[string]string
		if err := json.Unmarshal([]byte(h), &m); err != nil {
			t.Fatalf("%q: not JSON: %v", h, err)
		}
		got, err := decodeHeaders(h, env.Payload)
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		if got.ID != env.ID || got.Name != env.Name || got.Kind != env.Kind || got.Attempt != 2 ||
			!got.Time.Equal(env.Time) || got.TraceParent != env.TraceParent {
			t.Fatalf("%q: decoded %+v", h, got)
		}
		if want := m[transport.HeaderInstance]; got.Instance != want {
			t.Fatalf("instance %q, want %q (as encoding/json reads it)", got.Instance, want)
		}
	}
}

// Rows written by older builds (json.Marshal of a map: sorted keys,
// <, > and & escaped) and rows an encoding/json reader would take with
// whitespace read back the same.
func TestHeadersOlderFormat(t *testing.T) {
	env := testEnvelope()
	env.Source = "a<b>&c"
	m := map[string]string{}
	env.EachHeader(func(k, v string) { m[k] = v })
	old, _ := json.Marshal(m)
	indented, _ := json.MarshalIndent(m, "", "  ")
	for _, h := range []string{string(old), string(indented)} {
		got, err := decodeHeaders(h, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != env.ID || got.Source != env.Source || got.Kind != env.Kind {
			t.Fatalf("%s: decoded %+v", h, got)
		}
	}
}

func TestHeadersUnreadable(t *testing.T) {
	for _, h := range []string{"", "{", `{"a":1}`, `{"a":"b",}`, "not json"} {
		if _, err := decodeHeaders(h, nil); err == nil {
			t.Errorf("%q: no error", h)
		}
	}
	// A repeated key: encoding/json's answer (the last) is the one taken.
	env := testEnvelope()
	h := encodeHeaders(env)
	h = h[:len(h)-1] + `,"` + transport.HeaderInstance + `":"last"}`
	got, err := decodeHeaders(h, nil)
	if err != nil || got.Instance != "last" {
		t.Fatalf("repeated key: %v, %+v", err, got)
	}
}

func BenchmarkHeaders(b *testing.B) {
	env := testEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeHeaders(encodeHeaders(env), env.Payload); err != nil {
			b.Fatal(err)
		}
	}
}
