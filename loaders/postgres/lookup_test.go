package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// TestLookupDocuments looks rows up by key in a root table and a
// subcollection's: found rows come back rebuilt, placeholders marked,
// and neither keys without a row, nor rows marked deleted, nor rows
// whose key only a collation takes as equal; CountDocuments counts
// neither placeholders nor rows marked deleted.
func TestLookupDocuments(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	doc := func(path string, n int64) record.Record {
		return record.Record{Kind: record.KindDocument, Key: path, Fields: map[string]record.Value{"n": record.Int(n)}}
	}
	recs := []record.Record{doc("c/a", 1), doc("c/b", 2), doc("c/soft", 3), doc("c/a/s/x", 4), doc("c/b/s/x", 5), doc("p/ghost/s/y", 6)}
	in := mappings.NewInferrer(mappings.InferOptions{})
	for _, r := range recs {
		in.Observe(r.Key, r.Fields)
	}
	m := in.Mapping()
	sink, err := NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := sink.Write(ctx, tx, recs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tr, err := transformers.NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	c := m.TableFor("c")
	for _, q := range []string{
		`CREATE COLLATION case_insensitive (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`,
		fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN id TYPE text COLLATE case_insensitive`, pgx.Identifier{m.Schema, c.Name}.Sanitize()),
		fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s timestamptz`, pgx.Identifier{m.Schema, c.Name}.Sanitize(), pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()),
		fmt.Sprintf(`UPDATE %s SET %s = now() WHERE id = 'soft'`, pgx.Identifier{m.Schema, c.Name}.Sanitize(), pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()),
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	lookup := func(tb *mappings.Table, keys ...[]string) []string {
		t.Helper()
		var out []string
		err := LookupDocuments(ctx, pool, m, tr, tb, keys, func(row DocumentRow) error {
			line := fmt.Sprintf("%s n=%v missing=%v", row.Path, row.Fields["n"], row.Missing)
			if row.Problem != "" {
				line += " problem"
			}
			out = append(out, line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	n := func(v int64) string { return fmt.Sprint(record.Int(v)) }
	if got, want := lookup(c, []string{"A"}, []string{"soft"}, []string{"none"}, []string{"b"}),
		[]string{"c/b n=" + n(2) + " missing=false"}; !slices.Equal(got, want) {
		t.Errorf("root table: %q, want %q", got, want)
	}
	if got, want := lookup(c, []string{"a"}), []string{"c/a n=" + n(1) + " missing=false"}; !slices.Equal(got, want) {
		t.Errorf("root table: %q, want %q", got, want)
	}
	if got, want := lookup(m.TableFor("c/{}/s"), []string{"b", "x"}, []string{"a", "y"}, []string{"x", "b"}),
		[]string{"c/b/s/x n=" + n(5) + " missing=false"}; !slices.Equal(got, want) {
		t.Errorf("subcollection table: %q, want %q", got, want)
	}
	if got := lookup(m.TableFor("p"), []string{"ghost"}); len(got) != 1 || got[0] != "p/ghost n="+fmt.Sprint(record.Value{})+" missing=true" {
		t.Errorf("placeholder: %q", got)
	}
	if err := LookupDocuments(ctx, pool, m, tr, m.TableFor("c/{}/s"), [][]string{{"a"}}, nil); err == nil {
		t.Error("a key of the wrong length: no error")
	}
	for _, tc := range []struct {
		pattern string
		want    int64
	}{{"c", 2}, {"c/{}/s", 2}, {"p", 0}, {"p/{}/s", 1}} {
		if got, err := CountDocuments(ctx, pool, m, m.TableFor(tc.pattern)); err != nil || got != tc.want {
			t.Errorf("CountDocuments(%s) = %d, %v; want %d", tc.pattern, got, err, tc.want)
		}
	}
}
