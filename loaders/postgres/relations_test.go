package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/mappings/mappingstest"
)

// parseDocuments parses a mapping file and makes its document writer.
func parseDocuments(t *testing.T, yaml, name string) (*mappings.Mapping, *Documents) {
	t.Helper()
	m, err := mappings.Parse([]byte(yaml), name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

func writeDocs(t *testing.T, ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, d *Documents, recs ...record.Record) {
	t.Helper()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	out, err := d.Write(ctx, tx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rejects) > 0 {
		t.Fatalf("rejects: %v", out.Rejects)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func post(id, ref string) record.Record {
	return record.Record{Kind: record.KindDocument, Key: "posts/" + id, Fields: map[string]record.Value{"author": record.Reference(ref), "title": record.String(id)}}
}

func user(id string) record.Record {
	return record.Record{Kind: record.KindDocument, Key: "users/" + id, Fields: map[string]record.Value{"name": record.String(id)}}
}

// TestReferencesBecomeForeignKeys: reference key columns are linked per
// batch and again at the run's end; dangling and cross-collection
// references keep their path with NULL keys and are recorded; the foreign
// key is built at the end and holds; verify's check sees a tampered key.
func TestReferencesBecomeForeignKeys(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	m, d := parseDocuments(t, mappingstest.References, "rel.yaml")
	stmts, err := SchemaChanges(ctx, pool, m)
	if err != nil {
		t.Fatal(err)
	}
	var sawFK bool
	for _, s := range stmts {
		sawFK = sawFK || strings.Contains(s.SQL, "FOREIGN KEY (\"author_id\") REFERENCES \"public\".\"users\" (\"id\") ON DELETE SET NULL")
	}
	if !sawFK {
		t.Fatalf("plan's DDL has no foreign key for posts.author: %v", stmts)
	}
	if err := d.PrepareToFinish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	writeDocs(t, ctx, pool, d, user("u1"), post("p1", "users/u1"), post("p2", "users/ghost"), post("p3", "groups/g1"), post("p4", "users/u2"))
	keys := func() map[string]*string {
		out := map[string]*string{}
		rows, err := pool.Query(ctx, `SELECT id, author_id FROM posts`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var a *string
			if err := rows.Scan(&id, &a); err != nil {
				t.Fatal(err)
			}
			out[id] = a
		}
		return out
	}
	str := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	if k := keys(); str(k["p1"]) != "u1" || k["p4"] != nil {
		t.Fatalf("after the first batch: p1 → %s (want u1), p4 → %s (want NULL: users/u2 not loaded yet)", str(k["p1"]), str(k["p4"]))
	}
	writeDocs(t, ctx, pool, d, user("u2"))
	if err := d.Finish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	k := keys()
	want := map[string]string{"p1": "u1", "p2": "NULL", "p3": "NULL", "p4": "u2"}
	for id, w := range want {
		if str(k[id]) != w {
			t.Errorf("%s.author_id = %s, want %s", id, str(k[id]), w)
		}
	}
	var paths int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM posts WHERE author IN ('users/ghost', 'groups/g1')`).Scan(&paths); err != nil || paths != 2 {
		t.Fatalf("dangling paths kept: %d, %v; want 2", paths, err)
	}
	if ok, err := constraintExists(ctx, pool, "public", "posts", "posts_author_ref_fkey"); err != nil || !ok {
		t.Fatalf("foreign key built: %v, %v", ok, err)
	}
	dl, err := DanglingReferences(ctx, pool, m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, x := range dl {
		got[strings.Join(x.Key, "/")+" "+x.Path] = x.Reason
	}
	if len(got) != 2 || got["p2 users/ghost"] != DanglingAbsent || got["p3 groups/g1"] != DanglingOther {
		t.Fatalf("dangling references recorded: %v", dl)
	}
	warns, err := d.Warnings(ctx, pool)
	if err != nil || len(warns) != 1 || !strings.HasPrefix(warns[0], "2 dangling references in posts.author") {
		t.Fatalf("warnings: %q, %v", warns, err)
	}
	if mm, err := ReferenceMismatches(ctx, pool, m); err != nil || len(mm) != 0 {
		t.Fatalf("mismatches after the load: %v, %v", mm, err)
	}
	// The foreign key holds: a key with no row is refused.
	if _, err := pool.Exec(ctx, `UPDATE posts SET author_id = 'nobody' WHERE id = 'p2'`); err == nil {
		t.Fatal("the foreign key let a key without a row in")
	}
	// A key that disagrees with its path is what verify reports.
	if _, err := pool.Exec(ctx, `UPDATE posts SET author_id = 'u2' WHERE id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	if mm, err := ReferenceMismatches(ctx, pool, m); err != nil || mm["posts.author"] != 1 {
		t.Fatalf("mismatches after tampering: %v, %v", mm, err)
	}
	// Deleting a referenced row makes its references dangle, not fail.
	if _, err := pool.Exec(ctx, `DELETE FROM users WHERE id = 'u2'`); err != nil {
		t.Fatal(err)
	}
	if k := keys(); k["p1"] != nil || k["p4"] != nil {
		t.Fatalf("after deleting u2: p1 → %s, p4 → %s; want NULL", str(k["p1"]), str(k["p4"]))
	}
	// A second finish is idempotent and counts again.
	counts, err := FinishReferences(ctx, pool, m)
	if err != nil || counts["posts.author"] != 3 {
		t.Fatalf("second finish: %v, %v; want 3 dangling (p2, p3, p4)", counts, err)
	}
}

// TestReferencesWithPlainPrepare: without a finish, the foreign key exists
// from the start and dangling references still load.
func TestReferencesWithPlainPrepare(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	_, d := parseDocuments(t, mappingstest.References, "rel.yaml")
	if err := d.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if ok, err := constraintExists(ctx, pool, "public", "posts", "posts_author_ref_fkey"); err != nil || !ok {
		t.Fatalf("foreign key after Prepare: %v, %v", ok, err)
	}
	writeDocs(t, ctx, pool, d, post("p1", "users/u1"), user("u1"), post("p2", "users/ghost"))
	var a1, a2 *string
	if err := pool.QueryRow(ctx, `SELECT (SELECT author_id FROM posts WHERE id = 'p1'), (SELECT author_id FROM posts WHERE id = 'p2')`).Scan(&a1, &a2); err != nil {
		t.Fatal(err)
	}
	if a1 == nil || *a1 != "u1" || a2 != nil {
		t.Fatalf("p1 → %v (want u1, same batch), p2 → %v (want NULL)", a1, a2)
	}
}

// TestChildTables: an array of maps becomes one row per element; writing
// the document again replaces its rows; reading back rebuilds the array
// exactly; an empty array or a mixed one stays in the parent's overflow.
func TestChildTables(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	m, d := parseDocuments(t, mappingstest.Children, "child.yaml")
	if err := d.PrepareToFinish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	item := func(sku string, qty int64) record.Value {
		return record.Map(map[string]record.Value{"sku": record.String(sku), "qty": record.Int(qty),
			"at": record.Timestamp(time.Date(2024, 5, 1, 10, 0, 0, 123000, time.UTC)), "extra": record.Map(map[string]record.Value{"x": record.Double(1.5)}), "other": record.Bool(true)})
	}
	doc := func(id string, items record.Value) record.Record {
		f := map[string]record.Value{"total": record.Int(1)}
		if items.Type() != record.TypeNull {
			f["items"] = items
		}
		return record.Record{Kind: record.KindDocument, Key: "orders/" + id, Fields: f}
	}
	docs := []record.Record{
		doc("o1", record.Array(item("a", 1), item("b", 2), item("c", 3))),
		doc("o2", record.Array()),
		doc("o3", record.Array(item("a", 1), record.String("not a map"))),
		doc("o4", record.Null()),
	}
	writeDocs(t, ctx, pool, d, docs...)
	// Written again (a resumed batch, a sync update) with fewer elements.
	docs[0] = doc("o1", record.Array(item("z", 9), record.Map(nil)))
	writeDocs(t, ctx, pool, d, docs[0])
	writeDocs(t, ctx, pool, d, docs[0])
	if err := d.Finish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders_items`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("child rows: %d, %v; want 2 (o1's two elements)", n, err)
	}
	var sku string
	var pos int64
	var over *string
	if err := pool.QueryRow(ctx, `SELECT _position, sku, _overflow::text FROM orders_items WHERE id = 'o1' AND _position = 0`).Scan(&pos, &sku, &over); err != nil || sku != "z" || over == nil || *over != `{"other": true}` {
		t.Fatalf("o1's first element: %d %q %v, %v", pos, sku, over, err)
	}
	got := map[string]record.Record{}
	if err := ReadDocuments(ctx, pool, m, d.tr, m.TableFor("orders"), nil, func(r DocumentRow) error {
		if r.Problem != "" {
			t.Fatalf("%s: %s", r.Path, r.Problem)
		}
		got[r.Path] = record.Record{Fields: r.Fields}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range docs {
		if !record.Equal(record.Map(got[want.Key].Fields), record.Map(want.Fields)) {
			t.Errorf("%s read back as %v, want %v", want.Key, got[want.Key].Fields, want.Fields)
		}
	}
	// Deleting the parent row deletes its child rows.
	if _, err := pool.Exec(ctx, `DELETE FROM orders WHERE id = 'o1'`); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders_items`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("child rows after deleting the parent: %d, %v", n, err)
	}
}

// TestDeleteIntoPlaceholderEmptiesRelations: a hard delete that leaves a
// placeholder (the document has a subcollection) removes its child rows
// and its reference keys, as it empties its columns.
func TestDeleteIntoPlaceholderEmptiesRelations(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	m, d := parseDocuments(t, `version: 1
schema: public
tables:
  - collection: orders
    table: orders
    id_column: id
    columns:
      - {field: buyer, column: buyer, type: text, source: reference, references: users}
    children:
      - field: items
        table: orders_items
        columns:
          - {field: sku, column: sku, type: text}
  - collection: orders/{}/notes
    table: orders_notes
    id_column: id
    parent_columns: [orders_id]
  - collection: users
    table: users
    id_column: id
`, "m.yaml")
	if err := d.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	order := func(id string) record.Record {
		return record.Record{Kind: record.KindDocument, Key: "orders/" + id, Fields: map[string]record.Value{
			"buyer": record.Reference("users/u1"), "items": record.Array(record.Map(map[string]record.Value{"sku": record.String("a")}))}}
	}
	writeDocs(t, ctx, pool, d, user("u1"), order("o1"), order("o2"),
		record.Record{Kind: record.KindDocument, Key: "orders/o1/notes/n1", Fields: map[string]record.Value{}})
	var items, linked int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders_items), (SELECT count(buyer_id) FROM orders)`).Scan(&items, &linked); err != nil || items != 2 || linked != 2 {
		t.Fatalf("before: %d items, %d linked, %v", items, linked, err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Delete(ctx, tx, []string{"orders/o1", "orders/o2"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var missing bool
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders_items), (SELECT count(buyer_id) FROM orders), (SELECT _missing FROM orders WHERE id = 'o1')`).Scan(&items, &linked, &missing); err != nil {
		t.Fatal(err)
	}
	if items != 0 || linked != 0 || !missing {
		t.Fatalf("after deleting o1 (placeholder) and o2: %d items, %d linked, o1 missing %v; want 0, 0, true", items, linked, missing)
	}
	if mm, err := ReferenceMismatches(ctx, pool, m); err != nil || len(mm) != 0 {
		t.Fatalf("mismatches: %v, %v", mm, err)
	}
}

// TestChildTablesTwoDepths: the elements' own arrays of maps go to a
// second child table keyed by the element's position; writing again
// replaces both depths, and reading back rebuilds the nested arrays.
func TestChildTablesTwoDepths(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	m, d := parseDocuments(t, mappingstest.ChildrenTwoDepths, "m.yaml")
	if err := d.PrepareToFinish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	part := func(p int64) record.Value { return record.Map(map[string]record.Value{"p": record.Int(p)}) }
	item := func(sku string, parts ...record.Value) record.Value {
		f := map[string]record.Value{"sku": record.String(sku)}
		if parts != nil {
			f["parts"] = record.Array(parts...)
		}
		return record.Map(f)
	}
	doc := func(id string, items ...record.Value) record.Record {
		return record.Record{Kind: record.KindDocument, Key: "orders/" + id, Fields: map[string]record.Value{"items": record.Array(items...)}}
	}
	docs := []record.Record{
		doc("o1", item("a", part(1), part(2)), item("b"), item("c", part(3))),
		doc("o2", item("x", record.String("not a map"))),
	}
	writeDocs(t, ctx, pool, d, docs...)
	docs[0] = doc("o1", item("c", part(3)), item("a", part(1), part(2), part(4)))
	writeDocs(t, ctx, pool, d, docs[0])
	if err := d.Finish(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var items, parts int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders_items), (SELECT count(*) FROM orders_items_parts)`).Scan(&items, &parts); err != nil || items != 3 || parts != 4 {
		t.Fatalf("rows: %d items, %d parts, %v; want 3 (o1's 2, o2's 1) and 4", items, parts, err)
	}
	var pp, pos, p int64
	if err := pool.QueryRow(ctx, `SELECT _parent_position, _position, p FROM orders_items_parts WHERE id = 'o1' ORDER BY 1, 2 LIMIT 1 OFFSET 3`).Scan(&pp, &pos, &p); err != nil || pp != 1 || pos != 2 || p != 4 {
		t.Fatalf("o1's last part: %d %d %d, %v", pp, pos, p, err)
	}
	got := map[string]map[string]record.Value{}
	if err := ReadDocuments(ctx, pool, m, d.tr, m.TableFor("orders"), nil, func(r DocumentRow) error {
		if r.Problem != "" {
			t.Fatalf("%s: %s", r.Path, r.Problem)
		}
		got[r.Path] = r.Fields
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range docs {
		if !record.Equal(record.Map(got[want.Key]), record.Map(want.Fields)) {
			t.Errorf("%s read back as %v, want %v", want.Key, got[want.Key], want.Fields)
		}
	}
	if _, err := pool.Exec(ctx, `DELETE FROM orders WHERE id = 'o1'`); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders_items_parts`).Scan(&parts); err != nil || parts != 0 {
		t.Fatalf("parts after deleting the order: %d, %v", parts, err)
	}
}
