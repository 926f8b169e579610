package firestore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/extractors"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestIDOrderSQLSortsLikeCompareIDs: IDOrder.OrderBy, applied key column
// by key column, reads rows in exactly the order of CompareIDs — numeric
// __id<n>__ IDs first by value over the whole int64 range, then the rest
// by bytes, IDs that only look numeric included — whatever the key
// columns' collation. (Moved here from loaders/postgres, whose reads of
// document tables take the order from the extractor.)
func TestIDOrderSQLSortsLikeCompareIDs(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	var ex extractors.Extractor = (*fsx.Extractor)(nil)
	order := extractors.KeyOrderOf(ex)
	if order != fsx.IDOrder {
		t.Fatalf("the firestore extractor's key order is %T, want IDOrder", order)
	}
	// Case- and accent-sensitive, but not byte-wise: regular expressions
	// refuse such a collation.
	if _, err := pool.Exec(ctx, `CREATE COLLATION nondeterministic (provider = icu, locale = 'und', deterministic = false)`); err != nil {
		t.Fatal(err)
	}
	ids := []string{
		"__id-9223372036854775808__", "__id-9223372036854775807__", "__id-2__", "__id0__", "__id7__",
		"__id12__", "__id9223372036854775806__", "__id9223372036854775807__",
		"12", "7", "A", "Aa", "__id", "__id+5__", "__id-0__", "__id-9223372036854775809__", "__id007__",
		"__id1_", "__id9223372036854775808__", "__id99999999999999999999__", "__id_1__", "__id__",
		"__id1__\n", "__id 1__", "_id1__", "a", "é", "\x01", "__id１__",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		switch n := rng.Int64(); rng.IntN(4) {
		case 0:
			ids = append(ids, fmt.Sprintf("__id%d__", n))
		case 1:
			ids = append(ids, fmt.Sprintf("__id%d__", n%1000))
		case 2:
			ids = append(ids, fmt.Sprintf("__id%s__", strconv.FormatInt(n%100, 10)+"0"))
		default:
			ids = append(ids, strconv.FormatInt(n%1000, 10))
		}
	}
	// Parents of a subcollection's rows: a few of each kind, so that the
	// second key column is ordered within equal first ones.
	parents := []string{"__id-1__", "__id3__", "b", "__id03__"}
	ids = append(ids, parents...)
	slices.Sort(ids)
	ids = slices.Compact(ids)

	var wantRoot, wantSub [][]string
	for _, id := range ids {
		wantRoot = append(wantRoot, []string{id})
		for _, p := range parents {
			wantSub = append(wantSub, []string{p, id})
		}
	}
	for _, tc := range []struct {
		table string
		cols  []string
		want  [][]string
	}{{"c", []string{"id"}, wantRoot}, {"c_s", []string{"c_id", "id"}, wantSub}} {
		var defs, quoted, params []string
		for i, c := range tc.cols {
			q := pgx.Identifier{c}.Sanitize()
			defs, quoted, params = append(defs, q+" text NOT NULL"), append(quoted, q), append(params, fmt.Sprintf("$%d", i+1))
		}
		tbl := pgx.Identifier{tc.table}.Sanitize()
		if _, err := pool.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s, PRIMARY KEY (%s))", tbl, strings.Join(defs, ", "), strings.Join(quoted, ", "))); err != nil {
			t.Fatal(err)
		}
		// Inserted shuffled, read back ordered.
		rows := slices.Clone(tc.want)
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		b := &pgx.Batch{}
		ins := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", tbl, strings.Join(quoted, ", "), strings.Join(params, ", "))
		for _, k := range rows {
			args := make([]any, len(k))
			for i, v := range k {
				args[i] = v
			}
			b.Queue(ins, args...)
		}
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(tc.want, func(a, b []string) int { return slices.CompareFunc(a, b, fsx.CompareIDs) })
		var orderBy []string
		for _, q := range quoted {
			orderBy = append(orderBy, order.OrderBy(q))
		}
		query := fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(quoted, ", "), tbl, strings.Join(orderBy, ", "))
		check := func(what string) {
			t.Helper()
			got := readKeys(t, pool, query, len(tc.cols))
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				for i := range min(len(got), len(tc.want)) {
					if !slices.Equal(got[i], tc.want[i]) {
						t.Fatalf("%s %s: row %d is %q, want %q (%d rows, want %d)", tc.table, what, i, got[i], tc.want[i], len(got), len(tc.want))
					}
				}
				t.Fatalf("%s %s: %d rows, want %d", tc.table, what, len(got), len(tc.want))
			}
			for i := 1; i < len(got); i++ {
				if c := slices.CompareFunc(got[i-1], got[i], order.Compare); c >= 0 {
					t.Fatalf("%s %s: IDOrder.Compare(%q, %q) = %d, want < 0", tc.table, what, got[i-1], got[i], c)
				}
			}
		}
		check("as created")
		// A hand-made table may have another collation on its keys, even a
		// nondeterministic one.
		for _, q := range quoted {
			if _, err := pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s TYPE text COLLATE nondeterministic`, tbl, q)); err != nil {
				t.Fatal(err)
			}
		}
		check("with a nondeterministic ICU collation")
	}
}

// readKeys returns the first n columns of query's rows as keys.
func readKeys(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, query string, n int) [][]string {
	t.Helper()
	// Not a cached statement: the test changes the columns' type.
	rows, err := db.Query(context.Background(), query, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		k := make([]string, n)
		for i := range k {
			k[i] = vals[i].(string)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
