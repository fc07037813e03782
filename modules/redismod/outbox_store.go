package redismod

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/transport"
)

// OutboxStore is the relay's view of an Outbox's stream (outbox.Store).
// One relay leads at a time: the one holding the lease key; a crashed
// leader's lease runs out and passes on.
type OutboxStore struct {
	o *Outbox
}

var _ outbox.Store = (*OutboxStore)(nil)

// Store returns the relay's view of o.
func (o *Outbox) Store() *OutboxStore { return &OutboxStore{o: o} }

// Scripts of the lead: each acts only if the lease is still the caller's.
var (
	outboxLeadExtend = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	outboxLeadDrop = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// outboxBury moves entry ARGV[1] of KEYS[1] to KEYS[2] with its error
// (ARGV[2]) in one step, so a buried entry is neither lost nor published.
var outboxBury = redis.NewScript(`
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f = e[1][2]
table.insert(f, 'error')
table.insert(f, ARGV[2])
table.insert(f, 'ref')
table.insert(f, ARGV[1])
redis.call('XADD', KEYS[2], '*', unpack(f))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1`)

// Lead implements outbox.Store: it takes the lease (SET NX PX) with a
// token of its own, trying every OutboxConfig.LeadRetry, and renews it
// every third of the lease with a compare-and-extend; the lead is lost when
// a renewal fails or finds the lease no longer its own.
func (s *OutboxStore) Lead(ctx context.Context) (outbox.Lead, error) {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	token := hex.EncodeToString(rnd[:])
	key, lease := s.o.k.lead(), s.o.oc.Lease
	for {
		ok, err := s.o.rdb.SetNX(ctx, key, token, lease).Result()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("redismod: outbox relay lead: %w", scrub(err, s.o.cfg))
		}
		if ok {
			l := &redisLead{o: s.o, key: key, token: token, lost: make(chan struct{}), stop: make(chan struct{})}
			l.wg.Add(1)
			go l.renew()
			return l, nil
		}
		t := time.NewTimer(s.o.oc.LeadRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

type redisLead struct {
	o     *Outbox
	key   string
	token string
	lost  chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// renew extends the lease every third of it. A renewal is given a third of
// the lease too, so the lead is known lost before the lease can run out on
// the server (which counts from a later instant than this side's start).
func (l *redisLead) renew() {
	defer l.wg.Done()
	every := l.o.oc.Lease / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := outboxLeadExtend.Run(ctx, l.o.rdb, []string{l.key}, l.token, l.o.oc.Lease.Milliseconds()).Int()
		cancel()
		if err != nil || n == 0 {
			close(l.lost)
			return
		}
		t.Reset(max(every-time.Since(start), 0))
	}
}

func (l *redisLead) Lost() <-chan struct{} { return l.lost }

// Release stops the renewals and deletes the lease if it is still this
// lead's.
func (l *redisLead) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		if e := outboxLeadDrop.Run(ctx, l.o.rdb, []string{l.key}, l.token).Err(); e != nil {
			err = fmt.Errorf("redismod: outbox relay release: %w", scrub(e, l.o.cfg)) // the lease runs out by itself
		}
	})
	return err
}

// Fetch implements outbox.Store: XRANGE, oldest first.
func (s *OutboxStore) Fetch(ctx context.Context, max int) ([]outbox.Record, error) {
	msgs, err := s.o.rdb.XRangeN(ctx, s.o.k.stream(), "-", "+", int64(max)).Result()
	if err != nil {
		return nil, fmt.Errorf("redismod: outbox fetch: %w", scrub(err, s.o.cfg))
	}
	recs := make([]outbox.Record, 0, len(msgs))
	for _, m := range msgs {
		recs = append(recs, outboxRecord(m))
	}
	return recs, nil
}

// outboxRecord reads an outbox entry back; one it cannot read is returned
// Unreadable, for the relay to bury.
func outboxRecord(m redis.XMessage) outbox.Record {
	rec := outbox.Record{Ref: m.ID}
	var errs []error
	topic, _ := m.Values[outboxFieldTopic].(string)
	kind, name, _ := strings.Cut(topic, ":")
	k, err := transport.ParseKind(kind)
	if err != nil || name == "" {
		errs = append(errs, fmt.Errorf("topic %q: want kind:name", topic))
	}
	rec.Topic = transport.Topic{Kind: k, Name: name}
	env, err := envelopeOf(m.Values)
	if err != nil {
		errs = append(errs, err)
	}
	if env == nil {
		env = &transport.Envelope{}
	}
	rec.Envelope = env
	if len(errs) > 0 {
		rec.Unreadable = fmt.Errorf("redismod: outbox entry %s: %w", m.ID, errors.Join(errs...))
	}
	return rec
}

// Remove implements outbox.Store: XDEL.
func (s *OutboxStore) Remove(ctx context.Context, recs []outbox.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.Ref
	}
	if err := s.o.rdb.XDel(ctx, s.o.k.stream(), ids...).Err(); err != nil {
		return fmt.Errorf("redismod: outbox remove: %w", scrub(err, s.o.cfg))
	}
	return nil
}

// Bury implements outbox.Store: the entry moves, with its fields as they
// are, to the dead stream with the error, in one script.
func (s *OutboxStore) Bury(ctx context.Context, rec outbox.Record, cause error) error {
	err := outboxBury.Run(ctx, s.o.rdb, []string{s.o.k.stream(), s.o.k.dead()}, rec.Ref, cause.Error()).Err()
	if err != nil {
		return fmt.Errorf("redismod: outbox bury %s: %w", rec.Ref, scrub(err, s.o.cfg))
	}
	return nil
}

// Depth implements outbox.Store: XLEN.
func (s *OutboxStore) Depth(ctx context.Context) (int64, error) {
	n, err := s.o.rdb.XLen(ctx, s.o.k.stream()).Result()
	if err != nil {
		return 0, fmt.Errorf("redismod: outbox depth: %w", scrub(err, s.o.cfg))
	}
	return n, nil
}

// DeadRecords returns up to limit entries the broker refused for good,
// oldest first; Time is when each was buried.
func (s *OutboxStore) DeadRecords(ctx context.Context, limit int) ([]outbox.DeadRecord, error) {
	msgs, err := s.o.rdb.XRangeN(ctx, s.o.k.dead(), "-", "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redismod: outbox dead letters: %w", scrub(err, s.o.cfg))
	}
	out := make([]outbox.DeadRecord, 0, len(msgs))
	for _, m := range msgs {
		d := outbox.DeadRecord{Record: outboxRecord(m)}
		d.Ref, _ = m.Values["ref"].(string)
		d.Error, _ = m.Values["error"].(string)
		ms, _, _ := strings.Cut(m.ID, "-")
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			d.Time = time.UnixMilli(n)
		}
		out = append(out, d)
	}
	return out, nil
}
