package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestDocumentSelectOrdersKeysLikeFirestore: documentSelect reads rows in
// exactly the order of firestore.CompareIDs, key column by key column —
// numeric __id<n>__ IDs first by value over the whole int64 range, then
// the rest by bytes, IDs that only look numeric included — whatever the
// key columns' collation.
func TestDocumentSelectOrdersKeysLikeFirestore(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("c/x", nil)
	in.Observe("c/x/s/y", nil)
	m := in.Mapping()
	if err := ApplySchema(ctx, pool, m, Owner{}); err != nil {
		t.Fatal(err)
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
	// The parents of the subcollection's rows (rows of c too): a few of
	// each kind, so that the second key column is ordered within equal
	// first ones.
	parents := []string{"__id-1__", "__id3__", "b", "__id03__"}
	ids = append(ids, parents...)
	slices.Sort(ids)
	ids = slices.Compact(ids)

	root, sub := m.TableFor("c"), m.TableFor("c/{}/s")
	var wantRoot, wantSub [][]string
	for _, id := range ids {
		wantRoot = append(wantRoot, []string{id})
		for _, p := range parents {
			wantSub = append(wantSub, []string{p, id})
		}
	}
	for _, tc := range []struct {
		t    *mappings.Table
		want [][]string
	}{{root, wantRoot}, {sub, wantSub}} {
		ins := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", pgx.Identifier{m.Schema, tc.t.Name}.Sanitize(),
			quoteAll(tc.t.KeyColumns()), placeholders(len(tc.t.KeyColumns())))
		// Inserted shuffled, read back ordered.
		rows := slices.Clone(tc.want)
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		b := &pgx.Batch{}
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
		check := func(what string) {
			t.Helper()
			got := readKeys(t, pool, m, tc.t)
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				for i := range min(len(got), len(tc.want)) {
					if !slices.Equal(got[i], tc.want[i]) {
						t.Fatalf("%s %s: row %d is %q, want %q (%d rows, want %d)", tc.t.Name, what, i, got[i], tc.want[i], len(got), len(tc.want))
					}
				}
				t.Fatalf("%s %s: %d rows, want %d", tc.t.Name, what, len(got), len(tc.want))
			}
		}
		check("as created")
		// A hand-made table may have another collation on its keys, even a
		// nondeterministic one.
		for _, k := range tc.t.KeyColumns() {
			if _, err := pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s TYPE text COLLATE nondeterministic`,
				pgx.Identifier{m.Schema, tc.t.Name}.Sanitize(), pgx.Identifier{k}.Sanitize())); err != nil {
				t.Fatal(err)
			}
		}
		check("with a nondeterministic ICU collation")
	}
}

func placeholders(n int) string {
	out := ""
	for i := range n {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("$%d", i+1)
	}
	return out
}

// readKeys returns the keys of t's rows in documentSelect's order.
func readKeys(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, m *mappings.Mapping, tb *mappings.Table) [][]string {
	t.Helper()
	// Not a cached statement: the test changes the columns' type.
	rows, err := db.Query(context.Background(), documentSelect(m, tb), pgx.QueryExecModeSimpleProtocol)
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
		k := make([]string, len(tb.KeyColumns()))
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
