package migration

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lazyTx is a transaction that begins on its first statement. A sink
// handed one can do slow work that needs no transaction first — uploading
// a batch's files — without holding a database session idle in
// transaction (which servers time out, and which holds back VACUUM); the
// rows and the checkpoint still commit together.
type lazyTx struct {
	pool *pgxpool.Pool
	tx   pgx.Tx
	err  error
}

var _ pgx.Tx = (*lazyTx)(nil)

// LazyTx returns a transaction on pool that begins with its first
// statement (see lazyTx); Commit without any statement commits nothing.
// Roll it back when done, as any pgx.Tx.
func LazyTx(pool *pgxpool.Pool) pgx.Tx { return &lazyTx{pool: pool} }

func (l *lazyTx) get(ctx context.Context) (pgx.Tx, error) {
	if l.tx == nil && l.err == nil {
		l.tx, l.err = l.pool.Begin(ctx)
	}
	return l.tx, l.err
}

func (l *lazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

// Commit commits the transaction; with no statement run there is nothing
// to commit.
func (l *lazyTx) Commit(ctx context.Context) error {
	if l.tx == nil {
		return l.err
	}
	return l.tx.Commit(ctx)
}

func (l *lazyTx) Rollback(ctx context.Context) error {
	if l.tx == nil {
		return nil
	}
	return l.tx.Rollback(ctx)
}

func (l *lazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

func (l *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	tx, err := l.get(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return tx.SendBatch(ctx, b)
}

func (l *lazyTx) LargeObjects() pgx.LargeObjects {
	tx, _ := l.get(context.Background())
	if tx == nil {
		return pgx.LargeObjects{}
	}
	return tx.LargeObjects()
}

func (l *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

func (l *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (l *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (l *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := l.get(ctx)
	if err != nil {
		return errRow{err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

func (l *lazyTx) Conn() *pgx.Conn {
	tx, _ := l.get(context.Background())
	if tx == nil {
		return nil
	}
	return tx.Conn()
}

// errRow carries a failure to begin into QueryRow's result.
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }
