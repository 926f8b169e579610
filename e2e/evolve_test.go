package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// evolvingItems generates n documents of items/{id} whose first half
// (what a sample reads first) has fields n (integer) and name, and whose
// second half also has late (a field the sample never sees), every 7th a
// double in n (a type it never sees) and every 50th a notes subcollection
// document (a collection it never sees). From extra on, document i also
// has field f<k> for every k with i >= k*n/(extra+1): columns that appear
// one after the other during the run.
func evolvingItems(n, extra int) []demoapp.Doc {
	var docs []demoapp.Doc
	for i := range n {
		id := fmt.Sprintf("it%05d", i)
		f := map[string]any{"n": int64(i), "name": "item " + id}
		if i >= n/2 {
			f["late"] = "late " + id
			if i%7 == 0 {
				f["n"] = float64(i) + 0.5
			}
			if i%50 == 0 {
				docs = append(docs, demoapp.Doc{Path: "items/" + id + "/notes/a", Fields: map[string]any{"text": "note of " + id}})
			}
		}
		for k := 1; k <= extra; k++ {
			if i >= k*n/(extra+1) {
				f[fmt.Sprintf("f%d", k)] = int64(k)
			}
		}
		docs = append(docs, demoapp.Doc{Path: "items/" + id, Fields: f})
	}
	return docs
}

// runMapping returns the mapping stored with the documents job's last
// finished run.
func (f *docsFixture) runMapping() *mappings.Mapping {
	f.t.Helper()
	var text string
	err := f.pool.QueryRow(context.Background(), `SELECT config->>'mapping' FROM baasmigrate.runs
		WHERE kind = 'document' AND status = 'finished' ORDER BY id DESC LIMIT 1`).Scan(&text)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := mappings.Parse([]byte(text), "(run mapping)")
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// runningMappingColumns returns how many columns the documents job's
// running run's mapping gives the table for pattern (0 without one).
func (f *docsFixture) runningMappingColumns(pattern string) int {
	f.t.Helper()
	var text string
	err := f.pool.QueryRow(context.Background(), `SELECT config->>'mapping' FROM baasmigrate.runs
		WHERE kind = 'document' AND status = 'running'`).Scan(&text)
	if err != nil {
		return 0
	}
	m, err := mappings.Parse([]byte(text), "(running mapping)")
	if err != nil {
		f.t.Fatal(err)
	}
	if t := m.TableFor(pattern); t != nil {
		return len(t.Columns)
	}
	return 0
}

func (f *docsFixture) columns(table string) []string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`, table)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// readsSoFar returns the emulator's billed document reads of the project.
func (f *docsFixture) readsSoFar() int64 {
	f.t.Helper()
	st, err := firestoreemu.HooksFor(f.host).DocumentsRead(context.Background(), f.project)
	if err != nil {
		f.t.Fatal(err)
	}
	return st.DocumentsRead
}

// TestMigrateWithoutMappingGrowsTheSchema migrates documents whose sample
// (the first 1% of each root collection) misses a field, a type and a
// subcollection: the field gets a column during the run, the type lands in
// the overflow, the subcollection a table; the mapping is recorded with
// the run, the target is exact and verify finds it identical.
func TestMigrateWithoutMappingGrowsTheSchema(t *testing.T) {
	f := newDocsFixture(t)
	docs := evolvingItems(3000, 0)
	f.seed(docs)
	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(0, "migrate", "--only", "documents", "--workers", "3", "--batch-size", "200", "--summary", sum)
	if !strings.Contains(res.Stderr, "grows with what the sample missed") {
		t.Errorf("stderr does not say the mapping grows:\n%s", res.Stderr)
	}
	s := f.summary(sum)
	checkBalance(t, s)
	if s.Totals.Read != int64(len(docs)) || s.Totals.Rejected != 0 {
		t.Fatalf("read %d, rejected %d; the source has %d documents", s.Totals.Read, s.Totals.Rejected, len(docs))
	}
	m := f.runMapping()
	items := m.TableFor("items")
	var late *mappings.Column
	for _, c := range items.Columns {
		if c.Field == "late" {
			late = c
		}
	}
	if late == nil || late.Type != "text" || !strings.Contains(late.Note, "added during the run") {
		t.Fatalf("the run's mapping has no text column added for late: %+v", items.Columns)
	}
	if m.TableFor("items/{}/notes") == nil {
		t.Fatal("the run's mapping has no table for the subcollection the sample missed")
	}
	if !slices.Contains(f.columns("items"), "late") {
		t.Fatalf("table items has no column late: %v", f.columns("items"))
	}
	// The late values are in their column; the doubles the integer column
	// cannot hold are in the overflow.
	var inColumn, inOverflow int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(late), count(*) FILTER (WHERE _overflow ? 'late') FROM items`).Scan(&inColumn, &inOverflow); err != nil {
		t.Fatal(err)
	}
	if inColumn != 1500 || inOverflow != 0 {
		t.Fatalf("late: %d values in the column, %d in the overflow; want 1500, 0", inColumn, inOverflow)
	}
	var doubles int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE _overflow ? 'n'`).Scan(&doubles); err != nil || doubles == 0 {
		t.Fatalf("doubles of n in the overflow: %d, %v", doubles, err)
	}
	compareDocs(t, f.sourceDocs("items", "notes"), f.targetDocs(m))
	f.run(0, "verify", "--only", "documents")
	// A re-run finds the run finished with the same (grown) mapping.
	res = f.run(0, "migrate", "--only", "documents")
	if !strings.Contains(res.Stdout, "already migrated") {
		t.Fatalf("a re-run did not find the finished run:\n%s", res.Stdout)
	}
}

// TestMigrateSchemaEvolutionOverflow keeps tables as the sample inferred
// them: the field the sample missed stays in the overflow, losslessly,
// and the subcollection still gets a table.
func TestMigrateSchemaEvolutionOverflow(t *testing.T) {
	f := newDocsFixture(t)
	docs := evolvingItems(3000, 0)
	f.seed(docs)
	f.run(0, "migrate", "--only", "documents", "--schema-evolution", "overflow", "--workers", "2", "--batch-size", "300")
	m := f.runMapping()
	if slices.Contains(f.columns("items"), "late") {
		t.Fatal("--schema-evolution overflow added column late")
	}
	if m.TableFor("items/{}/notes") == nil {
		t.Fatal("the run's mapping has no table for the subcollection the sample missed")
	}
	var inOverflow int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE _overflow ? 'late'`).Scan(&inOverflow); err != nil || inOverflow != 1500 {
		t.Fatalf("late in the overflow of %d rows, %v; want 1500", inOverflow, err)
	}
	compareDocs(t, f.sourceDocs("items", "notes"), f.targetDocs(m))
	f.run(0, "verify", "--only", "documents")
}

