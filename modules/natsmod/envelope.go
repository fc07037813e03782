package natsmod

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs"
)

// subject returns a topic's durable subject: <prefix>.events.<Name>.
func (t *Transport) subject(topic cqrs.Topic) string { return topic.Subject(t.cfg.Prefix) }

// requestSubject returns a topic's request subject, <prefix>.rpc.commands.<Name>:
// a stream that captures a subject answers requests to it with its own
// publish ack, so requests use subjects no stream captures.
func (t *Transport) requestSubject(topic cqrs.Topic) string {
	return t.cfg.Prefix + ".rpc." + topic.Kind.Plural() + "." + topic.Name
}

// headersOf returns env's headers as NATS headers. What the receiver can
// tell by itself is left out: the id travels once, as Nats-Msg-Id (which
// JetStream dedups on); the kind is the subject's; JSON is the content type
// when none is named; a correlation equal to the id is implied.
func headersOf(env *cqrs.Envelope) nats.Header {
	h := make(nats.Header, 8)
	env.EachHeader(func(k, v string) {
		switch {
		case k == cqrs.HeaderID:
			k = jetstream.MsgIDHeader
		case k == cqrs.HeaderKind,
			k == cqrs.HeaderContentType && v == defaultContentType,
			k == cqrs.HeaderCorrelationID && v == env.ID:
			return
		}
		h[k] = []string{v}
	})
	return h
}

const defaultContentType = "application/json"

// requestHeaders are headersOf less the type too: a request's subject
// names it.
func requestHeaders(env *cqrs.Envelope) nats.Header {
	h := headersOf(env)
	delete(h, cqrs.HeaderName)
	return h
}

// envelopeOf reads the envelope headersOf wrote, of a message of kind.
func envelopeOf(h nats.Header, data []byte, kind cqrs.Kind) (*cqrs.Envelope, error) {
	return envelopeOfTopic(h, data, cqrs.Topic{Kind: kind})
}

// envelopeOfTopic reads an envelope, taking what the headers leave out from
// topic: its kind, and its name when the headers name none (a request).
func envelopeOfTopic(h nats.Header, data []byte, topic cqrs.Topic) (*cqrs.Envelope, error) {
	kind := topic.Kind
	id := h.Get(cqrs.HeaderID) // set when Nats-Msg-Id is not the envelope's (a replay)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	return cqrs.ParseHeaders(func(k string) string {
		switch k {
		case cqrs.HeaderID:
			return id
		case cqrs.HeaderKind:
			if v := h.Get(k); v != "" {
				return v
			}
			return kind.String()
		case cqrs.HeaderName:
			if v := h.Get(k); v != "" {
				return v
			}
			return topic.Name
		case cqrs.HeaderContentType:
			if v := h.Get(k); v != "" {
				return v
			}
			return defaultContentType
		case cqrs.HeaderCorrelationID:
			if v := h.Get(k); v != "" {
				return v
			}
			return id
		}
		return h.Get(k)
	}, data)
}
