package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// descending is a key order of its own, to tell it from byte order: keys
// by their bytes, backwards.
type descending struct{}

func (descending) Compare(a, b string) int   { return strings.Compare(b, a) }
func (descending) OrderBy(col string) string { return col + ` COLLATE "C" DESC` }

// TestDocumentSelectOrdersKeysByTheSourceOrder: documentSelect reads rows
// in exactly the order it is given (the source's KeyOrder), key column by
// key column, and in byte order without one — whatever the key columns'
// collation. (That Firestore's order in SQL matches its CompareIDs is
// tested in extractors/firestore.)
func TestDocumentSelectOrdersKeysByTheSourceOrder(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("c/x", nil)
	in.Observe("c/x/s/y", nil)
	m := in.Mapping()
	if err := ApplySchema(ctx, pool, m, Owner{}); err != nil {
		t.Fatal(err)
	}
	// Not byte-wise: byte order must not come from the column's collation.
	if _, err := pool.Exec(ctx, `CREATE COLLATION nondeterministic (provider = icu, locale = 'und', deterministic = false)`); err != nil {
		t.Fatal(err)
	}
	ids := []string{"12", "7", "A", "Aa", "a", "b", "B", "é", "e", "\x01", "__id7__", "__id12__", "z", "Z"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		ids = append(ids, strconv.FormatInt(rng.Int64N(1000), 36))
	}
	parents := []string{"b", "A", "é"}
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
		check := func(what string, order record.KeyOrder) {
			t.Helper()
			cmp := record.ByteOrder.Compare
			if order != nil {
				cmp = order.Compare
			}
			want := slices.Clone(tc.want)
			slices.SortFunc(want, func(a, b []string) int { return slices.CompareFunc(a, b, cmp) })
			got := readKeys(t, pool, m, tc.t, order)
			if !slices.EqualFunc(got, want, slices.Equal) {
				for i := range min(len(got), len(want)) {
					if !slices.Equal(got[i], want[i]) {
						t.Fatalf("%s %s: row %d is %q, want %q (%d rows, want %d)", tc.t.Name, what, i, got[i], want[i], len(got), len(want))
					}
				}
				t.Fatalf("%s %s: %d rows, want %d", tc.t.Name, what, len(got), len(want))
			}
		}
		check("in byte order", nil)
		check("in the given order", descending{})
		for _, k := range tc.t.KeyColumns() {
			if _, err := pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s TYPE text COLLATE nondeterministic`,
				pgx.Identifier{m.Schema, tc.t.Name}.Sanitize(), pgx.Identifier{k}.Sanitize())); err != nil {
				t.Fatal(err)
			}
		}
		check("in byte order, with a nondeterministic ICU collation", nil)
		check("in the given order, with a nondeterministic ICU collation", descending{})
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
}, m *mappings.Mapping, tb *mappings.Table, order record.KeyOrder) [][]string {
	t.Helper()
	// Not a cached statement: the test changes the columns' type.
	rows, err := db.Query(context.Background(), documentSelect(m, tb, order), pgx.QueryExecModeSimpleProtocol)
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
