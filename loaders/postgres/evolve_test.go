package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

const evolveJob = "document test"

// evolveFixture starts a run of evolveJob whose mapping has one table,
// items, with one column a (bigint), and returns an evolving sink for it.
func evolveFixture(t *testing.T, mode string) (*pgxpool.Pool, *EvolvingDocuments) {
	t.Helper()
	ctx := context.Background()
	pool := testenv.NewPool(t)
	state, err := OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	m := &mappings.Mapping{Version: 1, Schema: "public", Tables: []*mappings.Table{{
		Collection: "items", Name: "items", IDColumn: "id",
		Columns: []*mappings.Column{{Field: "a", Name: "a", Type: "bigint", Source: mappings.SourceInteger}},
	}}}
	text, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.StartRun(ctx, evolveJob, record.KindDocument, map[string]string{"mapping": string(text)}, nil); err != nil {
		t.Fatal(err)
	}
	sink, err := NewEvolvingDocuments(m, EvolveConfig{Mode: mode, Store: RunMapping(evolveJob)})
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool, sink
}

func docRec(key string, kv ...any) record.Record {
	f := map[string]record.Value{}
	for i := 0; i < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1].(record.Value)
	}
	return record.Record{Kind: record.KindDocument, Key: key, Fields: f}
}

// write writes recs in one transaction, committing it when commit is set.
func write(t *testing.T, pool *pgxpool.Pool, sink *EvolvingDocuments, commit bool, recs ...record.Record) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	out, err := sink.Write(ctx, tx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rejects) > 0 {
		t.Fatalf("rejects: %v", out.Rejects)
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// storedMapping returns the mapping recorded with the running run.
func storedMapping(t *testing.T, pool *pgxpool.Pool) *mappings.Mapping {
	t.Helper()
	var text string
	if err := pool.QueryRow(context.Background(), `SELECT config->>'mapping' FROM baasmigrate.runs WHERE job = $1 AND status = 'running'`, evolveJob).Scan(&text); err != nil {
		t.Fatal(err)
	}
	m, err := mappings.Parse([]byte(text), "stored")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func columnsOf(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	cols, err := existingColumns(context.Background(), pool, "public", table)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for c := range cols {
		names = append(names, c)
	}
	slices.Sort(names)
	return names
}

// readBack rebuilds every document of m's table for pattern.
func readBack(t *testing.T, pool *pgxpool.Pool, m *mappings.Mapping, pattern string) map[string]map[string]record.Value {
	t.Helper()
	tr, err := transformers.NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]record.Value{}
	err = ReadDocuments(context.Background(), pool, m, tr, m.TableFor(pattern), nil, func(r DocumentRow) error {
		out[r.Path] = r.Fields
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEvolvingDocumentsAddsColumnsWithTheBatchThatNeedsThem(t *testing.T) {
	pool, sink := evolveFixture(t, EvolveColumns)
	ctx := context.Background()

	// A batch that rolls back leaves no column and no mapping entry, and
	// the sink does not take its proposal for granted.
	write(t, pool, sink, false, docRec("items/x", "a", record.Int(1), "ghost", record.String("boo")))
	if cols := columnsOf(t, pool, "items"); slices.Contains(cols, "ghost") {
		t.Fatalf("a rolled-back batch left column ghost: %v", cols)
	}
	if storedMapping(t, pool).TableFor("items").Columns[0].Name != "a" || len(storedMapping(t, pool).TableFor("items").Columns) != 1 {
		t.Fatal("a rolled-back batch left its column in the stored mapping")
	}

	write(t, pool, sink, true,
		docRec("items/1", "a", record.Int(1), "b", record.String("x"), "c", record.Double(1.5)),
		docRec("items/2", "a", record.Int(2), "b", record.String("y")))
	// A later batch without the new fields, and one with "ghost" again.
	write(t, pool, sink, true, docRec("items/3", "a", record.Int(3), "ghost", record.String("boo")))

	cols := columnsOf(t, pool, "items")
	for _, want := range []string{"b", "c", "ghost"} {
		if !slices.Contains(cols, want) {
			t.Fatalf("table items lacks column %s: %v", want, cols)
		}
	}
	m := storedMapping(t, pool)
	it := m.TableFor("items")
	var got []string
	for _, c := range it.Columns {
		got = append(got, c.Name+" "+c.Type)
	}
	if want := []string{"a bigint", "b text", "c double precision", "ghost text"}; !slices.Equal(got, want) {
		t.Fatalf("stored mapping columns = %v, want %v", got, want)
	}
	// The values are in their columns, not in the overflow.
	var b string
	var overflow *string
	if err := pool.QueryRow(ctx, `SELECT b, _overflow::text FROM items WHERE id = '1'`).Scan(&b, &overflow); err != nil {
		t.Fatal(err)
	}
	if b != "x" || overflow != nil {
		t.Fatalf("items/1: b = %q, overflow = %v; want b = x and no overflow", b, overflow)
	}
	docs := readBack(t, pool, m, "items")
	if !record.Equal(record.Map(docs["items/1"]), record.Map(map[string]record.Value{"a": record.Int(1), "b": record.String("x"), "c": record.Double(1.5)})) {
		t.Fatalf("items/1 read back as %v", docs["items/1"])
	}
	if got := sink.Mapping().TableFor("items"); len(got.Columns) != 4 {
		// The sink adopts the stored mapping at its next growth only;
		// until then it may lag. Force a growth and check it caught up.
		write(t, pool, sink, true, docRec("items/4", "d", record.Bool(true)))
		if n := len(sink.Mapping().TableFor("items").Columns); n < 4 {
			t.Fatalf("sink's mapping has %d columns after reading the stored one", n)
		}
	}
}

func TestEvolvingDocumentsOverflowModeAltersNothingButCreatesNewTables(t *testing.T) {
	pool, sink := evolveFixture(t, EvolveOverflow)
	write(t, pool, sink, true,
		docRec("items/1", "a", record.Int(1), "b", record.String("x")),
		docRec("items/1/parts/p", "w", record.Int(7)),
		docRec("things/t", "z", record.Bool(true)))
	if cols := columnsOf(t, pool, "items"); slices.Contains(cols, "b") {
		t.Fatalf("overflow mode added column b: %v", cols)
	}
	m := storedMapping(t, pool)
	for _, p := range []string{"items/{}/parts", "things"} {
		if m.TableFor(p) == nil {
			t.Fatalf("stored mapping has no table for %s", p)
		}
	}
	if cols := columnsOf(t, pool, m.TableFor("things").Name); !slices.Contains(cols, "z") {
		t.Fatalf("new table things lacks its inferred column z: %v", cols)
	}
	docs := readBack(t, pool, m, "items")
	if !record.Equal(record.Map(docs["items/1"]), record.Map(map[string]record.Value{"a": record.Int(1), "b": record.String("x")})) {
		t.Fatalf("items/1 read back as %v", docs["items/1"])
	}
	// A value that does not fit its column's type is kept, in the overflow.
	write(t, pool, sink, true, docRec("items/2", "a", record.String("not a number")))
	docs = readBack(t, pool, m, "items")
	if v := docs["items/2"]["a"]; v.Type() != record.TypeString || v.StringValue() != "not a number" {
		t.Fatalf("items/2 a read back as %v", v)
	}
}

// TestEvolvingDocumentsConcurrentGrowth has workers grow the same tables
// at once, each batch with its own new field and a shared one, parents
// and children mixed: every batch commits (no deadlock), every column is
// in the catalog and in the stored mapping, every value in its column.
func TestEvolvingDocumentsConcurrentGrowth(t *testing.T) {
	pool, sink := evolveFixture(t, EvolveColumns)
	ctx := context.Background()
	const workers, batches = 4, 6
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		g.Go(func() error {
			for b := range batches {
				id := fmt.Sprintf("w%db%d", w, b)
				recs := []record.Record{
					docRec("items/"+id, "a", record.Int(int64(b)), "shared", record.Int(1), "f_"+id, record.String(id)),
					docRec("items/"+id+"/parts/p", "own_"+id, record.Int(2)),
				}
				err := pgx.BeginFunc(gctx, pool, func(tx pgx.Tx) error {
					_, err := sink.Write(gctx, tx, recs)
					return err
				})
				if err != nil {
					return fmt.Errorf("batch %s: %w", id, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	m := storedMapping(t, pool)
	items, parts := columnsOf(t, pool, "items"), columnsOf(t, pool, m.TableFor("items/{}/parts").Name)
	for w := range workers {
		for b := range batches {
			id := fmt.Sprintf("w%db%d", w, b)
			if !slices.Contains(items, "f_"+id) || !slices.Contains(parts, "own_"+id) {
				t.Fatalf("a column of batch %s is missing: items %v, parts %v", id, items, parts)
			}
		}
	}
	if got, want := len(m.TableFor("items").Columns), 2+workers*batches; got != want {
		t.Fatalf("stored mapping has %d columns for items, want %d", got, want)
	}
	var inOverflow int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM items WHERE _overflow IS NOT NULL`).Scan(&inOverflow); err != nil {
		t.Fatal(err)
	}
	// A batch whose fields the sink's view of the mapping lacks re-reads
	// the stored mapping under the lock: no field is left in the overflow.
	if inOverflow != 0 {
		t.Fatalf("%d rows kept a field in the overflow", inOverflow)
	}
	docs := readBack(t, pool, m, "items")
	for w := range workers {
		for b := range batches {
			id := fmt.Sprintf("w%db%d", w, b)
			if v := docs["items/"+id]["f_"+id]; v.Type() != record.TypeString || v.StringValue() != id {
				t.Fatalf("items/%s field f_%s read back as %v", id, id, v)
			}
		}
	}
}

// TestEvolvingDocumentsFitsColumnsTheTableAlreadyHas: a field whose
// column the table already has (left by an earlier run started over) gets
// that column's type in the grown mapping, instead of an ALTER that would
// fail; values of another type go to the overflow.
func TestEvolvingDocumentsFitsColumnsTheTableAlreadyHas(t *testing.T) {
	pool, sink := evolveFixture(t, EvolveColumns)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `ALTER TABLE items ADD COLUMN b double precision`); err != nil {
		t.Fatal(err)
	}
	write(t, pool, sink, true, docRec("items/1", "b", record.String("text, not a number")), docRec("items/2", "b", record.Double(2.5)))
	m := storedMapping(t, pool)
	var b *mappings.Column
	for _, c := range m.TableFor("items").Columns {
		if c.Name == "b" {
			b = c
		}
	}
	if b == nil || b.Type != "double precision" {
		t.Fatalf("stored column b = %+v; want the table's type, double precision", b)
	}
	docs := readBack(t, pool, m, "items")
	if v := docs["items/1"]["b"]; v.Type() != record.TypeString || v.StringValue() != "text, not a number" {
		t.Fatalf("items/1 b read back as %v", v)
	}
	if v := docs["items/2"]["b"]; v.Type() != record.TypeDouble || v.DoubleValue() != 2.5 {
		t.Fatalf("items/2 b read back as %v", v)
	}
}

// The tables Prepare created keep the direct load path when the mapping
// grows: the grown sink shares the eligibility of the one it replaces.
func TestEvolvingDocumentsKeepTheDirectPathWhenGrowing(t *testing.T) {
	pool, sink := evolveFixture(t, EvolveColumns)
	write(t, pool, sink, true, docRec("items/1", "a", record.Int(1)))
	if s := sink.current().LoadStats(); s.Direct != 1 || s.Staged != 0 {
		t.Fatalf("first batch into a fresh table: %+v; want it loaded directly", s)
	}
	write(t, pool, sink, true, docRec("items/2", "a", record.Int(2), "b", record.String("new")))
	write(t, pool, sink, true, docRec("items/3", "a", record.Int(3), "b", record.String("again")))
	if s := sink.current().LoadStats(); s.Direct != 3 || s.Staged != 0 {
		t.Fatalf("after the mapping grew: %+v; want every batch loaded directly", s)
	}
	var b string
	if err := pool.QueryRow(context.Background(), `SELECT b FROM items WHERE id = '3'`).Scan(&b); err != nil || b != "again" {
		t.Fatalf("items/3 b = %q, %v", b, err)
	}
}

// TestEvolvingVault: the vault SetVault gives (--vault, another database)
// is the current sink's and every grown sink's, so a growing mapping never
// falls back to writing tokens into the target database.
func TestEvolvingVault(t *testing.T) {
	m := &mappings.Mapping{Version: 1, Schema: "public", Tables: []*mappings.Table{{Collection: "items", Name: "items", IDColumn: "id"}}}
	e, err := NewEvolvingDocuments(m, EvolveConfig{Mode: EvolveColumns, Store: RunMapping(evolveJob)})
	if err != nil {
		t.Fatal(err)
	}
	v := &pii.Vault{}
	e.SetVault(v)
	if e.current().vault != v {
		t.Fatal("the current sink has not the vault SetVault gave")
	}
	d, err := e.build(m)
	if err != nil {
		t.Fatal(err)
	}
	if d.vault != v {
		t.Fatal("a grown sink has not the vault SetVault gave")
	}
}
