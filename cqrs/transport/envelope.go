package transport

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Envelope is a message on the wire: its headers and its encoded payload.
// Transports carry it; they never look inside Payload.
type Envelope struct {
	ID            string    // unique, time-sortable (ULID)
	Name          string    // wire name of the payload's type
	Kind          Kind      // command, query or event
	CorrelationID string    // the ID of the first message of the conversation
	CausationID   string    // the ID of the message being handled when this one was sent
	Source        string    // service that sent it
	Instance      string    // instance that sent it
	ContentType   string    // codec of Payload
	TraceParent   string    // W3C traceparent
	TraceState    string    // W3C tracestate
	Attempt       int       // delivery attempt, from 1; set by the transport on delivery
	Time          time.Time // when it was sent
	// DeliverAt, when set and in the future, holds the message back until
	// then (a scheduled message, see Scheduler); when it is past, the
	// message goes at once. It travels with the message, so a handler can
	// tell when a scheduled message was due.
	DeliverAt time.Time
	Payload   []byte
}

// Header names. Transports with headers (NATS) use them as they are; Redis
// stores them as stream entry fields.
const (
	HeaderID            = "Catga-Id"
	HeaderName          = "Catga-Type"
	HeaderKind          = "Catga-Kind"
	HeaderCorrelationID = "Catga-Correlation-Id"
	HeaderCausationID   = "Catga-Causation-Id"
	HeaderSource        = "Catga-Source"
	HeaderInstance      = "Catga-Instance"
	HeaderContentType   = "Content-Type"
	HeaderTraceParent   = "traceparent"
	HeaderTraceState    = "tracestate"
	HeaderAttempt       = "Catga-Attempt"
	HeaderTime          = "Catga-Time"
	HeaderDeliverAt     = "Catga-Deliver-At"
)

// maxHeaderLen bounds one header value read from the wire.
const maxHeaderLen = 4096

// EachHeader calls set for every non-empty header of e, in a fixed order.
// The attempt is not a header a sender writes: the transport knows it.
func (e *Envelope) EachHeader(set func(key, value string)) {
	set(HeaderID, e.ID)
	set(HeaderName, e.Name)
	set(HeaderKind, e.Kind.String())
	if e.CorrelationID != "" {
		set(HeaderCorrelationID, e.CorrelationID)
	}
	if e.CausationID != "" {
		set(HeaderCausationID, e.CausationID)
	}
	if e.Source != "" {
		set(HeaderSource, e.Source)
	}
	if e.Instance != "" {
		set(HeaderInstance, e.Instance)
	}
	if e.ContentType != "" {
		set(HeaderContentType, e.ContentType)
	}
	if e.TraceParent != "" {
		set(HeaderTraceParent, e.TraceParent)
	}
	if e.TraceState != "" {
		set(HeaderTraceState, e.TraceState)
	}
	if e.Attempt > 0 {
		set(HeaderAttempt, strconv.Itoa(e.Attempt))
	}
	if !e.Time.IsZero() {
		set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	if !e.DeliverAt.IsZero() {
		set(HeaderDeliverAt, e.DeliverAt.UTC().Format(time.RFC3339Nano))
	}
}

// ParseHeaders builds an Envelope from headers read with get and payload. It
// checks what a hostile or broken sender could get wrong: a missing ID or
// type, an unknown kind, a bad attempt or time, an oversized value.
func ParseHeaders(get func(key string) string, payload []byte) (*Envelope, error) {
	e := &Envelope{Payload: payload}
	var errs []error
	str := func(key string) string {
		v := get(key)
		if len(v) > maxHeaderLen {
			errs = append(errs, fmt.Errorf("header %s: %d bytes, over %d", key, len(v), maxHeaderLen))
			return ""
		}
		return v
	}
	e.ID = str(HeaderID)
	e.Name = str(HeaderName)
	e.CorrelationID = str(HeaderCorrelationID)
	e.CausationID = str(HeaderCausationID)
	e.Source = str(HeaderSource)
	e.Instance = str(HeaderInstance)
	e.ContentType = str(HeaderContentType)
	e.TraceParent = str(HeaderTraceParent)
	e.TraceState = str(HeaderTraceState)
	if e.ID == "" {
		errs = append(errs, fmt.Errorf("header %s missing", HeaderID))
	}
	if e.Name == "" {
		errs = append(errs, fmt.Errorf("header %s missing", HeaderName))
	} else if err := ValidateName(e.Name); err != nil {
		errs = append(errs, fmt.Errorf("header %s: %w", HeaderName, err))
	}
	if k := str(HeaderKind); k != "" {
		kind, err := ParseKind(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", HeaderKind, err))
		}
		e.Kind = kind
	} else {
		errs = append(errs, fmt.Errorf("header %s missing", HeaderKind))
	}
	if a := str(HeaderAttempt); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("header %s: %q is not a count", HeaderAttempt, a))
		}
		e.Attempt = n
	}
	e.Time = parseTime(str, HeaderTime, &errs)
	e.DeliverAt = parseTime(str, HeaderDeliverAt, &errs)
	if len(errs) > 0 {
		return e, fmt.Errorf("cqrs: bad envelope: %w", errors.Join(errs...))
	}
	return e, nil
}

// parseTime reads the time header key, adding to errs what is wrong with it.
func parseTime(str func(string) string, key string, errs *[]error) time.Time {
	t := str(key)
	if t == "" {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("header %s: %w", key, err))
	} else if y := ts.UTC().Year(); y < 0 || y > 9999 {
		// EachHeader writes times in UTC; one whose offset moves it out of
		// years 0000-9999 could be read but never written back.
		*errs = append(*errs, fmt.Errorf("header %s: %q is outside years 0000-9999 in UTC", key, t))
	}
	return ts
}

// Scheduled reports whether e is held for later: its DeliverAt is set and
// still ahead. The clock is read only for a scheduled message, so a plain
// publish pays nothing for it.
func (e *Envelope) Scheduled() bool {
	return !e.DeliverAt.IsZero() && e.DeliverAt.After(time.Now())
}

// Clone returns a copy of e that shares nothing mutable with it.
func (e *Envelope) Clone() *Envelope {
	c := *e
	c.Payload = append([]byte(nil), e.Payload...)
	return &c
}