// TestMigrateEvolvingKilledAndResumed kills an evolving migrate with
// SIGKILL at random moments while columns keep appearing, re-running each
// time: the final target is exact and every column the data needs is in
// the catalog and in the run's mapping.
func TestMigrateEvolvingKilledAndResumed(t *testing.T) {
	f := newDocsFixture(t)
	const extra = 6
	docs := evolvingItems(12000, extra)
	f.seed(docs)
	args := []string{"migrate", "--only", "documents", "--workers", "3", "--batch-size", "100", "--firestore-page-size", "300"}
	committed := testenv.Committed(f.pool)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	midRun, grownAtKill := 0, 0
	for attempt := range 4 {
		target := committed() + 1 + r.Int64N(int64(len(docs))/5)
		if clitest.KillAt(t, f.env(), args, target, committed, 2*time.Minute) {
			midRun++
			cols := f.runningMappingColumns("items")
			grownAtKill = max(grownAtKill, cols)
			t.Logf("attempt %d: killed with %d records committed, %d columns in the run's mapping", attempt, committed(), cols)
		}
	}
	if midRun < 2 {
		t.Fatalf("only %d of 4 attempts were killed mid-run", midRun)
	}
	if grownAtKill <= 2 {
		t.Fatalf("no kill left a grown mapping to resume with (at most %d columns); the test did not test resuming an evolving run", grownAtKill)
	}
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, append(args, "--summary", sum)...)
	s := f.summary(sum)
	checkBalance(t, s)
	if s.Totals.Read != int64(len(docs)) || s.Totals.Rejected != 0 {
		t.Fatalf("after %d kills: read %d, rejected %d; the source has %d", midRun, s.Totals.Read, s.Totals.Rejected, len(docs))
	}
	m := f.runMapping()
	cols := f.columns("items")
	for k := 1; k <= extra; k++ {
		name := fmt.Sprintf("f%d", k)
		if !slices.Contains(cols, name) {
			t.Errorf("table items lacks column %s: %v", name, cols)
		}
		found := false
		for _, c := range m.TableFor("items").Columns {
			found = found || c.Name == name
		}
		if !found {
			t.Errorf("the run's mapping lacks column %s", name)
		}
	}
	compareDocs(t, f.sourceDocs("items", "notes"), f.targetDocs(m))
	f.run(0, "verify", "--only", "documents")
}

// TestMigrateWithoutMappingReadsEachDocumentOnce migrates the demo app
// without a mapping and counts the reads the emulator bills: at most 1.05
// per document (the figure is logged), where inferring from every
// document first costs two.
func TestMigrateWithoutMappingReadsEachDocumentOnce(t *testing.T) {
	f := newDocsFixture(t)
	docs := demoapp.Documents(7, demoapp.Small)
	f.seed(docs)
	before := f.readsSoFar()
	f.run(0, "migrate", "--only", "documents", "--workers", "3")
	reads := f.readsSoFar() - before
	per := float64(reads) / float64(len(docs))
	t.Logf("demo app (%d documents): %d billed reads, %.3f per document", len(docs), reads, per)
	if per > 1.05 {
		t.Errorf("%.3f billed reads per document; want at most 1.05", per)
	}
	compareDocs(t, f.sourceDocs(demoapp.Groups...), f.targetDocs(f.runMapping()))
	f.run(0, "verify", "--only", "documents")
}

