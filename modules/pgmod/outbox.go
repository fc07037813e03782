package pgmod

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/catga-go/catga/cqrs/outbox"
	"github.com/catga-go/catga/cqrs/transport"
)

// leadLock is the advisory lock key whose holder relays the outbox.
const leadLock int64 = 0x63617467615f6f62 // "catga_ob"

// OutboxStore is the relay's view of catga_outbox (outbox.Store). One
// relay leads at a time: the one whose session holds an advisory lock; a
// crashed leader's session ends and the lock passes on.
type OutboxStore struct {
	db *DB
}

var _ outbox.RemoveFetcher = (*OutboxStore)(nil)

// Outbox returns the relay's view of db's outbox.
func (db *DB) Outbox() *OutboxStore { return &OutboxStore{db: db} }

// Lead implements outbox.Store: it takes the advisory lock on a connection
// it keeps for as long as it leads, and pings that connection every
// second; a failed ping is a lost lead.
func (s *OutboxStore) Lead(ctx context.Context) (outbox.Lead, error) {
	for {
		pool, err := s.db.conn()
		if err != nil {
			return nil, err
		}
		l, err := tryLead(ctx, pool)
		if err != nil {
			return nil, s.db.scrub(err)
		}
		if l != nil {
			return l, nil
		}
		t := time.NewTimer(s.db.cfg.LeadRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

func tryLead(ctx context.Context, pool *pgxpool.Pool) (*pgLead, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgmod: relay lead: %w", err)
	}
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leadLock).Scan(&held); err != nil {
		conn.Release()
		return nil, fmt.Errorf("pgmod: relay lead: %w", err)
	}
	if !held {
		conn.Release()
		return nil, nil
	}
	l := &pgLead{conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	l.wg.Add(1)
	go l.watch()
	return l, nil
}

type pgLead struct {
	conn *pgxpool.Conn
	lost chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func (l *pgLead) watch() {
	defer l.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			close(l.lost)
			return
		}
	}
}

func (l *pgLead) Lost() <-chan struct{} { return l.lost }

func (l *pgLead) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		select {
		case <-l.lost: // the session is gone, and its lock with it
			l.conn.Hijack().Close(ctx) //nolint:errcheck // a broken connection
			return
		default:
		}
		_, err = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, leadLock)
		l.conn.Release()
	})
	return err
}

const fetchSQL = `SELECT seq, kind, topic, headers, payload FROM catga_outbox ORDER BY seq LIMIT $1`

// Fetch implements outbox.Store.
func (s *OutboxStore) Fetch(ctx context.Context, max int) ([]outbox.Record, error) {
	pool, err := s.db.conn()
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, fetchSQL, max)
	if err != nil {
		return nil, fmt.Errorf("pgmod: outbox fetch: %w", s.db.scrub(err))
	}
	return s.readRecords(rows)
}

// RemoveAndFetch implements outbox.RemoveFetcher: the DELETE and the next
// SELECT in one batch, one round trip. A batch outside a transaction runs
// as one implicit transaction, so the SELECT sees the DELETE (and both
// happen or neither does).
func (s *OutboxStore) RemoveAndFetch(ctx context.Context, done []outbox.Record, max int) ([]outbox.Record, error) {
	pool, err := s.db.conn()
	if err != nil {
		return nil, err
	}
	var b pgx.Batch
	b.Queue(`DELETE FROM catga_outbox WHERE seq = ANY($1)`, seqs(done))
	b.Queue(fetchSQL, max)
	br := pool.SendBatch(ctx, &b)
	defer br.Close() //nolint:errcheck // its error is the one read below
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("pgmod: outbox remove: %w", s.db.scrub(err))
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("pgmod: outbox fetch: %w", s.db.scrub(err))
	}
	recs, err := s.readRecords(rows)
	if err != nil {
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("pgmod: outbox fetch: %w", s.db.scrub(err))
	}
	return recs, nil
}

// readRecords reads fetchSQL's rows and closes them.
func (s *OutboxStore) readRecords(rows pgx.Rows) ([]outbox.Record, error) {
	defer rows.Close()
	var recs []outbox.Record
	for rows.Next() {
		var (
			seq     int64
			kind    int16
			topic   string
			headers string
			payload []byte
		)
		if err := rows.Scan(&seq, &kind, &topic, &headers, &payload); err != nil {
			return nil, fmt.Errorf("pgmod: outbox fetch: %w", err)
		}
		rec := outbox.Record{Ref: strconv.FormatInt(seq, 10), Topic: transport.Topic{Kind: transport.Kind(kind), Name: topic}}
		var err error
		if rec.Envelope, err = decodeHeaders(headers, payload); err != nil {
			rec.Envelope, rec.Unreadable = &transport.Envelope{Payload: payload}, err // the relay buries it
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgmod: outbox fetch: %w", s.db.scrub(err))
	}
	return recs, nil
}

func seqs(recs []outbox.Record) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		if n, err := strconv.ParseInt(r.Ref, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Remove implements outbox.Store.
func (s *OutboxStore) Remove(ctx context.Context, recs []outbox.Record) error {
	pool, err := s.db.conn()
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `DELETE FROM catga_outbox WHERE seq = ANY($1)`, seqs(recs)); err != nil {
		return fmt.Errorf("pgmod: outbox remove: %w", s.db.scrub(err))
	}
	return nil
}

// Bury implements outbox.Store: the row moves to catga_outbox_dead.
func (s *OutboxStore) Bury(ctx context.Context, rec outbox.Record, cause error) error {
	pool, err := s.db.conn()
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `WITH moved AS (DELETE FROM catga_outbox WHERE seq = $1 RETURNING *)
INSERT INTO catga_outbox_dead (seq, kind, topic, message_id, msg_key, headers, payload, created_at, error)
SELECT seq, kind, topic, message_id, msg_key, headers, payload, created_at, $2 FROM moved`, seqs([]outbox.Record{rec})[0], cause.Error())
	if err != nil {
		return fmt.Errorf("pgmod: outbox bury: %w", s.db.scrub(err))
	}
	return nil
}

// Depth implements outbox.Store.
func (s *OutboxStore) Depth(ctx context.Context) (int64, error) {
	pool, err := s.db.conn()
	if err != nil {
		return 0, err
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM catga_outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgmod: outbox depth: %w", s.db.scrub(err))
	}
	return n, nil
}

// DeadRecords returns up to limit records the broker refused for good,
// oldest first.
func (s *OutboxStore) DeadRecords(ctx context.Context, limit int) ([]outbox.DeadRecord, error) {
	pool, err := s.db.conn()
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT seq, kind, topic, headers, payload, error, buried_at FROM catga_outbox_dead ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("pgmod: outbox dead letters: %w", s.db.scrub(err))
	}
	defer rows.Close()
	var out []outbox.DeadRecord
	for rows.Next() {
		var (
			seq     int64
			kind    int16
			d       outbox.DeadRecord
			headers string
			payload []byte
		)
		if err := rows.Scan(&seq, &kind, &d.Topic.Name, &headers, &payload, &d.Error, &d.Time); err != nil {
			return nil, fmt.Errorf("pgmod: outbox dead letters: %w", err)
		}
		d.Ref, d.Topic.Kind = strconv.FormatInt(seq, 10), transport.Kind(kind)
		if d.Envelope, err = decodeHeaders(headers, payload); err != nil {
			d.Envelope = &transport.Envelope{Payload: payload}
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
