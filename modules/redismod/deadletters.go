package redismod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/transport"
)

// Dead letters are entries of one stream, catga:{dlq}:records, with the
// service and the record as JSON; the entry id is the dead letter's id. A
// replay adds the original envelope to the service's replay stream
// catga:{replay:<service>}, which only that group reads, then deletes the
// record.

func (t *Transport) storeDeadLetter(dl *transport.DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("redismod: encode dead letter: %w", err)
	}
	ctx, cancel := settleCtx()
	defer cancel()
	key := t.k.deadLetters()
	if err := t.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"service", dl.Service, "record", data}}).Err(); err != nil {
		return fmt.Errorf("redismod: store dead letter of %s: %w", dl.Envelope.ID, scrub(err, t.cfg))
	}
	return nil
}

func decodeDeadLetter(m redis.XMessage) (transport.DeadLetter, error) {
	var dl transport.DeadLetter
	rec, _ := m.Values["record"].(string)
	if err := json.Unmarshal([]byte(rec), &dl); err != nil {
		return dl, err
	}
	dl.ID = m.ID
	return dl, nil
}

// ListDeadLetters implements transport.DeadLetters.
func (t *Transport) ListDeadLetters(ctx context.Context, service string, limit int) ([]transport.DeadLetter, error) {
	out := []transport.DeadLetter{}
	start := "-"
	for {
		msgs, err := t.rdb.XRangeN(ctx, t.k.deadLetters(), start, "+", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("redismod: dead letters: %w", scrub(err, t.cfg))
		}
		for _, m := range msgs {
			if s, _ := m.Values["service"].(string); service != "" && s != service {
				continue
			}
			dl, err := decodeDeadLetter(m)
			if err != nil {
				continue
			}
			out = append(out, dl)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if len(msgs) < 500 {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// GetDeadLetter implements transport.DeadLetters.
func (t *Transport) GetDeadLetter(ctx context.Context, id string) (transport.DeadLetter, error) {
	if !validID(id) {
		return transport.DeadLetter{}, cqrs.Errorf(cqrs.CodeNotFound, "redismod: no dead letter %q", id)
	}
	msgs, err := t.rdb.XRangeN(ctx, t.k.deadLetters(), id, id, 1).Result()
	if err != nil {
		return transport.DeadLetter{}, fmt.Errorf("redismod: dead letter %s: %w", id, scrub(err, t.cfg))
	}
	if len(msgs) == 0 {
		return transport.DeadLetter{}, cqrs.Errorf(cqrs.CodeNotFound, "redismod: no dead letter %q", id)
	}
	return decodeDeadLetter(msgs[0])
}

// validID reports whether id looks like a stream entry id, "ms-seq".
func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return s != ""
	}
	return ok && digits(ms) && digits(seq)
}

// ReplayDeadLetter implements transport.DeadLetters.
func (t *Transport) ReplayDeadLetter(ctx context.Context, id string) error {
	dl, err := t.GetDeadLetter(ctx, id)
	if err != nil {
		return err
	}
	env := dl.Envelope
	// Delete first: a record gone is replayed once even when two admins
	// replay it at the same moment.
	n, err := t.rdb.XDel(ctx, t.k.deadLetters(), id).Result()
	if err != nil {
		return fmt.Errorf("redismod: replay %s: %w", id, scrub(err, t.cfg))
	}
	if n == 0 {
		return cqrs.Errorf(cqrs.CodeNotFound, "redismod: no dead letter %q", id)
	}
	if err := t.rdb.XAdd(ctx, &redis.XAddArgs{Stream: t.k.replay(dl.Service), Values: fields(&env)}).Err(); err != nil {
		if serr := t.storeDeadLetter(&dl); serr != nil { // put it back
			return errors.Join(fmt.Errorf("redismod: replay %s: %w", id, err), serr)
		}
		return fmt.Errorf("redismod: replay %s: %w", id, scrub(err, t.cfg))
	}
	return nil
}
