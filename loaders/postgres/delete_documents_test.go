package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

func deleteDoc(path string, n int) record.Record {
	t0 := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	return record.Record{Kind: record.KindDocument, Key: path, Cursor: path, CreateTime: t0, UpdateTime: t0.Add(time.Duration(n) * time.Second),
		Fields: map[string]record.Value{"n": record.Int(int64(n)), "s": record.String(path), "extra": record.Map(map[string]record.Value{"k": record.Bool(true)})}}
}

// docsTarget is a database with the tables of the mapping inferred from
// paths, in schema, and a prepared sink.
func docsTarget(t *testing.T, pool *pgxpool.Pool, schema string, soft bool, paths ...string) (*mappings.Mapping, *postgres.Documents) {
	t.Helper()
	return docsTargetWithout(t, pool, schema, soft, "", paths...)
}

// docsTargetWithout is docsTarget with the table of the collection
// pattern without left out of the mapping.
func docsTargetWithout(t *testing.T, pool *pgxpool.Pool, schema string, soft bool, without string, paths ...string) (*mappings.Mapping, *postgres.Documents) {
	t.Helper()
	in := mappings.NewInferrer(mappings.InferOptions{Schema: schema})
	for i, p := range paths {
		in.Observe(p, deleteDoc(p, i).Fields)
	}
	m := in.Mapping()
	m.Tables = slices.DeleteFunc(m.Tables, func(t *mappings.Table) bool { return t.Collection == without })
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := postgres.NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	d.SetSoftDeletes(soft)
	if err := d.Prepare(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return m, d
}

func inTx[T any](t *testing.T, pool *pgxpool.Pool, fn func(tx pgx.Tx) (T, error)) T {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	v, err := fn(tx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return v
}

func writeDocs(t *testing.T, pool *pgxpool.Pool, d *postgres.Documents, paths ...string) {
	t.Helper()
	var recs []record.Record
	for i, p := range paths {
		recs = append(recs, deleteDoc(p, i))
	}
	out := inTx(t, pool, func(tx pgx.Tx) (loaders.Outcome, error) { return d.Write(context.Background(), tx, recs) })
	if len(out.Rejects) > 0 {
		t.Fatalf("rejects: %v", out.Rejects)
	}
}

func deleteDocs(t *testing.T, pool *pgxpool.Pool, d *postgres.Documents, soft bool, keys ...string) loaders.Outcome {
	t.Helper()
	return inTx(t, pool, func(tx pgx.Tx) (loaders.Outcome, error) {
		return d.Delete(context.Background(), tx, keys, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), soft)
	})
}

// rowsOf returns the rows of every table of m: per document path, its row
// as JSON without the key columns, "placeholder" for an exact placeholder.
func rowsOf(t *testing.T, pool *pgxpool.Pool, m *mappings.Mapping) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range m.Tables {
		drop := ""
		for _, k := range tb.KeyColumns() {
			drop += " - " + "'" + k + "'"
		}
		rows, err := pool.Query(context.Background(), fmt.Sprintf(`SELECT %s, (to_jsonb(t)%s)::text FROM %s t`, docPathExpr(tb), drop, pgx.Identifier{m.Schema, tb.Name}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		var path, row string
		if _, err := pgx.ForEachRow(rows, []any{&path, &row}, func() error { out[path] = row; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestDocumentsDeleteLeavesPlaceholdersForChildrenAndRemovesThemAfter(t *testing.T) {
	pool := testenv.NewPool(t)
	paths := []string{"a/x", "a/x/b/y", "a/x/b/y/c/z", "a/w", "a/q/b/r"}
	m, d := docsTarget(t, pool, "app", false, paths...)
	writeDocs(t, pool, d, paths...)
	rows := rowsOf(t, pool, m)
	placeholder := rows["a/q"] // the loader's own placeholder of a parent without a document
	if !strings.Contains(placeholder, `"_missing": true`) {
		t.Fatalf("a/q is no placeholder: %s", placeholder)
	}

	// A parent with children becomes exactly the loader's placeholder; a
	// leaf goes; a path without a table, or no document path, is rejected
	// and the rest of the batch applies.
	out := deleteDocs(t, pool, d, false, "a/x", "nope/1", "a/w", "a", "a/x/b/y")
	if out.Tables[0] != "a" || out.Tables[2] != "a" || out.Tables[4] != m.TableFor("a/{}/b").Name {
		t.Errorf("tables %q", out.Tables)
	}
	if len(out.Rejects) != 2 || out.Rejects[1] == "" || out.Rejects[3] == "" {
		t.Fatalf("rejects %v; want keys 1 (no table) and 3 (not a document path), with reasons", out.Rejects)
	}
	if !strings.Contains(out.Rejects[1], "nope") {
		t.Errorf("reject reason %q does not name the collection", out.Rejects[1])
	}
	rows = rowsOf(t, pool, m)
	for _, p := range []string{"a/x", "a/x/b/y"} {
		if rows[p] != placeholder {
			t.Errorf("deleted with children, %s is\n %s\nnot the loader's placeholder\n %s", p, rows[p], placeholder)
		}
	}
	if _, ok := rows["a/w"]; ok {
		t.Errorf("a/w, deleted without children, still has a row")
	}
	if !strings.Contains(rows["a/x/b/y/c/z"], `"n": 2`) {
		t.Errorf("the child a/x/b/y/c/z changed: %s", rows["a/x/b/y/c/z"])
	}
	if out.Changed["a"] != 2 || out.Changed[m.TableFor("a/{}/b").Name] != 1 {
		t.Errorf("changed %v; want a: 2 (one emptied, one deleted), b: 1", out.Changed)
	}

	// The last child goes: the placeholders above it, with nothing else
	// under them, go too, up to the root; a/q's stays (a/q/b/r is there).
	out = deleteDocs(t, pool, d, false, "a/x/b/y/c/z")
	rows = rowsOf(t, pool, m)
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range rows {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"a/q", "a/q/b/r"}; !slices.Equal(got, want) {
		t.Fatalf("rows left %q; want %q", got, want)
	}
	if n := out.Changed["a"] + out.Changed[m.TableFor("a/{}/b").Name] + out.Changed[m.TableFor("a/{}/b/{}/c").Name]; n != 3 {
		t.Errorf("changed %v; want 3 rows (the leaf and two placeholders)", out.Changed)
	}
	// Deleting a placeholder's key (no document there) changes nothing.
	if out := deleteDocs(t, pool, d, false, "a/q", "a/x"); len(out.Changed) != 0 {
		t.Errorf("deleting keys of placeholders and of nothing: changed %v", out.Changed)
	}
	if rows := rowsOf(t, pool, m); rows["a/q"] != placeholder {
		t.Errorf("a/q: %s", rows["a/q"])
	}
	// Writing the deleted parent again fills its placeholder.
	writeDocs(t, pool, d, "a/q")
	if rows := rowsOf(t, pool, m); strings.Contains(rows["a/q"], `"_missing": true`) {
		t.Errorf("a/q written again is still a placeholder: %s", rows["a/q"])
	}
}

// A subcollection whose parent collection has no table: the placeholder
// of the grandparent is kept while the grandchild is there.
func TestDocumentsDeleteLooksAtEveryDescendantTable(t *testing.T) {
	pool := testenv.NewPool(t)
	paths := []string{"a/x", "a/x/b/y/c/z"}
	m, d := docsTargetWithout(t, pool, "app", false, "a/{}/b", paths...)
	if m.TableFor("a/{}/b") != nil {
		t.Fatal("the mapping has a table for a/{}/b; the test needs none")
	}
	writeDocs(t, pool, d, paths...)
	deleteDocs(t, pool, d, false, "a/x")
	rows := rowsOf(t, pool, m)
	if !strings.Contains(rows["a/x"], `"_missing": true`) {
		t.Fatalf("a/x, with a document two levels under it, is %q; want a placeholder", rows["a/x"])
	}
	deleteDocs(t, pool, d, false, "a/x/b/y/c/z")
	if rows := rowsOf(t, pool, m); len(rows) != 0 {
		t.Fatalf("rows left: %v", rows)
	}
}

// Soft deletes: the tables get the column (plan lists it, idempotently),
// marked rows keep their fields, the readers verify and plan use leave
// them out, and a rewrite brings them back.
func TestDocumentsSoftDeleteColumnAndReaders(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	paths := []string{"a/x", "a/x/b/y", "a/w"}
	m, d := docsTarget(t, pool, "app", false, paths...)
	writeDocs(t, pool, d, paths...)

	stmts, err := postgres.SchemaChangesWith(ctx, pool, m, postgres.SchemaOptions{SoftDeletes: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 2 {
		t.Fatalf("plan with soft deletes on existing tables: %d statements %v; want one ADD COLUMN per table", len(stmts), stmts)
	}
	for _, s := range stmts {
		if !strings.Contains(s.SQL, "ADD COLUMN IF NOT EXISTS \"_deleted_at\" timestamptz") || !strings.Contains(s.What, "_deleted_at") {
			t.Errorf("statement %+v", s)
		}
	}
	if stmts, _ := postgres.SchemaChanges(ctx, pool, m); len(stmts) != 0 {
		t.Errorf("without soft deletes, plan lists %v", stmts)
	}
	// Writing through a sink without soft deletes keeps working.
	_, soft := docsTarget(t, pool, "app", true, paths...)
	if stmts, _ := postgres.SchemaChangesWith(ctx, pool, m, postgres.SchemaOptions{SoftDeletes: true}); len(stmts) != 0 {
		t.Errorf("prepared with soft deletes, plan still lists %v", stmts)
	}
	if _, err := postgres.NewDocuments(m); err != nil {
		t.Fatal(err)
	}

	before := rowsOf(t, pool, m)
	out := deleteDocs(t, pool, soft, true, "a/x", "a/w")
	if out.Changed["a"] != 2 {
		t.Errorf("changed %v", out.Changed)
	}
	rows := rowsOf(t, pool, m)
	if !strings.Contains(rows["a/x"], `"_deleted_at": "2024-01-01T00:00:00+00:00"`) || !strings.Contains(rows["a/x"], `"n": 0`) {
		t.Errorf("soft-deleted a/x: %s; want its fields and the deletion time", rows["a/x"])
	}

	tr, err := transformers.NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, tb := range m.Tables {
		err := postgres.ReadDocuments(ctx, pool, m, tr, tb, nil, func(r postgres.DocumentRow) error { read = append(read, r.Path); return nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(read, []string{"a/x/b/y"}) {
		t.Errorf("ReadDocuments read %q; want only the live a/x/b/y", read)
	}
	read = nil
	inTx(t, pool, func(tx pgx.Tx) (int, error) {
		for i, tb := range m.Tables {
			c, err := postgres.OpenDocumentCursor(ctx, tx, fmt.Sprintf("c%d", i), m, tr, tb, nil)
			if err != nil {
				return 0, err
			}
			for {
				r, ok, err := c.Next(ctx)
				if err != nil || !ok {
					if err != nil {
						return 0, err
					}
					break
				}
				read = append(read, r.Path)
			}
		}
		return 0, nil
	})
	if !slices.Equal(read, []string{"a/x/b/y"}) {
		t.Errorf("the document cursor read %q; want only the live a/x/b/y", read)
	}

	// A sink without soft deletes, over the marked tables, clears marks
	// it writes over.
	_, plain := docsTarget(t, pool, "app", false, paths...)
	writeDocs(t, pool, plain, "a/x")
	rows = rowsOf(t, pool, m)
	if rows["a/x"] != before["a/x"] {
		t.Errorf("written again, a/x is %s", rows["a/x"])
	}
	if !strings.Contains(rows["a/w"], `"_deleted_at": "2024`) {
		t.Errorf("a/w, not written again, lost its mark: %s", rows["a/w"])
	}
}

// A batch writing a child while a Delete holds (locked, not yet removed)
// the placeholder above it: the batch waits, then gives the child a new
// placeholder; the child is never refused for its parent row vanishing.
// (Delete takes its locks before it removes anything; the interleaving
// is forced here with the statements it runs.)
func TestDocumentsWriteUnderAPlaceholderADeleteRemoves(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	m, d := docsTarget(t, pool, "app", false, "a/x", "a/x/b/y")
	writeDocs(t, pool, d, "a/x/b/y") // a/x is a placeholder
	a, b := pgx.Identifier{"app", m.TableFor("a").Name}.Sanitize(), pgx.Identifier{"app", m.TableFor("a/{}/b").Name}.Sanitize()

	del, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer del.Rollback(ctx)
	if _, err := del.Exec(ctx, `SELECT 1 FROM `+a+` WHERE _missing FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out loaders.Outcome
		err error
	}
	pid := make(chan int, 1)
	done := make(chan result, 1)
	go func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer tx.Rollback(ctx)
		var p int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&p); err != nil {
			done <- result{err: err}
			return
		}
		pid <- p
		out, err := d.Write(ctx, tx, []record.Record{deleteDoc("a/x/b/z", 9)})
		if err == nil {
			err = tx.Commit(ctx)
		}
		done <- result{out, err}
	}()
	p := <-pid
	for blocked := false; !blocked; {
		if err := pool.QueryRow(ctx, `SELECT cardinality(pg_blocking_pids($1)) > 0`, p).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("the batch finished while the placeholder above it was locked for a delete: %+v %v", r.out, r.err)
		default:
		}
	}
	if _, err := del.Exec(ctx, `DELETE FROM `+b+` WHERE id = 'y'`); err != nil {
		t.Fatal(err)
	}
	if _, err := del.Exec(ctx, `DELETE FROM `+a+` WHERE id = 'x' AND _missing`); err != nil {
		t.Fatal(err)
	}
	if err := del.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.out.Rejects) > 0 {
		t.Fatalf("the batch under the deleted placeholder: %v, rejects %v", r.err, r.out.Rejects)
	}
	rows := rowsOf(t, pool, m)
	if !strings.Contains(rows["a/x"], `"_missing": true`) || rows["a/x/b/z"] == "" {
		t.Fatalf("rows %v; want a/x/b/z under a new placeholder a/x", rows)
	}
}
