package natsmod

import (
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs/transport"
)

// subject returns a topic's durable subject: <prefix>.events.<Name>.
func (t *Transport) subject(topic transport.Topic) string {
	if s, ok := t.subjects.Load(topic); ok {
		return s.(string)
	}
	s := topic.Subject(t.cfg.Prefix)
	t.subjects.Store(topic, s)
	return s
}

// requestSubject returns a topic's request subject, <prefix>.rpc.commands.<Name>:
// a stream that captures a subject answers requests to it with its own
// publish ack, so requests use subjects no stream captures.
func (t *Transport) requestSubject(topic transport.Topic) string {
	if s, ok := t.rpcSubjects.Load(topic); ok {
		return s.(string)
	}
	s := t.cfg.Prefix + ".rpc." + topic.Kind.Plural() + "." + topic.Name
	t.rpcSubjects.Store(topic, s)
	return s
}

// headersOf returns env's headers as NATS headers. What the receiver can
// tell by itself is left out: the id travels once, as Nats-Msg-Id (which
// JetStream dedups on); the kind is the subject's; JSON is the content type
// when none is named; a correlation equal to the id is implied.
func headersOf(env *transport.Envelope) nats.Header {
	h := make(nats.Header, 8)
	vals := make([]string, 0, 12) // one array for every header's value, not a slice each
	env.EachHeader(func(k, v string) {
		switch {
		case k == transport.HeaderID:
			k = jetstream.MsgIDHeader
		case k == transport.HeaderKind,
			k == transport.HeaderContentType && v == defaultContentType,
			k == transport.HeaderCorrelationID && v == env.ID:
			return
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)] // capped: an Add to it copies
	})
	return h
}

const defaultContentType = "application/json"

// requestHeader is a request's headers, reused once the request is sent
// (nats.go writes them out in RequestMsg and keeps nothing of them).
type requestHeader struct {
	h    nats.Header
	vals [12]string // one array for every header's value
}

var requestHeaders = sync.Pool{New: func() any { return &requestHeader{h: make(nats.Header, 10)} }}

// fill sets rh to headersOf(env) less the type too (a request's subject
// names it), and the caller's deadline.
func (rh *requestHeader) fill(env *transport.Envelope, deadline string) nats.Header {
	clear(rh.h)
	n := 0
	set := func(k, v string) {
		if n == len(rh.vals) {
			rh.h[k] = []string{v}
			return
		}
		rh.vals[n] = v
		rh.h[k] = rh.vals[n : n+1 : n+1] // capped: an Add to it copies
		n++
	}
	env.EachHeader(func(k, v string) {
		switch {
		case k == transport.HeaderID:
			k = jetstream.MsgIDHeader
		case k == transport.HeaderName, k == transport.HeaderKind,
			k == transport.HeaderContentType && v == defaultContentType,
			k == transport.HeaderCorrelationID && v == env.ID:
			return
		}
		set(k, v)
	})
	set(headerDeadline, deadline)
	return rh.h
}

// release returns rh to the pool.
func (rh *requestHeader) release() {
	clear(rh.vals[:])
	requestHeaders.Put(rh)
}

// envelopeOf reads the envelope headersOf wrote, of a message of kind.
func envelopeOf(h nats.Header, data []byte, kind transport.Kind) (*transport.Envelope, error) {
	return envelopeOfTopic(h, data, transport.Topic{Kind: kind})
}

// envelopeOfTopic reads an envelope, taking what the headers leave out from
// topic: its kind, and its name when the headers name none (a request).
func envelopeOfTopic(h nats.Header, data []byte, topic transport.Topic) (*transport.Envelope, error) {
	kind := topic.Kind
	id := h.Get(transport.HeaderID) // set when Nats-Msg-Id is not the envelope's (a replay)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	return transport.ParseHeaders(func(k string) string {
		switch k {
		case transport.HeaderID:
			return id
		case transport.HeaderKind:
			if v := h.Get(k); v != "" {
				return v
			}
			return kind.String()
		case transport.HeaderName:
			if v := h.Get(k); v != "" {
				return v
			}
			return topic.Name
		case transport.HeaderContentType:
			if v := h.Get(k); v != "" {
				return v
			}
			return defaultContentType
		case transport.HeaderCorrelationID:
			if v := h.Get(k); v != "" {
				return v
			}
			return id
		}
		return h.Get(k)
	}, data)
}
