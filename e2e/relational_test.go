package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// seedReferences writes users, a group, and posts whose author references
// a user (valid), a user that does not exist (dangling), and a group
// (another collection than the mapping declares).
func (f *docsFixture) seedReferences() {
	f.t.Helper()
	ctx := context.Background()
	set := func(path string, fields map[string]any) {
		if _, err := f.client.Doc(path).Set(ctx, fields); err != nil {
			f.t.Fatal(err)
		}
	}
	set("users/u1", map[string]any{"name": "Ada"})
	set("users/u2", map[string]any{"name": "Bob"})
	set("groups/g1", map[string]any{"name": "Admins"})
	set("posts/p1", map[string]any{"title": "valid", "author": f.client.Doc("users/u1")})
	set("posts/p2", map[string]any{"title": "dangling", "author": f.client.Doc("users/ghost")})
	set("posts/p3", map[string]any{"title": "cross", "author": f.client.Doc("groups/g1")})
	set("posts/p4", map[string]any{"title": "valid too", "author": f.client.Doc("users/u2")})
}

// declareReference makes the inferred mapping's posts.author a foreign key
// to users.
func declareReference(t *testing.T, path string) {
	t.Helper()
	m := loadMapping(t, path)
	posts := m.TableFor("posts")
	if posts == nil {
		t.Fatal("no posts table inferred")
	}
	for _, c := range posts.Columns {
		if c.Field == "author" {
			c.References = "users"
		}
	}
	saveMapping(t, path, m)
	if got := loadMapping(t, path).TableFor("posts"); got.Columns[0].References != "users" && got.Columns[1].References != "users" {
		t.Fatal("references: did not survive the round trip")
	}
}

// TestReferencesBecomeForeignKeysEndToEnd: plan shows the foreign key and
// the dangling references before the run; migrate links valid references,
// keeps dangling and cross-collection ones as text with NULL keys, counts
// them in the summary and builds a foreign key that holds; verify passes,
// and fails once a key column is tampered with.
func TestReferencesBecomeForeignKeysEndToEnd(t *testing.T) {
	f := newDocsFixture(t)
	f.seedReferences()
	mapping := filepath.Join(f.dir, "mapping.yaml")
	res := f.run(0, "infer", "--out", mapping)
	if strings.Contains(res.Stderr, "every reference in author") {
		t.Fatalf("infer offers a foreign key though author points into users and groups:\n%s", res.Stderr)
	}
	declareReference(t, mapping)

	res = f.run(0, "plan", "--only", "documents", "--mapping", mapping, "--format", "json")
	var plan struct {
		Kinds []struct {
			DDL        []diff.DDL            `json:"ddl"`
			References []diff.ReferenceCheck `json:"references"`
		} `json:"kinds"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &plan); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, res.Stdout)
	}
	var fk bool
	for _, s := range plan.Kinds[0].DDL {
		fk = fk || strings.Contains(s.SQL, `FOREIGN KEY ("author_id") REFERENCES "public"."users" ("id")`)
	}
	if !fk {
		t.Fatalf("plan shows no foreign key for posts.author:\n%s", res.Stdout)
	}
	if refs := plan.Kinds[0].References; len(refs) != 1 || refs[0].Dangling != 2 {
		t.Fatalf("plan's references: %+v; want posts.author with 2 dangling (p2, p3)", refs)
	}

	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--summary", sum)
	s := readSummary[struct {
		Warnings []string `json:"warnings"`
	}](t, sum)
	if len(s.Warnings) != 1 || !strings.HasPrefix(s.Warnings[0], "documents: 2 dangling references in posts.author") ||
		!strings.Contains(s.Warnings[0], "users/ghost") || !strings.Contains(s.Warnings[0], "groups/g1") {
		t.Fatalf("summary warnings: %q", s.Warnings)
	}
	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `SELECT id, author, author_id FROM posts ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		var author, key *string
		if err := rows.Scan(&id, &author, &key); err != nil {
			t.Fatal(err)
		}
		k := "NULL"
		if key != nil {
			k = *key
		}
		got = append(got, id+" "+*author+" "+k)
	}
	want := "p1 users/u1 u1|p2 users/ghost NULL|p3 groups/g1 NULL|p4 users/u2 u2"
	if strings.Join(got, "|") != want {
		t.Fatalf("posts: %q, want %q", strings.Join(got, "|"), want)
	}
	var fks int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.posts'::regclass AND contype = 'f'
		AND confrelid = 'public.users'::regclass`).Scan(&fks); err != nil || fks != 1 {
		t.Fatalf("foreign keys from posts to users: %d, %v", fks, err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE posts SET author_id = 'nobody' WHERE id = 'p2'`); err == nil {
		t.Fatal("the foreign key does not hold")
	}

	res = f.run(0, "verify", "--only", "documents")
	if !strings.Contains(res.Stdout, "reference posts.author → users (foreign key author_id): 2 dangling") {
		t.Fatalf("verify does not report the reference:\n%s", res.Stdout)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE posts SET author_id = 'u2' WHERE id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, "verify", "--only", "documents")
	if !strings.Contains(res.Stdout, "1 rows' key columns differ from their path") {
		t.Fatalf("verify misses a tampered key column:\n%s", res.Stdout)
	}
}

