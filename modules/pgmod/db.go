package pgmod

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/internal/redact"
)

// DB is a PostgreSQL pool with the catga tables: the outbox its
// transactions write (Tx) and the relay publishes, and the inbox of the
// messages its handlers have handled. Build it with New, connect it with
// Start, close it with Close.
type DB struct {
	cfg     Config
	service string
	log     *zap.Logger

	mu     sync.Mutex
	pool   *pgxpool.Pool
	notify func() // wakes the relay after a commit that wrote the outbox

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a DB for cfg, not connected yet. service is the consumer
// group (CATGA_SERVICE) that inbox marks are kept for; log may be nil.
func New(cfg Config, service string, log *zap.Logger) (*DB, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &DB{cfg: cfg, service: service, log: log.Named("pgmod"), notify: func() {}, stop: make(chan struct{})}, nil
}

// Start connects, creates or upgrades the catga tables (Migrate) and starts
// the janitor that removes old inbox marks. A server that cannot be
// reached fails here, with an error that names it and never a secret.
func (db *DB) Start(ctx context.Context) error {
	pc, err := db.cfg.poolConfig()
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("pgmod: connect to %s: %w", db.cfg.where(), db.scrub(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("pgmod: connect to %s: %w", db.cfg.where(), db.scrub(err))
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return db.scrub(err)
	}
	db.mu.Lock()
	db.pool = pool
	db.mu.Unlock()
	db.wg.Add(1)
	go db.janitor()
	db.log.Info("connected to PostgreSQL", zap.String("server", db.cfg.where()), zap.Int("schema_version", SchemaVersion))
	return nil
}

// Close stops the janitor and closes the pool.
func (db *DB) Close(context.Context) error {
	db.mu.Lock()
	pool := db.pool
	db.pool = nil
	db.mu.Unlock()
	if pool == nil {
		return nil
	}
	close(db.stop)
	db.wg.Wait()
	pool.Close()
	return nil
}

// Pool returns the connection pool, nil before Start and after Close.
func (db *DB) Pool() *pgxpool.Pool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.pool
}

func (db *DB) conn() (*pgxpool.Pool, error) {
	if p := db.Pool(); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("pgmod: not connected: %w", cqrs.ErrClosed)
}

// Check is the readiness check: the server answers.
func (db *DB) Check(ctx context.Context) error {
	pool, err := db.conn()
	if err != nil {
		return err
	}
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgmod: ping %s: %w", db.cfg.where(), db.scrub(err))
	}
	return nil
}

// OnCommit sets what runs after a transaction that wrote the outbox
// commits: the relay's Notify. The module sets it; a DB without a relay
// leaves its rows for another instance's relay.
func (db *DB) OnCommit(fn func()) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if fn == nil {
		fn = func() {}
	}
	db.notify = fn
}

func (db *DB) committed() {
	db.mu.Lock()
	fn := db.notify
	db.mu.Unlock()
	fn()
}

// janitor removes inbox marks older than InboxTTL.
func (db *DB) janitor() {
	defer db.wg.Done()
	t := time.NewTicker(db.cfg.JanitorEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		if _, err := db.ExpireInbox(context.Background(), db.cfg.InboxTTL); err != nil {
			db.log.Warn("removing old inbox marks failed", zap.String("error", err.Error()))
		}
	}
}

// ExpireInbox removes inbox marks older than ttl and returns how many. A
// message redelivered after its mark is gone runs again: keep ttl well
// above the broker's redelivery horizon.
func (db *DB) ExpireInbox(ctx context.Context, ttl time.Duration) (int64, error) {
	pool, err := db.conn()
	if err != nil {
		return 0, err
	}
	tag, err := pool.Exec(ctx, `DELETE FROM catga_inbox WHERE handled_at < now() - $1 * interval '1 second'`, ttl.Seconds())
	if err != nil {
		return 0, fmt.Errorf("pgmod: expire inbox: %w", db.scrub(err))
	}
	return tag.RowsAffected(), nil
}

// scrub removes the configuration's secrets from err's text.
func (db *DB) scrub(err error) error {
	if err == nil {
		return nil
	}
	secrets := redact.Secrets(db.cfg.URL)
	if pc, perr := pgxpool.ParseConfig(db.cfg.URL); perr == nil && pc.ConnConfig.Password != "" {
		secrets = append(secrets, pc.ConnConfig.Password)
	}
	msg := redact.Text(err.Error(), []string{db.cfg.URL}, secrets...)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }

// Is keeps errors.Is working on the scrubbed error's chain without
// exposing the original text through Unwrap.
func (s *scrubbed) Is(target error) bool { return errors.Is(s.err, target) }
