package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// storedRejects returns the stored rejects of a run: source key (as the
// exact key of the stored record) → reason.
func storedRejects(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT record::text, source_key, reason FROM baasmigrate.rejects`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var raw, key, reason string
		if err := rows.Scan(&raw, &key, &reason); err != nil {
			t.Fatal(err)
		}
		v, err := record.UnmarshalJSONValue([]byte(raw))
		if err != nil {
			t.Fatalf("stored record %s: %v", raw, err)
		}
		out[v.MapValue()["key"].StringValue()] = reason
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocumentsNULInIDsAreRejectedByName: document IDs with a NUL byte (a
// valid Firestore ID, which PostgreSQL text cannot hold) are rejected with
// the ID quoted, and the run goes on: the plan of the run (partition
// bounds), its checkpoints (cursors) and a stream named with a NUL hold
// them. A re-run finds the migration finished.
func TestDocumentsNULInIDsAreRejectedByName(t *testing.T) {
	f := newDocsFixture(t)
	var docs []demoapp.Doc
	bad := map[string]bool{}
	for i := range 240 {
		path := fmt.Sprintf("ids/d%03d", i)
		if i%2 == 0 {
			path += "\x00x"
			bad[path] = true
		}
		docs = append(docs, demoapp.Doc{Path: path, Fields: map[string]any{"n": int64(i)}})
	}
	// A collection ID with a NUL: its stream's name and cursors hold one;
	// the mapping cannot name it, so its documents are rejected too.
	docs = append(docs, demoapp.Doc{Path: "c\x00l/d1", Fields: map[string]any{"n": int64(1)}})
	bad["c\x00l/d1"] = true
	f.seed(docs)
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(1, "migrate", "--only", "documents", "--mapping", mapping, "--workers", "4", "--batch-size", "7", "--summary", sum)
	s := f.summary(sum)
	checkBalance(t, s)
	if s.Totals.Read != int64(len(docs)) || s.Totals.Rejected != int64(len(bad)) {
		t.Fatalf("totals %+v; want %d read, %d rejected\n%s", s.Totals, len(docs), len(bad), res.Stderr)
	}
	rejects := storedRejects(t, f.pool)
	for path := range bad {
		id, ok := strings.CutPrefix(path, "ids/")
		if !ok {
			id = "c\x00l"
		}
		if !strings.Contains(rejects[path], fmt.Sprintf("%q", id)) {
			t.Errorf("%q: reject reason %q does not name the ID quoted", path, rejects[path])
		}
	}
	var rows int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM ids`).Scan(&rows); err != nil || rows != len(docs)-len(bad) {
		t.Fatalf("%d rows loaded (%v); want %d", rows, err, len(docs)-len(bad))
	}
	if res := f.run(1, "migrate", "--only", "documents", "--mapping", mapping); !strings.Contains(res.Stdout, "already migrated") {
		t.Fatalf("the re-run did not find the run finished:\n%s", res.Stdout)
	}
}

