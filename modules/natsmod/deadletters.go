package natsmod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Dead letters live in the DLQ stream as JSON records on
// <prefix>.dlq.records.<service>.<kind>.<Name>; a record's id is its stream
// sequence. A replay is the original envelope published on
// <prefix>.dlq.replay.<service>.<kind>.<Name>, which only that service's
// replay consumer reads.

func (t *Transport) recordSubject(service string, k transport.Kind, name string) string {
	return t.cfg.Prefix + ".dlq.records." + service + "." + k.String() + "." + name
}

func (t *Transport) replaySubject(group, kind, name string) string {
	s := t.cfg.Prefix + ".dlq.replay." + group + "."
	if kind != "" {
		s += kind + "." + name
	}
	return s
}

func (t *Transport) storeDeadLetter(ctx context.Context, dl *transport.DeadLetter) error {
	_, js, err := t.conn()
	if err != nil {
		return err
	}
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("natsmod: encode dead letter: %w", err)
	}
	name := dl.Envelope.Name
	if transport.ValidateName(name) != nil {
		name = "unknown"
	}
	kind := dl.Envelope.Kind
	if kind == 0 {
		kind = transport.KindEvent
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: t.recordSubject(dl.Service, kind, name), Data: data}
	id := "dl-" + dl.Service + "-" + dl.Envelope.ID + "-" + strconv.Itoa(dl.Attempts)
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("natsmod: store dead letter of %s: %w", dl.Envelope.ID, err)
	}
	return nil
}

// ListDeadLetters implements transport.DeadLetters, reading the DLQ stream with
// an ordered consumer from its start.
func (t *Transport) ListDeadLetters(ctx context.Context, service string, limit int) ([]transport.DeadLetter, error) {
	_, js, err := t.conn()
	if err != nil {
		return nil, err
	}
	filter := t.cfg.Prefix + ".dlq.records.>"
	if service != "" {
		filter = t.cfg.Prefix + ".dlq.records." + service + ".>"
	}
	stream, err := js.Stream(ctx, t.cfg.dlqStream())
	if err != nil {
		return nil, fmt.Errorf("natsmod: dead letters: %w", err)
	}
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("natsmod: dead letters: %w", err)
	}
	out := []transport.DeadLetter{}
	for limit <= 0 || len(out) < limit {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("natsmod: dead letters: %w", err)
		}
		n := 0
		last := false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			last = md.NumPending == 0
			if limit > 0 && len(out) >= limit {
				continue
			}
			dl, err := decodeDeadLetter(m.Data(), md.Sequence.Stream)
			if err == nil {
				out = append(out, dl)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("natsmod: dead letters: %w", err)
		}
		if n == 0 || last {
			break
		}
	}
	return out, nil
}

func decodeDeadLetter(data []byte, seq uint64) (transport.DeadLetter, error) {
	var dl transport.DeadLetter
	if err := json.Unmarshal(data, &dl); err != nil {
		return dl, err
	}
	dl.ID = strconv.FormatUint(seq, 10)
	return dl, nil
}

// getRecord returns the record with id and its sequence.
func (t *Transport) getRecord(ctx context.Context, id string) (transport.DeadLetter, jetstream.Stream, uint64, error) {
	_, js, err := t.conn()
	if err != nil {
		return transport.DeadLetter{}, nil, 0, err
	}
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return transport.DeadLetter{}, nil, 0, cqrs.Errorf(cqrs.CodeNotFound, "natsmod: no dead letter %q", id)
	}
	stream, err := js.Stream(ctx, t.cfg.dlqStream())
	if err != nil {
		return transport.DeadLetter{}, nil, 0, fmt.Errorf("natsmod: dead letters: %w", err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !strings.HasPrefix(raw.Subject, t.cfg.Prefix+".dlq.records.")) {
		return transport.DeadLetter{}, nil, 0, cqrs.Errorf(cqrs.CodeNotFound, "natsmod: no dead letter %q", id)
	}
	if err != nil {
		return transport.DeadLetter{}, nil, 0, fmt.Errorf("natsmod: dead letter %s: %w", id, err)
	}
	dl, err := decodeDeadLetter(raw.Data, seq)
	if err != nil {
		return transport.DeadLetter{}, nil, 0, fmt.Errorf("natsmod: dead letter %s: %w", id, err)
	}
	return dl, stream, seq, nil
}

// GetDeadLetter implements transport.DeadLetters.
func (t *Transport) GetDeadLetter(ctx context.Context, id string) (transport.DeadLetter, error) {
	dl, _, _, err := t.getRecord(ctx, id)
	return dl, err
}

// ReplayDeadLetter implements transport.DeadLetters: the envelope goes to its
// service's replay subject, then the record is deleted. The replay carries
// a message id of its own, so replaying twice within the dedup window
// delivers once.
func (t *Transport) ReplayDeadLetter(ctx context.Context, id string) error {
	dl, stream, seq, err := t.getRecord(ctx, id)
	if err != nil {
		return err
	}
	_, js, err := t.conn()
	if err != nil {
		return err
	}
	env := dl.Envelope
	msg := &nats.Msg{Subject: t.replaySubject(dl.Service, env.Kind.String(), env.Name), Header: headersOf(&env), Data: env.Payload}
	msg.Header.Set(jetstream.MsgIDHeader, "replay-"+id) // its own dedup id; the envelope id is in Catga-Id
	msg.Header[transport.HeaderID] = []string{env.ID}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("natsmod: replay %s: %w", id, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("natsmod: replayed %s but could not remove it from the list: %w", id, err)
	}
	return nil
}