// TestReferencesSurviveKillAndResume kills migrate (SIGKILL) several times
// mid-run over posts whose authors are users (some absent): the resumed
// run links every reference, records exactly the dangling ones and builds
// a foreign key that holds; verify passes.
func TestReferencesSurviveKillAndResume(t *testing.T) {
	f := newDocsFixture(t)
	const users, posts = 300, 3000
	var docs []demoapp.Doc
	for i := 0; i < users; i++ {
		docs = append(docs, demoapp.Doc{Path: fmt.Sprintf("users/u%04d", i), Fields: map[string]any{"name": fmt.Sprint("user ", i)}})
	}
	want := map[string]string{} // post → author key ("" when dangling)
	dangling := 0
	for i := 0; i < posts; i++ {
		author := fmt.Sprintf("u%04d", (i*7)%(users+users/10)) // every 11th author is absent
		id := fmt.Sprintf("p%05d", i)
		docs = append(docs, demoapp.Doc{Path: "posts/" + id, Fields: map[string]any{"n": i, "author": f.client.Doc("users/" + author)}})
		if (i*7)%(users+users/10) < users {
			want[id] = author
		} else {
			want[id] = ""
			dangling++
		}
	}
	if dangling == 0 {
		t.Fatal("the seed has no dangling reference")
	}
	f.seed(docs)
	mapping := filepath.Join(f.dir, "mapping.yaml")
	res := f.run(0, "infer", "--out", mapping)
	if !strings.Contains(res.Stderr, "table posts: every reference in author points into users; add `references: users`") {
		t.Fatalf("infer does not offer the foreign key:\n%s", res.Stderr)
	}
	if text, err := os.ReadFile(mapping); err != nil || !strings.Contains(string(text), "source: reference # every reference seen points into users") {
		t.Fatalf("the inferred mapping does not offer the foreign key: %v\n%s", err, text)
	}
	declareReference(t, mapping)
	args := []string{"migrate", "--only", "documents", "--mapping", mapping, "--workers", "3", "--batch-size", "60"}

	committed := testenv.Committed(f.pool)
	midRun := 0
	for attempt := 0; attempt < 3; attempt++ {
		if clitest.KillAt(t, f.env(), args, committed()+1+int64(len(docs))/8, committed, 2*time.Minute) {
			midRun++
		}
	}
	if midRun < 2 {
		t.Fatalf("only %d of 3 attempts were killed mid-run", midRun)
	}
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, append(args, "--summary", sum)...)
	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `SELECT id, coalesce(author_id, '') FROM posts`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		got[id] = key
	}
	if len(got) != posts {
		t.Fatalf("%d posts in the target, want %d", len(got), posts)
	}
	for id, w := range want {
		if got[id] != w {
			t.Fatalf("post %s: author_id %q, want %q", id, got[id], w)
		}
	}
	var recorded, fks int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM baasmigrate.dangling_references WHERE table_name = 'posts'`).Scan(&recorded); err != nil || recorded != dangling {
		t.Fatalf("dangling references recorded: %d, %v; want %d", recorded, err, dangling)
	}
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.posts'::regclass AND contype = 'f'`).Scan(&fks); err != nil || fks != 1 {
		t.Fatalf("foreign keys on posts: %d, %v", fks, err)
	}
	f.run(0, "verify", "--only", "documents")
}