// TestTwoSourcesDoNotShareTables migrates two Firestore projects into one
// database with mappings naming the same table: the second project's
// migrate refuses before writing anything, naming both sources and the
// table, and plan says migrate would refuse; with --share-target it
// goes ahead.
func TestTwoSourcesDoNotShareTables(t *testing.T) {
	a := newDocsFixture(t)
	a.seed([]demoapp.Doc{{Path: "users/u1", Fields: map[string]any{"name": "from A"}}})
	mapping := a.infer()
	a.run(0, "migrate", "--only", "documents", "--mapping", mapping)

	b := newDocsFixtureAt(t, a.host)
	b.seed([]demoapp.Doc{{Path: "users/u1", Fields: map[string]any{"name": "from B"}}})
	bEnv := clitest.Env("FIRESTORE_EMULATOR_HOST="+b.host, "GCLOUD_PROJECT="+b.project, "DATABASE_URL="+a.dsn)
	run := func(want int, args ...string) clitest.Result {
		t.Helper()
		res := clitest.Run(t, bEnv, args...)
		if res.Code != want {
			t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.Code, want, res.Stdout, res.Stderr)
		}
		return res
	}
	res := run(2, "migrate", "--only", "documents", "--mapping", mapping)
	for _, want := range []string{"projects/" + a.project + "/", "projects/" + b.project + "/", `"public"."users"`, "--share-target"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the refusal does not name %s:\n%s", want, res.Stderr)
		}
	}
	var name string
	var runs int
	if err := a.pool.QueryRow(context.Background(), `SELECT name, (SELECT count(*) FROM baasmigrate.runs) FROM users WHERE id = 'u1'`).Scan(&name, &runs); err != nil || name != "from A" || runs != 1 {
		t.Fatalf("users/u1 is %q, %d runs recorded (%v); the second source wrote something", name, runs, err)
	}
	res = clitest.Run(t, bEnv, "plan", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout+res.Stderr, "projects/"+a.project+"/") {
		t.Errorf("plan does not say migrate would refuse:\n%s\n%s", res.Stdout, res.Stderr)
	}
	run(0, "migrate", "--only", "documents", "--mapping", mapping, "--share-target")
	if err := a.pool.QueryRow(context.Background(), `SELECT name FROM users WHERE id = 'u1'`).Scan(&name); err != nil || name != "from B" {
		t.Fatalf("with --share-target users/u1 is %q (%v); want the second source's", name, err)
	}
}

// TestRenamedParentTable: renaming the parent table in the mapping moves
// the child's foreign key; plan shows it, and new child documents load.
func TestRenamedParentTable(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{
		{Path: "users/u1", Fields: map[string]any{"n": int64(1)}},
		{Path: "users/u1/orders/o1", Fields: map[string]any{"n": int64(2)}},
	})
	mapping := f.infer()
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	m := loadMapping(t, mapping)
	m.TableFor("users").Name = "members"
	saveMapping(t, mapping, m)
	f.seed([]demoapp.Doc{{Path: "users/u2/orders/o2", Fields: map[string]any{"n": int64(3)}}})
	res := f.run(0, "plan", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout, `move the foreign key of "public"."users_orders" from "public"."users"`) {
		t.Fatalf("plan does not show the foreign key moving:\n%s", res.Stdout)
	}
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	compareDocs(t, f.sourceDocs("users", "orders"), f.targetDocs(loadMapping(t, mapping)))
}

// TestInferNamesAnIDFieldReadably: a field named "id" becomes the column
// id_field (the document ID has id), infer says so, and it round-trips.
func TestInferNamesAnIDFieldReadably(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{{Path: "things/a", Fields: map[string]any{"id": int64(37386), "label": "x"}}})
	path := filepath.Join(f.dir, "mapping.yaml")
	res := f.run(0, "infer", "--out", path)
	if !strings.Contains(res.Stderr, "field id → column id_field (renamed: the document ID has column id)") {
		t.Fatalf("infer does not say why field id is renamed:\n%s", res.Stderr)
	}
	text, _ := os.ReadFile(path)
	if !strings.Contains(string(text), "column: id_field # renamed: the document ID has column id") {
		t.Fatalf("the mapping does not say why field id is renamed:\n%s", text)
	}
	f.run(0, "migrate", "--only", "documents", "--mapping", path)
	var id int64
	if err := f.pool.QueryRow(context.Background(), `SELECT id_field FROM things WHERE id = 'a'`).Scan(&id); err != nil || id != 37386 {
		t.Fatalf("things.id_field = %d, %v", id, err)
	}
}

