package transport

import "fmt"

// Kind says how a message travels: a command or query has one owner that
// answers it, an event has any number of subscribers.
type Kind uint8

// The three kinds of message.
const (
	KindCommand Kind = iota + 1
	KindQuery
	KindEvent
)

// String returns the kind's wire form: "command", "query" or "event".
func (k Kind) String() string {
	switch k {
	case KindCommand:
		return "command"
	case KindQuery:
		return "query"
	case KindEvent:
		return "event"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Plural returns the subject segment of the kind: "commands", "queries", "events".
func (k Kind) Plural() string {
	switch k {
	case KindCommand:
		return "commands"
	case KindQuery:
		return "queries"
	case KindEvent:
		return "events"
	}
	return k.String()
}

// ParseKind is the inverse of [Kind.String].
func ParseKind(s string) (Kind, error) {
	switch s {
	case "command":
		return KindCommand, nil
	case "query":
		return KindQuery, nil
	case "event":
		return KindEvent, nil
	}
	return 0, fmt.Errorf("cqrs: unknown message kind %q", s)
}

// Topic is where a message travels: its kind and its wire name. Transports
// map a topic to their own destination (a subject, a stream key).
type Topic struct {
	Kind Kind
	Name string
}

// Subject returns the topic's subject under prefix, <prefix>.<kinds>.<Name>,
// as in "catga.events.OrderCreated".
func (t Topic) Subject(prefix string) string {
	return prefix + "." + t.Kind.Plural() + "." + t.Name
}

// String returns "event OrderCreated".
func (t Topic) String() string { return t.Kind.String() + " " + t.Name }
