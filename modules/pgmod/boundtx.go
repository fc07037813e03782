package pgmod

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/catga-go/catga/cqrs"
)

// errTxOwned answers fn's own Commit or Rollback of the transaction Tx
// gave it: Tx commits when fn returns nil (with the outbox rows) and rolls
// back when it returns an error.
var errTxOwned = errors.New("pgmod: DB.Tx commits or rolls back when fn returns; return an error to roll back")

// boundTx is the pgx.Tx that fn sees. It saves two round trips of the
// usual four (BEGIN, a statement, the outbox insert, COMMIT):
//
//   - BEGIN is not sent on its own: it goes in one batch with the first
//     Exec that has arguments (pgx's Batch.BeginTx), or with the outbox
//     insert and COMMIT if fn ran no statement. Any other first call
//     (Query, SendBatch, ...) begins on its own first, as pgx.Conn.BeginTx
//     does.
//   - Tx commits through the connection (the outbox rows and COMMIT in one
//     batch), which the pgx.Tx inside never learns of; boundTx ends with
//     the transaction instead, so that a late use (a goroutine fn left
//     running) fails with pgx.ErrTxClosed rather than run on a connection
//     that is back in the pool.
//
// A savepoint (Begin) shares its parent's end. LargeObjects and Conn begin
// the transaction (with Tx's context: they take none) and are not guarded
// after it.
type boundTx struct {
	conn   *pgx.Conn
	opts   pgx.TxOptions
	ctx    context.Context
	inner  pgx.Tx // nil until the transaction has begun
	ended  *atomic.Bool
	nested bool // a savepoint: Commit and Rollback are fn's to call
}

var _ pgx.Tx = (*boundTx)(nil)

func newBoundTx(ctx context.Context, conn *pgx.Conn, opts pgx.TxOptions) *boundTx {
	return &boundTx{conn: conn, opts: opts, ctx: ctx, ended: new(atomic.Bool)}
}

// end rolls the transaction back unless it was committed or never begun;
// Tx releases the connection after it.
func (t *boundTx) end(ctx context.Context) {
	if !t.ended.Swap(true) && t.inner != nil {
		_ = t.inner.Rollback(ctx)
	}
}

// begin sends BEGIN on its own if the transaction has not begun.
func (t *boundTx) begin(ctx context.Context) error {
	if t.inner != nil {
		return nil
	}
	inner, err := t.conn.BeginTx(ctx, t.opts)
	if err != nil {
		t.inner = failedTx(err)
		return beginError(err)
	}
	t.inner = inner
	return nil
}

// beginWith sends BEGIN and the statement in one batch.
func (t *boundTx) beginWith(ctx context.Context, sql string, args []any) (pgconn.CommandTag, error) {
	var b pgx.Batch
	b.BeginTx(t.opts)
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, &b)
	t.inner = br.Tx() // begun, or closed if BEGIN failed
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return pgconn.CommandTag{}, t.foldedBeginError(err)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// foldable reports whether Exec's statement can go in a batch with BEGIN:
// it has arguments (pgx runs one without them by the simple protocol,
// which allows several statements in one string) and no pgx option (a
// batch takes none of Exec's).
func foldable(args []any) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0].(type) {
	case pgx.QueryExecMode, pgx.QueryRewriter:
		return false
	}
	return true
}

func beginError(err error) error {
	return cqrs.Errorf(cqrs.CodeUnavailable, "pgmod: begin: %w", err)
}

// foldedBeginError tells why a batch of BEGIN and a statement failed at
// BEGIN: the statement's own fault, found before anything ran (pgx
// prepares a new statement first, and encodes its arguments), is returned
// as a plain Exec would return it; a broken connection is a failure to
// begin.
func (t *boundTx) foldedBeginError(err error) error {
	var pre pgx.ErrPreprocessingBatch
	var pgErr *pgconn.PgError
	fatal := errors.As(err, &pgErr) && (pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC")
	if errors.As(err, &pre) && !fatal && !t.conn.IsClosed() {
		return pre.Unwrap()
	}
	return beginError(err)
}

// failedTx is a closed pgx.Tx: its methods fail with pgx.ErrTxClosed.
func failedTx(err error) pgx.Tx {
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{})
	return pgx.FailedBatchResults(&b, err).Tx()
}

func (t *boundTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.ended.Load() {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	if t.inner == nil && foldable(args) {
		return t.beginWith(ctx, sql, args)
	}
	if err := t.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.inner.Exec(ctx, sql, args...)
}

func (t *boundTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if t.ended.Load() {
		return nil, pgx.ErrTxClosed
	}
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	sp, err := t.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &boundTx{conn: t.conn, opts: t.opts, ctx: t.ctx, inner: sp, ended: t.ended, nested: true}, nil
}

func (t *boundTx) Commit(ctx context.Context) error {
	if !t.nested {
		return errTxOwned
	}
	if t.ended.Load() {
		return pgx.ErrTxClosed
	}
	return t.inner.Commit(ctx)
}

func (t *boundTx) Rollback(ctx context.Context) error {
	if !t.nested {
		return errTxOwned
	}
	if t.ended.Load() {
		return pgx.ErrTxClosed
	}
	return t.inner.Rollback(ctx)
}

func (t *boundTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if t.ended.Load() {
		return 0, pgx.ErrTxClosed
	}
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	return t.inner.CopyFrom(ctx, table, columns, src)
}

func (t *boundTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.ended.Load() {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	if err := t.begin(ctx); err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return t.inner.SendBatch(ctx, b)
}

func (t *boundTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if t.ended.Load() {
		return nil, pgx.ErrTxClosed
	}
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.inner.Prepare(ctx, name, sql)
}

func (t *boundTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.ended.Load() {
		return nil, pgx.ErrTxClosed
	}
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.inner.Query(ctx, sql, args...)
}

func (t *boundTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.ended.Load() {
		return errRow{pgx.ErrTxClosed}
	}
	if err := t.begin(ctx); err != nil {
		return errRow{err}
	}
	return t.inner.QueryRow(ctx, sql, args...)
}

func (t *boundTx) LargeObjects() pgx.LargeObjects {
	if !t.ended.Load() {
		_ = t.begin(t.ctx) // on failure inner is closed, and so are its large objects
	}
	if t.inner == nil {
		return failedTx(pgx.ErrTxClosed).LargeObjects()
	}
	return t.inner.LargeObjects()
}

func (t *boundTx) Conn() *pgx.Conn {
	if !t.ended.Load() {
		_ = t.begin(t.ctx) // statements on the connection are in the transaction
	}
	return t.conn
}

// errRow answers a QueryRow that could not be sent.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
