package postgres

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestCopyRowsMatchesPgxCopyFrom loads the same rows with copyRows and with
// pgx's CopyFrom — thousands of rows and values larger than a COPY data
// message, so that the stream is read in many pieces, with a row split
// between them — and checks both tables hold the same rows; then that a
// row pgx cannot encode fails the COPY with pgx's encode error and leaves
// nothing behind, and that a COPY of no rows inserts none.
func TestCopyRowsMatchesPgxCopyFrom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := testenv.NewPool(t)
	for _, name := range []string{"ours", "pgx", "simple"} {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (id text PRIMARY KEY, n bigint, b bytea, j jsonb, tags text[], at timestamptz, p point)`, name)); err != nil {
			t.Fatal(err)
		}
	}
	cols := []string{"id", "n", "b", "j", "tags", "at", "p"}
	var rows [][]any
	for i := range 5000 {
		var b []byte
		if i%997 == 0 {
			b = []byte(strings.Repeat(fmt.Sprint(i), 50000)) // larger than a 64 KiB message
		} else if i%3 == 0 {
			b = []byte{byte(i)}
		}
		var j any
		if i%2 == 0 {
			j = []byte(fmt.Sprintf(`{"i": %d, "s": "%s"}`, i, strings.Repeat("x", i%300)))
		}
		rows = append(rows, []any{fmt.Sprintf("doc%05d", i), int64(i) - 2500, b, j, []string{"a", fmt.Sprint(i)},
			pgtype.Timestamptz{Time: time.Unix(int64(i)*86400, int64(i)*1001).UTC(), Valid: i%5 != 0},
			"(1.5,-2)"})
	}
	load := func(f func(tx pgx.Tx) (int64, error)) (int64, error) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		n, err := f(tx)
		if err != nil {
			return n, err
		}
		return n, tx.Commit(ctx)
	}
	n, err := load(func(tx pgx.Tx) (int64, error) { return copyRows(ctx, tx, pgx.Identifier{"ours"}, cols, rows) })
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("copyRows: %d rows, %v", n, err)
	}
	if _, err := load(func(tx pgx.Tx) (int64, error) {
		return tx.CopyFrom(ctx, pgx.Identifier{"pgx"}, cols, pgx.CopyFromRows(rows))
	}); err != nil {
		t.Fatal(err)
	}
	// A connection in another query mode (as through a pooler that keeps
	// no prepared statements) describes the table each time.
	cfg := pool.Config().ConnConfig.Copy()
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	simple, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer simple.Close(context.Background())
	for range 2 {
		tx, err := simple.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "TRUNCATE simple"); err != nil {
			t.Fatal(err)
		}
		if n, err := copyRows(ctx, tx, pgx.Identifier{"simple"}, cols, rows); err != nil || n != int64(len(rows)) {
			t.Fatalf("copyRows in simple protocol mode: %d rows, %v", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, other := range []string{"pgx", "simple"} {
		var differ int
		if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM ((SELECT r1::text FROM ours r1 EXCEPT ALL SELECT r2::text FROM %s r2)
			UNION ALL (SELECT r2::text FROM %s r2 EXCEPT ALL SELECT r1::text FROM ours r1)) d`, other, other)).Scan(&differ); err != nil || differ != 0 {
			t.Fatalf("%d rows differ between copyRows and %s (%v)", differ, other, err)
		}
	}

	bad := [][]any{{"z1", int64(1), nil, nil, nil, nil, nil}, {"z2", "not a number", nil, nil, nil, nil, nil}}
	if _, err := load(func(tx pgx.Tx) (int64, error) { return copyRows(ctx, tx, pgx.Identifier{"ours"}, cols, bad) }); err == nil || !strings.Contains(err.Error(), "unable to encode") {
		t.Fatalf("a value bigint cannot take: got %v, want pgx's encode error", err)
	}
	if n, err := load(func(tx pgx.Tx) (int64, error) { return copyRows(ctx, tx, pgx.Identifier{"ours"}, cols, nil) }); err != nil || n != 0 {
		t.Fatalf("no rows: %d, %v", n, err)
	}
	var count int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ours`).Scan(&count); err != nil || count != len(rows) {
		t.Fatalf("%d rows in the table (%v), want %d", count, err, len(rows))
	}
}

// blockingValue is a text value whose encoding (pgx calls Value) waits
// until until is closed, telling entered that it started.
type blockingValue struct{ entered, until chan struct{} }

func (b blockingValue) Value() (driver.Value, error) {
	close(b.entered)
	<-b.until
	return "late", nil
}

// TestCopyRowsOutlivesItsReader ends a COPY's connection (the server
// terminates its backend) while the stream is encoding a row. pgconn's
// CopyFrom then returns without waiting for its writer goroutine, which
// is still in the stream's Read: copyRows must not return (and hand its
// buffer and the caller's rows on for reuse) before that Read is over.
// Run under -race, which reports the buffer written by both otherwise.
func TestCopyRowsOutlivesItsReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := testenv.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE doomed (id text)`); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The row's value is encoded until the connection is gone.
	v := blockingValue{entered: make(chan struct{}), until: make(chan struct{})}
	rows := [][]any{{v}, {strings.Repeat("x", 100_000)}}
	done := make(chan error, 1)
	go func() {
		_, err := copyRows(ctx, tx, pgx.Identifier{"doomed"}, []string{"id"}, rows)
		done <- err
	}()
	<-v.entered
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	<-conn.PgConn().CleanupDone()
	close(v.until)
	if err := <-done; err == nil {
		t.Fatal("a COPY on a terminated connection succeeded")
	}
	// The rows are the caller's again: a later COPY reuses the pooled buffer.
	rows[0][0], rows[1][0] = "a", "b"
	next, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Rollback(ctx)
	n, err := copyRows(ctx, next, pgx.Identifier{"doomed"}, []string{"id"}, rows)
	if err != nil || n != 2 {
		t.Fatalf("the next COPY: %d rows, %v", n, err)
	}
}
