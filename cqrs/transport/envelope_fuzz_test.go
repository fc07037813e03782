package transport_test

import (
	"bytes"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// headerNames are the headers ParseHeaders reads, in the order the fuzz
// arguments of FuzzParseHeaders give their values.
var headerNames = [...]string{
	transport.HeaderID, transport.HeaderName, transport.HeaderKind, transport.HeaderCorrelationID, transport.HeaderCausationID,
	transport.HeaderSource, transport.HeaderInstance, transport.HeaderContentType, transport.HeaderTraceParent,
	transport.HeaderTraceState, transport.HeaderAttempt, transport.HeaderTime,
}

// wire is a set of headers as a transport carries them.
type wire map[string]string

func (h wire) get(key string) string { return h[key] }

// headersOf returns the headers EachHeader writes for e.
func headersOf(t *testing.T, e *transport.Envelope) wire {
	t.Helper()
	h := wire{}
	e.EachHeader(func(k, v string) {
		if _, dup := h[k]; dup {
			t.Errorf("EachHeader wrote %s twice", k)
		}
		h[k] = v
	})
	return h
}

// diffEnvelopes returns how got differs from want, or "" when they are the
// same envelope: times are compared as instants, as the wire keeps no zone.
func diffEnvelopes(got, want *transport.Envelope) string {
	var d []string
	str := func(field, g, w string) {
		if g != w {
			d = append(d, field+": got "+quote(g)+", want "+quote(w))
		}
	}
	str("ID", got.ID, want.ID)
	str("Name", got.Name, want.Name)
	str("Kind", got.Kind.String(), want.Kind.String())
	str("CorrelationID", got.CorrelationID, want.CorrelationID)
	str("CausationID", got.CausationID, want.CausationID)
	str("Source", got.Source, want.Source)
	str("Instance", got.Instance, want.Instance)
	str("ContentType", got.ContentType, want.ContentType)
	str("TraceParent", got.TraceParent, want.TraceParent)
	str("TraceState", got.TraceState, want.TraceState)
	if got.Attempt != want.Attempt {
		d = append(d, "Attempt: got "+strconv.Itoa(got.Attempt)+", want "+strconv.Itoa(want.Attempt))
	}
	if !got.Time.Equal(want.Time) {
		d = append(d, "Time: got "+got.Time.String()+", want "+want.Time.String())
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		d = append(d, "Payload: got "+quote(string(got.Payload))+", want "+quote(string(want.Payload)))
	}
	return strings.Join(d, "; ")
}

// quote quotes s, cut to 80 bytes: a fuzzed value can be 4 KiB.
func quote(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "..."
	}
	return strconv.Quote(s)
}

// checkRoundTrip checks that e, an envelope ParseHeaders accepted, is one a
// transport can carry: written with EachHeader and parsed again it is the
// same envelope, and its wire form is stable.
func checkRoundTrip(t *testing.T, e *transport.Envelope) {
	t.Helper()
	h := headersOf(t, e)
	back, err := transport.ParseHeaders(h.get, e.Payload)
	if err != nil {
		t.Fatalf("ParseHeaders of its own EachHeader output %v: %v\n(envelope %+v)", h, err, *e)
	}
	if d := diffEnvelopes(back, e); d != "" {
		t.Fatalf("round trip through %v changed the envelope: %s", h, d)
	}
	if again := headersOf(t, back); !maps.Equal(again, h) {
		t.Fatalf("wire form not stable:\n first %v\nsecond %v", h, again)
	}
}

