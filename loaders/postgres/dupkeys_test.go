package postgres

import (
	"context"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// A batch that holds one key twice (a source that listed a record twice)
// makes INSERT ... ON CONFLICT fail with a cardinality violation; the
// batch must then load row by row, the later row winning, rather than
// failing the run.
func TestUpsertBatchHoldingOneKeyTwice(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE twice (id text PRIMARY KEY, n bigint)`); err != nil {
		t.Fatal(err)
	}
	def := newTableDef(pgx.Identifier{"public", "twice"}, []string{"id", "n"}, []string{"text", "bigint"}, []string{"id"})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, rej, err := def.upsert(ctx, tx, [][]any{{"a", int64(1)}, {"b", int64(2)}, {"a", int64(3)}})
	if err != nil {
		t.Fatalf("a batch holding key a twice failed: %v", err)
	}
	if len(rej) != 0 {
		t.Fatalf("rejects %v, want none", rej)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n int64
	var count int
	if err := pool.QueryRow(ctx, `SELECT (SELECT n FROM twice WHERE id = 'a'), (SELECT count(*) FROM twice)`).Scan(&n, &count); err != nil {
		t.Fatal(err)
	}
	if n != 3 || count != 2 {
		t.Fatalf("a = %d with %d rows; want the later value 3 and 2 rows", n, count)
	}
}
