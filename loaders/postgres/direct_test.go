package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// twins loads the same batches into two databases: fast, whose tables the
// sink's Prepare creates (the direct load path), and staged, whose tables
// exist before the sink's Prepare (the staging path, as for a resumed or
// repeated run). Every test of the direct path checks that both end up
// with the same rows, placeholders included, and the same outcomes.
type twins struct {
	t            *testing.T
	m            *mappings.Mapping
	fastDB, slow *pgxpool.Pool
	fast, staged *postgres.Documents
}

func newTwins(t *testing.T) *twins {
	t.Helper()
	ctx := context.Background()
	w := &twins{t: t, m: docsMapping(t), fastDB: newPool(t), slow: newPool(t)}
	var err error
	if w.fast, err = postgres.NewDocuments(w.m); err != nil {
		t.Fatal(err)
	}
	if err := w.fast.Prepare(ctx, w.fastDB); err != nil {
		t.Fatal(err)
	}
	// The staged twin's tables come from an earlier sink's Prepare.
	earlier, err := postgres.NewDocuments(w.m)
	if err != nil {
		t.Fatal(err)
	}
	if err := earlier.Prepare(ctx, w.slow); err != nil {
		t.Fatal(err)
	}
	if w.staged, err = postgres.NewDocuments(w.m); err != nil {
		t.Fatal(err)
	}
	if err := w.staged.Prepare(ctx, w.slow); err != nil {
		t.Fatal(err)
	}
	return w
}

// exec runs sql in both databases.
func (w *twins) exec(sql string) {
	w.t.Helper()
	for _, db := range []*pgxpool.Pool{w.fastDB, w.slow} {
		if _, err := db.Exec(context.Background(), sql); err != nil {
			w.t.Fatalf("%s: %v", sql, err)
		}
	}
}

// write writes recs as one batch into both twins and commits, and checks
// that both report the same outcome; it returns the fast twin's.
func (w *twins) write(recs ...record.Record) loaders.Outcome {
	w.t.Helper()
	out := writeBatch(w.t, w.fastDB, w.fast, recs)
	want := writeBatch(w.t, w.slow, w.staged, recs)
	if got, exp := fmt.Sprint(out.Changed, out.Rejects), fmt.Sprint(want.Changed, want.Rejects); got != exp {
		w.t.Fatalf("direct path's outcome (changed, rejects) %s\nstaging path's %s", got, exp)
	}
	return out
}