// FuzzParseHeaders feeds ParseHeaders the headers a hostile or broken sender
// could write. Whatever it accepts must be a well-formed envelope that
// survives being written and read again.
func FuzzParseHeaders(f *testing.F) {
	const (
		id = "01J0000000000000000000000A"
		tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	add := func(id, name, kind, corr, cause, source, instance, ctype, traceParent, traceState, attempt, sentAt string, payload []byte) {
		f.Add(id, name, kind, corr, cause, source, instance, ctype, traceParent, traceState, attempt, sentAt, payload)
	}
	add(id, "OrderCreated", "event", "c", "d", "orders", "pod-1", "application/json", tp, "k=v", "3", "2024-05-01T10:00:00.123456789Z", []byte(`{"id":"o1"}`))
	add(id, "CreateOrder", "command", "", "", "", "", "", "", "", "", "", nil)
	add(id, "GetOrder", "query", "", "", "", "", "", "", "", "0", "2024-05-01T12:00:00+02:00", []byte{})
	add("", "", "", "", "", "", "", "", "", "", "", "", nil)
	add(id, "Order.Created", "event", "", "", "", "", "", "", "", "", "", nil)
	add(id, "X", "Event", "", "", "", "", "", "", "", "", "", nil)
	add(id, "X", "event", "", "", "", "", "", "", "", "-1", "", nil)
	add(id, "X", "event", "", "", "", "", "", "", "", "+7", "", nil)
	add(id, "X", "event", "", "", "", "", "", "", "", "99999999999999999999", "", nil)
	add(id, "X", "event", "", "", "", "", "", "", "", "", "yesterday", nil)
	add(id, "X", "event", "", "", "", "", "", "", "", "", "0001-01-01T00:00:00+01:00", nil)
	add(id, "X", "event", "", "", "", "", "", "", "", "", "9999-12-31T23:59:59.999999999Z", nil)
	add(strings.Repeat("i", 4096), "X", "event", strings.Repeat("c", 4097), "", "", "", "", "", "", "", "", nil)
	add("ünï€ødé", "Ünicode", "event", "日本", "", "sërvice", "", "text/plain; charset=utf-8", "", "", "", "", []byte("\xff\xfe"))

	f.Fuzz(func(t *testing.T, id, name, kind, corr, cause, source, instance, ctype, traceParent, traceState, attempt, sentAt string, payload []byte) {
		h := wire{}
		for i, v := range []string{id, name, kind, corr, cause, source, instance, ctype, traceParent, traceState, attempt, sentAt} {
			h[headerNames[i]] = v
		}
		e, err := transport.ParseHeaders(h.get, payload)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cqrs: bad envelope: ") {
				t.Errorf("error: got %q, want it to start with %q", err, "cqrs: bad envelope: ")
			}
			return
		}
		switch {
		case e.ID == "":
			t.Errorf("accepted %v with an empty ID", h)
		case e.Name == "" || transport.ValidateName(e.Name) != nil:
			t.Errorf("accepted %v with the bad name %q", h, e.Name)
		case e.Kind != transport.KindCommand && e.Kind != transport.KindQuery && e.Kind != transport.KindEvent:
			t.Errorf("accepted %v with the kind %v", h, e.Kind)
		case e.Attempt < 0:
			t.Errorf("accepted %v with attempt %d", h, e.Attempt)
		case !bytes.Equal(e.Payload, payload):
			t.Errorf("payload: got %q, want %q", e.Payload, payload)
		}
		for k, v := range h {
			if len(v) > 4096 {
				t.Errorf("accepted %s of %d bytes", k, len(v))
			}
		}
		checkRoundTrip(t, e)
	})
}

// FuzzEnvelopeRoundTrip builds an envelope from fuzzed fields, writes it with
// EachHeader and parses it back: an envelope ParseHeaders accepts comes back
// unchanged.
func FuzzEnvelopeRoundTrip(f *testing.F) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	add := func(id, name string, kind int, corr, cause, source, instance, ctype, traceParent, traceState string, attempt int, unix int64, nanos int64, offset int, payload []byte) {
		f.Add(id, name, kind, corr, cause, source, instance, ctype, traceParent, traceState, attempt, unix, nanos, offset, payload)
	}
	add(cqrs.NewID(), "OrderCreated", 3, "c", "d", "orders", "pod-1", "application/json", tp, "k=v", 3, 1714557600, 123456789, 0, []byte(`{"id":"o1"}`))
	add("1", "CreateOrder", 1, "", "", "", "", "", "", "", 0, 0, 0, 0, nil)
	add("1", "GetOrder", 2, "", "", "", "", "", "", "", 1, -62135596800, 0, 3600, []byte{})
	add("", "", 0, "", "", "", "", "", "", "", -1, 0, 0, 0, nil)
	add("1", "X", 4, "", "", "", "", "", "", "", 0, 0, 0, 0, nil)
	add("1", "x-y_z9", 3, "", "", "", "", "", "", "", 1<<31, 253402300799, 999999999, -50400, nil)
	add(strings.Repeat("i", 4097), "X", 3, "", "", "", "", "", "", "", 0, 0, 0, 0, nil)
	add("ünï€ødé", "X", 3, "日本", "\x00", "", "", "", "", "", 0, 0, 0, 0, []byte("\xff"))

	f.Fuzz(func(t *testing.T, id, name string, kind int, corr, cause, source, instance, ctype, traceParent, traceState string, attempt int, unix int64, nanos int64, offset int, payload []byte) {
		in := &transport.Envelope{
			ID: id, Name: name, Kind: transport.Kind(kind), CorrelationID: corr, CausationID: cause,
			Source: source, Instance: instance, ContentType: ctype, TraceParent: traceParent,
			TraceState: traceState, Attempt: attempt, Payload: payload,
		}
		if unix != 0 || nanos != 0 {
			// Any instant in any fixed zone: the wire keeps the instant.
			in.Time = time.Unix(unix, nanos).In(time.FixedZone("", offset%(24*3600)))
		}
		h := headersOf(t, in)
		out, err := transport.ParseHeaders(h.get, in.Payload)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cqrs: bad envelope: header ") {
				t.Errorf("error: got %q, want it to name the bad header", err)
			}
			return // a field ParseHeaders refuses: nothing to round-trip
		}
		want := *in
		if want.Attempt < 0 {
			want.Attempt = 0 // not written: the transport sets it
		}
		if d := diffEnvelopes(out, &want); d != "" {
			t.Fatalf("round trip through %v changed the envelope: %s", h, d)
		}
		checkRoundTrip(t, out)
	})
}