// TestNamesThatCollideWithinOneSource: collections and fields whose names
// sanitise to one identifier get distinct tables and columns, and every
// document round-trips; a hand-edited mapping giving two collections one
// table is refused naming both.
func TestNamesThatCollideWithinOneSource(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{
		{Path: "userOrders/a", Fields: map[string]any{"fooBar": int64(1), "foo_bar": int64(2), "foo-bar": "three"}},
		{Path: "user_orders/a", Fields: map[string]any{"n": int64(4)}},
	})
	mapping := f.infer()
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	compareDocs(t, f.sourceDocs("userOrders", "user_orders"), f.targetDocs(loadMapping(t, mapping)))
	var tables int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 2 {
		t.Fatalf("%d tables (%v); want one per collection", tables, err)
	}
	m := loadMapping(t, mapping)
	m.Tables[1].Name = m.Tables[0].Name
	saveMapping(t, mapping, m)
	res := f.run(2, "migrate", "--only", "documents", "--mapping", mapping, "--restart")
	if !strings.Contains(res.Stderr, `"userOrders"`) || !strings.Contains(res.Stderr, `"user_orders"`) {
		t.Fatalf("the refusal does not name both collections:\n%s", res.Stderr)
	}
}

// TestFilesNULInNameIsRejectedByName: an object name with a NUL byte is
// rejected with the name quoted; the other objects load and the run's
// checkpoints hold the name.
func TestFilesNULInNameIsRejectedByName(t *testing.T) {
	src := newFilesSource(t)
	objs := []*filesObject{{name: "a\x00b.txt", data: []byte("nul")}, {name: "ok.txt", data: []byte("ok")}, {name: "z\x00", data: []byte("z")}}
	src.seed(objs)
	ft := newFilesTarget(t, src, false)
	s, res := ft.migrate(1, "--batch-size", "1")
	if s.Totals.Read != 3 || s.Totals.Rejected != 2 {
		t.Fatalf("totals %+v; want 3 read, 2 rejected\n%s", s.Totals, res.Stderr)
	}
	rejects := storedRejects(t, ft.pool)
	if len(rejects) != 2 {
		t.Fatalf("rejects %q", rejects)
	}
	for key, reason := range rejects {
		if !strings.Contains(reason, fmt.Sprintf("%q", key)) {
			t.Errorf("reject of %q: reason %q does not name it quoted", key, reason)
		}
	}
	if got := ft.rows(); len(got) != 1 {
		t.Fatalf("files rows %v; want ok.txt only", got)
	}
}

// TestTwoBucketsDoNotShareTheFilesTable: a second bucket migrated into the
// same files table is refused, naming both buckets, unless
// --share-target is given.
func TestTwoBucketsDoNotShareTheFilesTable(t *testing.T) {
	src := newFilesSource(t)
	src.seed([]*filesObject{{name: "a.txt", data: []byte("a")}})
	const other = "other-files.appspot.com"
	ctx := context.Background()
	if err := src.client.Bucket(other).Create(ctx, "demo-files", nil); err != nil {
		t.Fatal(err)
	}
	w := src.client.Bucket(other).Object("b.txt").NewWriter(ctx)
	if _, err := w.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ft := newFilesTarget(t, src, false)
	ft.migrate(0)
	args := []string{"migrate", "--only", "files", "--storage-bucket", other, "--objects", "file://" + filepath.Join(t.TempDir(), "other")}
	res := clitest.Run(t, ft.env, args...)
	if res.Code != 2 || !strings.Contains(res.Stderr, "gs://"+filesBucket) || !strings.Contains(res.Stderr, "gs://"+other) {
		t.Fatalf("second bucket: exit %d; want 2 naming both buckets\n%s", res.Code, res.Stderr)
	}
	if res := clitest.Run(t, ft.env, append(args, "--share-target")...); res.Code != 0 {
		t.Fatalf("second bucket with --share-target: exit %d\n%s", res.Code, res.Stderr)
	}
	var n int
	if err := ft.pool.QueryRow(ctx, `SELECT count(*) FROM files`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("files has %d rows (%v); want both buckets' objects", n, err)
	}
}
