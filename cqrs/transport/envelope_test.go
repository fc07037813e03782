package transport_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

func TestEnvelope_HeadersRoundTrip(t *testing.T) {
	in := transport.Envelope{
		ID: cqrs.NewID(), Name: "OrderCreated", Kind: transport.KindEvent, CorrelationID: "c", CausationID: "d",
		Source: "orders", Instance: "pod-1", ContentType: "application/json",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v",
		Attempt: 3, Time: time.Now().UTC().Round(0), Payload: []byte(`{}`),
	}
	h := map[string]string{}
	in.EachHeader(func(k, v string) { h[k] = v })
	out, err := transport.ParseHeaders(func(k string) string { return h[k] }, in.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Time.Equal(in.Time) {
		t.Fatalf("time %v, want %v", out.Time, in.Time)
	}
	out.Time = in.Time
	if string(out.Payload) != string(in.Payload) {
		t.Fatal("payload")
	}
	out.Payload, in.Payload = nil, nil
	if !reflect.DeepEqual(*out, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", *out, in)
	}
}

func TestParseHeaders_RejectsBadInput(t *testing.T) {
	tests := map[string]map[string]string{
		"no id":       {transport.HeaderName: "X", transport.HeaderKind: "event"},
		"no type":     {transport.HeaderID: "1", transport.HeaderKind: "event"},
		"bad type":    {transport.HeaderID: "1", transport.HeaderName: "a.b", transport.HeaderKind: "event"},
		"bad kind":    {transport.HeaderID: "1", transport.HeaderName: "X", transport.HeaderKind: "rumour"},
		"bad attempt": {transport.HeaderID: "1", transport.HeaderName: "X", transport.HeaderKind: "event", transport.HeaderAttempt: "-1"},
		"bad time":    {transport.HeaderID: "1", transport.HeaderName: "X", transport.HeaderKind: "event", transport.HeaderTime: "yesterday"},
		"huge header": {transport.HeaderID: strings.Repeat("x", 5000), transport.HeaderName: "X", transport.HeaderKind: "event"},
	}
	for name, h := range tests {
		if _, err := transport.ParseHeaders(func(k string) string { return h[k] }, nil); err == nil {
			t.Errorf("%s: ParseHeaders accepted %v", name, h)
		}
	}
}
