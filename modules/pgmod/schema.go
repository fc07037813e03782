package pgmod

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the catga tables, by version. A version is applied once,
// in its own transaction, and never edited after release: a change is a
// new version.
var migrations = []string{
	1: `
CREATE TABLE catga_outbox (
	seq        bigserial   PRIMARY KEY,
	kind       smallint    NOT NULL,
	topic      text        NOT NULL,
	message_id text        NOT NULL,
	msg_key    text,
	headers    text        NOT NULL,
	payload    bytea       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE catga_outbox_dead (
	seq        bigint      PRIMARY KEY,
	kind       smallint    NOT NULL,
	topic      text        NOT NULL,
	message_id text        NOT NULL,
	msg_key    text,
	headers    text        NOT NULL,
	payload    bytea       NOT NULL,
	created_at timestamptz NOT NULL,
	error      text        NOT NULL,
	buried_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE catga_inbox (
	consumer   text        NOT NULL,
	message_id text        NOT NULL,
	handled_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, message_id)
);
CREATE INDEX catga_inbox_handled_at ON catga_inbox (handled_at);
`,
	2: `
CREATE TABLE catga_flows (
	flow       text        NOT NULL,
	key        text        NOT NULL,
	version    bigint      NOT NULL,
	state      bytea       NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (flow, key)
);
CREATE TABLE catga_flow_history (
	flow       text        NOT NULL,
	key        text        NOT NULL,
	seq        int         NOT NULL,
	step       text        NOT NULL,
	message_id text        NOT NULL,
	at         timestamptz NOT NULL,
	note       text        NOT NULL,
	PRIMARY KEY (flow, key, seq)
);
`,
}

// SchemaVersion is the newest version of the catga tables this build knows.
var SchemaVersion = len(migrations) - 1

// migrateLock is the advisory lock key that serialises migrations, so that
// several replicas starting at once apply each version once.
const migrateLock int64 = 0x63617467615f6d67 // "catga_mg"

// Migrate creates or upgrades the catga tables (catga_outbox,
// catga_outbox_dead, catga_inbox; catga_flows and catga_flow_history from
// version 2) to SchemaVersion. It is idempotent and
// safe to run from several processes at once: they queue on an advisory
// lock, and each version is applied once, in a transaction. A database at
// a newer version than this build knows is an error.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgmod: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("pgmod: migrate: lock: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock) }()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS catga_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgmod: migrate: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM catga_schema`).Scan(&current); err != nil {
		return fmt.Errorf("pgmod: migrate: read version: %w", err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("pgmod: the database's catga tables are at version %d, newer than this build's %d: deploy the newer build", current, SchemaVersion)
	}
	for v := current + 1; v <= SchemaVersion; v++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("pgmod: migrate to %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("pgmod: migrate to %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO catga_schema (version) VALUES ($1)`, v); err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("pgmod: migrate to %d: %w", v, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("pgmod: migrate to %d: %w", v, err)
		}
	}
	return nil
}

// EnsureSchema runs a service's own DDL (CREATE TABLE IF NOT EXISTS ...)
// in one transaction under an advisory lock keyed by name, so replicas
// starting at once do not race: concurrent CREATE ... IF NOT EXISTS of one
// table can fail in PostgreSQL. Call it from an OnStart hook that runs
// after the DB's (a constructor that takes the *DB appends it after).
func (db *DB) EnsureSchema(ctx context.Context, name string, ddl ...string) error {
	pool, err := db.conn()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgmod: schema %s: %w", name, db.scrub(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "catga_schema:"+name); err != nil {
		return fmt.Errorf("pgmod: schema %s: %w", name, db.scrub(err))
	}
	for _, stmt := range ddl {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("pgmod: schema %s: %w", name, db.scrub(err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgmod: schema %s: %w", name, db.scrub(err))
	}
	return nil
}