func writeBatch(t *testing.T, db *pgxpool.Pool, sink *postgres.Documents, recs []record.Record) loaders.Outcome {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	out, err := sink.Write(ctx, tx, recs)
	if err != nil {
		t.Fatalf("writing %d records: %v", len(recs), err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// same fails unless both twins hold the same rows, placeholders included.
func (w *twins) same() {
	w.t.Helper()
	got, want := dumpTables(w.t, w.fastDB, w.m), dumpTables(w.t, w.slow, w.m)
	if !slices.Equal(got, want) {
		w.t.Fatalf("direct path left\n %s\nstaging path\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
}

// stats fails unless the fast twin's counts of direct, fallen back and
// staged batches are want's (placeholder statements are checked where
// they are the point: TestDirectPathNeedsNoPlaceholdersForParentsItCopied).
func (w *twins) stats(want postgres.LoadStats) {
	w.t.Helper()
	got := w.fast.LoadStats()
	got.Placeholders = 0
	if got != want {
		w.t.Fatalf("load stats of the direct path's sink: %+v, want %+v", got, want)
	}
}

// dumpTables returns every row of m's tables as JSON, in order.
func dumpTables(t *testing.T, db *pgxpool.Pool, m *mappings.Mapping) []string {
	t.Helper()
	var out []string
	for _, tb := range m.Tables {
		rows, err := db.Query(context.Background(), fmt.Sprintf(`SELECT to_jsonb(t)::text FROM %s t ORDER BY 1`,
			pgx.Identifier{m.Schema, tb.Name}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// doc is a document of the conformance mapping ("items/i001",
// "items/i001/parts/p7").
func doc(key string, i int) record.Record { return conformanceDoc(key, i) }

func TestDirectPathOnTablesPrepareCreated(t *testing.T) {
	w := newTwins(t)
	recs := goodDocs(40) // items and parts, some parts under items with no document
	out := w.write(recs...)
	if len(out.Rejects) != 0 || out.Changed["items"]+out.Changed["items_parts"] != 40 {
		t.Fatalf("outcome %+v", out)
	}
	w.same()
	w.stats(postgres.LoadStats{Direct: 2})
	if got := w.staged.LoadStats(); got != (postgres.LoadStats{Staged: 2, Placeholders: 1}) {
		t.Fatalf("a sink whose tables existed before Prepare: %+v, want the staging path only", got)
	}
	// A new batch of new keys stays on the direct path.
	w.write(doc("items/i500", 500), doc("items/i501", 501))
	w.same()
	w.stats(postgres.LoadStats{Direct: 3})
}

// A batch that COPies a parent in directly sends no placeholder statement
// for the children it holds under it: the rows are the transaction's own.
// A child whose parent the batch does not hold still gets one.
func TestDirectPathNeedsNoPlaceholdersForParentsItCopied(t *testing.T) {
	w := newTwins(t)
	w.write(doc("items/i1", 1), doc("items/i1/parts/p1", 2), doc("items/i1/parts/p2", 3), doc("items/i2", 4))
	w.same()
	if got := w.fast.LoadStats(); got != (postgres.LoadStats{Direct: 2}) {
		t.Fatalf("parents and children in one batch: %+v, want two direct table batches and no placeholder statement", got)
	}
	w.write(doc("items/i3", 5), doc("items/i4/parts/p1", 6))
	w.same()
	if got := w.fast.LoadStats(); got != (postgres.LoadStats{Direct: 4, Placeholders: 1}) {
		t.Fatalf("a part whose item the batch does not hold: %+v, want one placeholder statement", got)
	}
	var missing bool
	if err := w.fastDB.QueryRow(context.Background(), `SELECT _missing FROM app.items WHERE id = 'i4'`).Scan(&missing); err != nil || !missing {
		t.Fatalf("items/i4 (only its part written): _missing %v, %v; want a placeholder", missing, err)
	}
}

func TestDirectPathFallsBackOnPlaceholders(t *testing.T) {
	w := newTwins(t)
	// A part before its item: the item gets a placeholder row.
	w.write(doc("items/i900/parts/p1", 1))
	w.stats(postgres.LoadStats{Direct: 1})
	// The item's own batch hits the placeholder, falls back, and the upsert
	// replaces the placeholder with the document.
	out := w.write(doc("items/i899", 2), doc("items/i900", 3))
	if out.Changed["items"] != 2 {
		t.Fatalf("changed %v, want both items", out.Changed)
	}
	w.same()
	w.stats(postgres.LoadStats{Direct: 1, Fallbacks: 1, Staged: 1})
	var missing bool
	if err := w.fastDB.QueryRow(context.Background(), `SELECT _missing FROM app.items WHERE id = 'i900'`).Scan(&missing); err != nil || missing {
		t.Fatalf("items/i900 after its document: _missing %v, %v", missing, err)
	}
}

func TestDirectPathFallsBackOnARetriedBatch(t *testing.T) {
	w := newTwins(t)
	batch := goodDocs(12)
	w.write(batch...)
	// The same batch again, as after a commit whose acknowledgement was
	// lost: every key is there, nothing changes.
	out := w.write(batch...)
	if n := out.Changed["items"] + out.Changed["items_parts"]; n != 0 || len(out.Rejects) != 0 {
		t.Fatalf("retried batch: %+v", out)
	}
	w.same()
	w.stats(postgres.LoadStats{Direct: 2, Fallbacks: 2, Staged: 2})
}

func TestDirectPathFallsBackOnAResumedPartitionsOverlap(t *testing.T) {
	w := newTwins(t)
	var first, second []record.Record
	for i := range 20 {
		first = append(first, doc(fmt.Sprintf("items/i%03d", i), i))
	}
	// The resumed partition reads again from before the last checkpoint:
	// half of its first batch is in, with other content since.
	for i := 10; i < 30; i++ {
		second = append(second, doc(fmt.Sprintf("items/i%03d", i), i+1000))
	}
	w.write(first...)
	out := w.write(second...)
	if out.Changed["items"] != 20 {
		t.Fatalf("changed %v, want 10 rewritten and 10 new", out.Changed)
	}
	w.same()
	w.stats(postgres.LoadStats{Direct: 1, Fallbacks: 1, Staged: 1})
}

func TestDirectPathFallsBackOnDuplicateKeysInABatch(t *testing.T) {
	w := newTwins(t)
	// The staging path loads such a batch row by row, the later document
	// winning; the direct path falls back to it.
	out := w.write(doc("items/i001", 1), doc("items/i002", 2), doc("items/i001", 3))
	if len(out.Rejects) != 0 {
		t.Fatalf("rejects %v", out.Rejects)
	}
	w.same()
	w.stats(postgres.LoadStats{Fallbacks: 1, Staged: 1})
}

func TestDirectPathFallsBackOnARefusedRow(t *testing.T) {
	w := newTwins(t)
	w.exec(`ALTER TABLE app.items ADD CONSTRAINT small_n CHECK (n < 100)`)
	out := w.write(doc("items/i001", 1), doc("items/i002", 200), doc("items/i003", 3))
	if len(out.Rejects) != 1 || !strings.Contains(out.Rejects[1], "small_n") {
		t.Fatalf("rejects %v, want items/i002's", out.Rejects)
	}
	w.same()
	w.stats(postgres.LoadStats{Fallbacks: 1, Staged: 1})
}

func TestDirectPathFallsBackOnAConcurrentPlaceholder(t *testing.T) {
	w := newTwins(t)
	ctx := context.Background()
	// Another batch, not committed yet, holds a placeholder for items/i007.
	other, err := w.fastDB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := w.fast.Write(ctx, other, []record.Record{doc("items/i007/parts/p1", 1)}); err != nil {
		t.Fatal(err)
	}
	// The item's batch waits for it (the key may be taken), then finds the
	// key taken and falls back — whichever comes first.
	done := make(chan loaders.Outcome, 1)
	go func() {
		done <- writeBatchErr(t, w.fastDB, w.fast, []record.Record{doc("items/i007", 7)})
	}()
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	out := <-done
	if out.Changed["items"] != 1 {
		t.Fatalf("changed %v, want the item written over its placeholder", out.Changed)
	}
	writeBatch(t, w.slow, w.staged, []record.Record{doc("items/i007/parts/p1", 1)})
	writeBatch(t, w.slow, w.staged, []record.Record{doc("items/i007", 7)})
	w.same()
	w.stats(postgres.LoadStats{Direct: 1, Fallbacks: 1, Staged: 1})
}

// writeBatchErr is writeBatch for another goroutine: it reports failures
// with t.Error.
func writeBatchErr(t *testing.T, db *pgxpool.Pool, sink *postgres.Documents, recs []record.Record) loaders.Outcome {
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Error(err)
		return loaders.Outcome{}
	}
	defer tx.Rollback(ctx)
	out, err := sink.Write(ctx, tx, recs)
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		t.Error(err)
	}
	return out
}

func TestDirectPathEndsAfterFallbacksInARow(t *testing.T) {
	w := newTwins(t)
	batch := []record.Record{doc("items/i001", 1), doc("items/i002", 2)}
	w.write(batch...)
	for range postgres.DirectGiveUp {
		w.write(batch...)
	}
	w.stats(postgres.LoadStats{Direct: 1, Fallbacks: int64(postgres.DirectGiveUp), Staged: int64(postgres.DirectGiveUp)})
	// From now on the table takes the staging path without trying, new
	// keys included.
	w.write(batch...)
	w.write(doc("items/i003", 3))
	w.same()
	w.stats(postgres.LoadStats{Direct: 1, Fallbacks: int64(postgres.DirectGiveUp), Staged: int64(postgres.DirectGiveUp) + 2})
	// A new Prepare (a new run) finds the tables existing: staging only.
	if err := w.fast.Prepare(context.Background(), w.fastDB); err != nil {
		t.Fatal(err)
	}
	w.write(doc("items/i004", 4))
	w.stats(postgres.LoadStats{Staged: 1})
	w.same()
}

func TestDirectPathGivesWayToRowLevelSecurity(t *testing.T) {
	w := newTwins(t)
	// Turned on mid-run: PostgreSQL refuses COPY FROM into the table but
	// lets the upsert's INSERT through the policy.
	w.exec(`ALTER TABLE app.items ENABLE ROW LEVEL SECURITY`)
	w.exec(`ALTER TABLE app.items FORCE ROW LEVEL SECURITY`)
	w.exec(`CREATE POLICY anything ON app.items USING (true) WITH CHECK (true)`)
	w.write(doc("items/i001", 1))
	w.same()
	w.stats(postgres.LoadStats{Fallbacks: 1, Staged: 1})
	// The table stays on the staging path at once, without waiting for
	// more fallbacks.
	w.write(doc("items/i002", 2))
	w.same()
	w.stats(postgres.LoadStats{Fallbacks: 1, Staged: 2})
}