// syncMapping returns the mapping sync stored for the documents job.
func (f *docsFixture) syncMapping() *mappings.Mapping {
	f.t.Helper()
	var text string
	if err := f.pool.QueryRow(context.Background(), `SELECT mapping FROM baasmigrate.sync_streams WHERE kind = 'document'`).Scan(&text); err != nil {
		f.t.Fatal(err)
	}
	m, err := mappings.Parse([]byte(text), "(sync mapping)")
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// TestSyncGrowsTheSchema follows a source where, after an evolving
// migrate, documents gain a field and a subcollection appears: sync adds
// the column and the table as it applies them, stores the grown mapping,
// and cutover and verify find the target identical.
func TestSyncGrowsTheSchema(t *testing.T) {
	f := newDocsFixtureAt(t, syncEmulatorHost(t))
	f.seed(evolvingItems(200, 0)[:100]) // it00000..it00099: no late, no notes
	f.run(0, "migrate", "--only", "documents")
	if slices.Contains(f.columns("items"), "late") {
		t.Fatal("items has column late before any document has it")
	}
	p := clitest.Start(t, f.env(), "sync", "--only", "documents", "-v")
	if !p.WaitStderr(t, "following", time.Minute) {
		t.Fatalf("sync did not start:\n%s", p.Result().Stderr)
	}
	ctx := context.Background()
	// The note is written before its parent is: the change stream finds a
	// new subcollection under the documents a batch writes, so the batch
	// writing items/it00003 finds notes. (A subcollection created under a
	// document that is not written afterwards is found only by sync's
	// count checks: docs/sync.md.)
	if _, err := f.client.Doc("items/it00003/notes/a").Set(ctx, map[string]any{"text": "a note"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		id := fmt.Sprintf("it%05d", i)
		if _, err := f.client.Doc("items/"+id).Set(ctx, map[string]any{"n": int64(i), "name": "item " + id, "late": "late " + id}); err != nil {
			t.Fatal(err)
		}
	}
	res := clitest.Run(t, f.env(), "cutover", "--only", "documents")
	if res.Code != 0 {
		t.Fatalf("cutover: exit %d\nstdout:\n%s\nstderr:\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	stopSync(t, p)
	if !slices.Contains(f.columns("items"), "late") {
		t.Fatalf("sync did not add column late: %v", f.columns("items"))
	}
	m := f.syncMapping()
	if m.TableFor("items/{}/notes") == nil {
		t.Fatal("the sync mapping has no table for the new subcollection")
	}
	var late *mappings.Column
	for _, c := range m.TableFor("items").Columns {
		if c.Field == "late" {
			late = c
		}
	}
	if late == nil {
		t.Fatal("the sync mapping has no column for late")
	}
	var inColumn int
	if err := f.pool.QueryRow(ctx, `SELECT count(late) FROM items`).Scan(&inColumn); err != nil || inColumn != 20 {
		t.Fatalf("late in its column in %d rows, %v; want 20", inColumn, err)
	}
	compareDocs(t, f.sourceDocs("items", "notes"), f.targetDocs(m))
	f.run(0, "verify", "--only", "documents")
}

// aggregationReads returns the emulator's billed reads of aggregation
// queries (counts) of the project.
func (f *docsFixture) aggregationReads() int64 {
	f.t.Helper()
	st, err := firestoreemu.HooksFor(f.host).DocumentsRead(context.Background(), f.project)
	if err != nil {
		f.t.Fatal(err)
	}
	return st.ByMethod["RunAggregationQuery"]
}

// TestMigrateCountsStreamsOnlyForShownProgress: a run whose progress
// nobody sees (no terminal, no -v) does not count the streams, which
// costs Firestore reads; with -v each stream is counted and its total
// logged beside its records.
func TestMigrateCountsStreamsOnlyForShownProgress(t *testing.T) {
	f := newDocsFixture(t)
	docs := demoapp.Documents(3, demoapp.Scale{Users: 40, Posts: 10, CommentsPerPost: 1})
	f.seed(docs)
	mapping := f.infer()
	before := f.aggregationReads()
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	if n := f.aggregationReads() - before; n != 0 {
		t.Errorf("migrate without progress made %d aggregation reads; want none", n)
	}
	before = f.aggregationReads()
	res := f.run(0, "migrate", "-v", "--restart", "--only", "documents", "--mapping", mapping)
	if n := f.aggregationReads() - before; n == 0 {
		t.Errorf("migrate -v made no aggregation read; its progress has no totals")
	}
	if !strings.Contains(res.Stderr, `msg="stream sized"`) {
		t.Errorf("migrate -v logged no stream total:\n%s", res.Stderr)
	}
	checkStreamLog(t, "migrate -v", res.Stderr)
}
