package postgres

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/jackc/pgx/v5"
)

func TestUpsertRewritesOnlyChangedRowsAndIsolatesBadOnes(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	hostile := `we"ird; DROP TABLE x; --`
	if _, err := pool.Exec(ctx, `CREATE TABLE `+pgx.Identifier{"public", hostile}.Sanitize()+
		` (id text PRIMARY KEY, n bigint CHECK (n >= 0), f double precision, p point, j jsonb)`); err != nil {
		t.Fatal(err)
	}
	def := newTableDef(pgx.Identifier{"public", hostile}, []string{"id", "n", "f", "p", "j"},
		[]string{"text", "bigint", "double precision", "point", "jsonb"}, []string{"id"})
	load := func(rows [][]any) (int64, map[int]string) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		n, rej, err := def.upsert(ctx, tx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return n, rej
	}
	negZero := math.Copysign(0, -1)
	rows := [][]any{
		{"a", int64(1), 0.0, "(1,2)", []byte(`{"x":1.0}`)},
		{"b", int64(2), 1.5, nil, nil},
	}
	if n, rej := load(rows); n != 2 || len(rej) != 0 {
		t.Fatalf("first load: changed %d, rejects %v", n, rej)
	}
	if n, rej := load(rows); n != 0 || len(rej) != 0 {
		t.Fatalf("identical reload rewrote %d rows (rejects %v)", n, rej)
	}
	// -0 differs from 0 and 1.0 from 1 for us, though = says otherwise.
	rows[0][2] = negZero
	rows[1][4] = []byte(`{"x":1}`)
	if n, _ := load(rows); n != 2 {
		t.Fatalf("changed rows: rewrote %d, want 2", n)
	}
	// One bad row (violates the CHECK) is rejected, the rest load.
	n, rej := load([][]any{{"c", int64(3), nil, nil, nil}, {"d", int64(-1), nil, nil, nil}, {"e", int64(5), nil, nil, nil}})
	if n != 2 || len(rej) != 1 || !strings.Contains(rej[1], "check constraint") {
		t.Fatalf("bad row: changed %d, rejects %v", n, rej)
	}
	var count int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{hostile}.Sanitize()).Scan(&count); err != nil || count != 4 {
		t.Fatalf("rows in table = %d, %v; want 4", count, err)
	}
}
