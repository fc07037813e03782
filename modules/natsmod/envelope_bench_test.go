package natsmod

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/catga-go/catga/cqrs/transport"
)

// wire is the header block nats.go writes for h (NATS/1.0, a line each).
func wire(h nats.Header) []byte {
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// BenchmarkEnvelopeHeaders measures what the compact-envelope choice
// would save: an event's headers as written today (one per field, readable
// with nats sub and nats stream view) against the same fields in one
// header, each encoded to the wire, decoded by nats.go and read into an
// envelope.
func BenchmarkEnvelopeHeaders(b *testing.B) {
	env := &transport.Envelope{ID: "01KB6YF8Q0ZPX3N1T7Q0RQ8M2A", Name: "OrderPlaced", Kind: transport.KindEvent,
		CorrelationID: "01KB6YF8Q0ZPX3N1T7Q0RQ8M2A", Source: "orders", Instance: "orders-7d9f-abcde",
		ContentType: "application/json", Time: time.Now(), Payload: []byte(`{"order_id":"o","cents":1}`)}
	topic := transport.Topic{Kind: transport.KindEvent, Name: "OrderPlaced"}
	b.Run("a-header-per-field", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h, err := nats.DecodeHeadersMsg(wire(headersOf(env)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := envelopeOfTopic(h, env.Payload, topic); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			one := nats.Header{"Catga": {env.ID + " " + env.Name + " " + env.Source + " " + env.Instance + " " + env.Time.UTC().Format(time.RFC3339Nano)}}
			h, err := nats.DecodeHeadersMsg(wire(one))
			if err != nil {
				b.Fatal(err)
			}
			f := strings.Fields(h.Get("Catga"))
			t, err := time.Parse(time.RFC3339Nano, f[4])
			if err != nil {
				b.Fatal(err)
			}
			_ = transport.Envelope{ID: f[0], Name: f[1], Kind: topic.Kind, CorrelationID: f[0], Source: f[2], Instance: f[3], ContentType: defaultContentType, Time: t, Payload: env.Payload}
		}
	})
}