// TestChildTablesEndToEnd: orders whose items (arrays of maps) go to a
// child table; migrate is killed (SIGKILL) several times and resumed; the
// child table then holds exactly one row per element (no duplicates),
// plan shows it, and verify, which rebuilds the arrays from the child
// rows, passes — and fails once a child row is tampered with.
func TestChildTablesEndToEnd(t *testing.T) {
	f := newDocsFixture(t)
	const orders = 2500
	var docs []demoapp.Doc
	elements, parts := 0, 0
	for i := 0; i < orders; i++ {
		var items []any
		for j := 0; j < i%4; j++ { // 0 to 3 elements; 0 is an empty array
			item := map[string]any{"sku": fmt.Sprintf("s%d", j), "qty": j + 1, "note": "x"}
			if j == 1 {
				item["parts"] = []any{map[string]any{"p": i}, map[string]any{"p": -i}}
				parts += 2
			}
			items = append(items, item)
			elements++
		}
		if items == nil {
			items = []any{}
		}
		docs = append(docs, demoapp.Doc{Path: fmt.Sprintf("orders/o%05d", i), Fields: map[string]any{"n": i, "items": items}})
	}
	f.seed(docs)
	mapping := f.infer("--child-tables")
	m := loadMapping(t, mapping)
	ot := m.TableFor("orders")
	if len(ot.Children) != 1 || ot.Children[0].Name != "orders_items" || len(ot.Children[0].Columns) != 4 {
		t.Fatalf("infer --child-tables: children %+v", ot.Children)
	}
	types := map[string]string{}
	for _, c := range ot.Children[0].Columns {
		types[c.Field] = c.Type
	}
	if types["sku"] != "text" || types["qty"] != "bigint" || types["note"] != "text" || types["parts"] != "jsonb" {
		t.Fatalf("element columns inferred: %v", types)
	}
	// Second depth, by hand: the elements' parts go to a child table too.
	var elemCols []*mappings.Column
	for _, c := range ot.Children[0].Columns {
		if c.Field != "parts" {
			elemCols = append(elemCols, c)
		}
	}
	ot.Children[0].Columns = elemCols
	ot.Children[0].Children = []*mappings.ChildTable{{Field: "parts", Name: "orders_items_parts", Columns: []*mappings.Column{{Field: "p", Name: "p", Type: "bigint"}}}}
	for _, c := range ot.Columns {
		if c.Field == "items" {
			t.Fatal("items is both a column and a child table")
		}
	}
	// The element field "note" is left to the child's overflow.
	ot.Children[0].Columns = ot.Children[0].Columns[1:]
	if ot.Children[0].Columns[0].Field != "qty" {
		t.Fatalf("columns: %+v", ot.Children[0].Columns)
	}
	saveMapping(t, mapping, m)

	res := f.run(0, "plan", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout, `create child table "public"."orders_items" for the array items of orders`) {
		t.Fatalf("plan does not show the child table:\n%s", res.Stdout)
	}
	args := []string{"migrate", "--only", "documents", "--mapping", mapping, "--workers", "3", "--batch-size", "50"}
	committed := testenv.Committed(f.pool)
	midRun := 0
	for attempt := 0; attempt < 3; attempt++ {
		if clitest.KillAt(t, f.env(), args, committed()+1+int64(len(docs))/6, committed, 2*time.Minute) {
			midRun++
		}
	}
	if midRun < 2 {
		t.Fatalf("only %d of 3 attempts were killed mid-run", midRun)
	}
	f.run(0, args...)
	// Run again from the start over the same target: every batch writes
	// its orders again.
	f.run(0, append(args, "--restart")...)
	ctx := context.Background()
	var rows, distinct int
	if err := f.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (id, sku)) FROM orders_items`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != elements || distinct != elements {
		t.Fatalf("child rows: %d (%d distinct), want %d", rows, distinct, elements)
	}
	var partRows int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM orders_items_parts`).Scan(&partRows); err != nil || partRows != parts {
		t.Fatalf("second-depth rows: %d, %v; want %d", partRows, err, parts)
	}
	var fks int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.orders_items'::regclass AND contype = 'f'
		AND confrelid = 'public.orders'::regclass`).Scan(&fks); err != nil || fks != 1 {
		t.Fatalf("foreign keys from orders_items to orders: %d, %v", fks, err)
	}
	f.run(0, "verify", "--only", "documents")
	if _, err := f.pool.Exec(ctx, `UPDATE orders_items SET qty = 99 WHERE id = 'o00003' AND _position = 1`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, "verify", "--only", "documents", "--samples", "5")
	if !strings.Contains(res.Stdout, "o00003") {
		t.Fatalf("verify does not name the tampered order:\n%s", res.Stdout)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE orders_items SET qty = 2 WHERE id = 'o00003' AND _position = 1`); err != nil {
		t.Fatal(err)
	}
	f.run(0, "verify", "--only", "documents")
	if _, err := f.pool.Exec(ctx, `UPDATE orders_items_parts SET p = 7 WHERE id = 'o00003' AND _parent_position = 1 AND _position = 0`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, "verify", "--only", "documents", "--samples", "5")
	if !strings.Contains(res.Stdout, "o00003") {
		t.Fatalf("verify does not name the order whose part was tampered with:\n%s", res.Stdout)
	}
}
