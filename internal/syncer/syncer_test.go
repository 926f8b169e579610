package syncer_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/memory"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/syncer"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// fixture is a documents source held in memory, copied into a fresh
// target, ready to be followed.
type fixture struct {
	pool  *pgxpool.Pool
	state *postgres.State
	clock *memory.Clock
	ex    *memory.Extractor
	job   *syncer.Job
}

func doc(key string, fields map[string]record.Value) record.Record {
	return record.Record{Kind: record.KindDocument, Key: key, Fields: fields,
		CreateTime: memory.Epoch.Add(-time.Hour), UpdateTime: memory.Epoch.Add(-time.Hour)}
}

func newFixture(t *testing.T, window time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	recs := []record.Record{
		doc("users/u1", map[string]record.Value{"name": record.String("Ann"), "age": record.Int(30)}),
		doc("users/u2", map[string]record.Value{"name": record.String("Bob")}),
		doc("users/u3", map[string]record.Value{"name": record.String("Cy")}),
		doc("users/u3/orders/o1", map[string]record.Value{"total": record.Double(9.5)}),
		doc("posts/p1", map[string]record.Value{"title": record.String("hello")}),
	}
	in := mappings.NewInferrer(mappings.InferOptions{})
	for _, r := range recs {
		in.Observe(r.Key, r.Fields)
	}
	m := in.Mapping()
	clock := memory.NewClock(memory.Epoch)
	ex, err := memory.New(recs, memory.Options{Name: "sync", Clock: clock, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	pool := testenv.NewPool(t)
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	remap := func(m *mappings.Mapping) (loaders.Sink, diff.Adapter, error) {
		sink, err := postgres.NewDocuments(m)
		if err != nil {
			return nil, nil, err
		}
		a, err := diff.NewDocuments(m, record.ByteOrder)
		return sink, a, err
	}
	sink, adapter, err := remap(m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := migration.Execute(ctx, pool, state, migration.Job{Kind: record.KindDocument, Extractor: ex, Sink: sink, Config: map[string]string{}}, migration.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, state: state, clock: clock, ex: ex, job: &syncer.Job{
		Name: res.Job, Kind: record.KindDocument, Extractor: ex, Sink: sink, Adapter: adapter, Mapping: m, Remap: remap,
	}}
}

// follow follows the source until the target reflects it as it is now.
func (f *fixture) follow(t *testing.T, opts syncer.Options) {
	t.Helper()
	f.clock.Advance(time.Millisecond)
	opts.Until = f.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := syncer.Follow(ctx, f.pool, f.state, f.job, opts); err != nil {
		t.Fatal(err)
	}
}

// identical compares the whole source with the target.
func (f *fixture) identical(t *testing.T) *diff.Report {
	t.Helper()
	rep, err := diff.Compare(context.Background(), f.ex, f.pool, f.job.Adapter, diff.Options{Samples: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Identical() {
		for _, tb := range rep.Tables {
			t.Errorf("%s: %+v %v", tb.Table, *tb, tb.SampleLines())
		}
		t.Fatal("target differs from the source")
	}
	return rep
}

func (f *fixture) put(t *testing.T, key string, fields map[string]record.Value) {
	t.Helper()
	if _, err := f.ex.Put(record.Record{Kind: record.KindDocument, Key: key, Fields: fields}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) del(t *testing.T, key string) {
	t.Helper()
	if _, err := f.ex.Delete(key); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) missing(t *testing.T, table, id string) (exists, placeholder bool) {
	t.Helper()
	err := f.pool.QueryRow(context.Background(), `SELECT _missing FROM `+pgx.Identifier{mappings.DefaultSchema, table}.Sanitize()+` WHERE id = $1`, id).Scan(&placeholder)
	if err == pgx.ErrNoRows {
		return false, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true, placeholder
}

// TestFollowAppliesEveryKindOfChange: updates, field deletes, creates at
// depth under a parent that does not exist, deletes of a leaf and of a
// parent with children (which becomes a placeholder), and a collection the
// mapping had no table for (inferred) all converge, and a second follow
// resumes from the stored position.
func TestFollowAppliesEveryKindOfChange(t *testing.T) {
	f := newFixture(t, 0)
	f.put(t, "users/u1", map[string]record.Value{"name": record.String("Ann B.")}) // age deleted
	f.del(t, "users/u2")
	f.del(t, "users/u3")
	f.put(t, "users/u9/orders/o7", map[string]record.Value{"total": record.Double(1)})
	f.put(t, "tags/t1", map[string]record.Value{"label": record.String("new")})
	f.follow(t, syncer.Options{BatchSize: 2})
	f.identical(t)
	if ok, _ := f.missing(t, "users", "u2"); ok {
		t.Error("users/u2 was deleted at the source but has a row")
	}
	if ok, ph := f.missing(t, "users", "u3"); !ok || !ph {
		t.Errorf("users/u3 (deleted, with a child) should be a placeholder: row %v, placeholder %v", ok, ph)
	}
	st, err := f.state.SyncStream(context.Background(), f.job.Name)
	if err != nil || st == nil {
		t.Fatal(st, err)
	}
	if !strings.Contains(st.Mapping, "tags") || st.Deleted != 2 || st.Applied != 3 {
		t.Errorf("sync state: deleted %d applied %d, mapping extended with tags: %v", st.Deleted, st.Applied, strings.Contains(st.Mapping, "tags"))
	}

	// The child goes too: the placeholder is left with no child and goes.
	f.del(t, "users/u3/orders/o1")
	f.put(t, "posts/p2", map[string]record.Value{"title": record.String("again")})
	f.follow(t, syncer.Options{})
	f.identical(t)
	if ok, _ := f.missing(t, "users", "u3"); ok {
		t.Error("the placeholder users/u3 outlived its last child")
	}
}

// TestNewCollectionsRejected: with NewCollectionsReject a document of a
// collection without a table is stored as a reject with the reason, never
// dropped, and the stream moves on.
func TestNewCollectionsRejected(t *testing.T) {
	f := newFixture(t, 0)
	f.put(t, "tags/t1", map[string]record.Value{"label": record.String("new")})
	f.follow(t, syncer.Options{NewCollections: syncer.NewCollectionsReject})
	var reason string
	if err := f.pool.QueryRow(context.Background(), `SELECT reason FROM baasmigrate.rejects WHERE source_key = 'tags/t1'`).Scan(&reason); err != nil {
		t.Fatalf("no reject stored for tags/t1: %v", err)
	}
	if !strings.Contains(reason, "no table") {
		t.Errorf("reject reason %q does not say there is no table", reason)
	}
}

// TestCatchUpWhenThePositionExpired: a sync stopped for longer than the
// source keeps history catches up by a snapshot comparison (deletes
// included) and then streams again.
func TestCatchUpWhenThePositionExpired(t *testing.T) {
	f := newFixture(t, time.Minute)
	f.put(t, "users/u1", map[string]record.Value{"name": record.String("changed")})
	f.del(t, "posts/p1")
	f.clock.Advance(2 * time.Minute)
	f.follow(t, syncer.Options{})
	f.identical(t)
	st, err := f.state.SyncStream(context.Background(), f.job.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st.CatchUps != 1 || !strings.Contains(st.Note, "snapshot comparison") {
		t.Errorf("catch-ups %d, note %q", st.CatchUps, st.Note)
	}
	f.put(t, "posts/p3", map[string]record.Value{"title": record.String("after")})
	f.follow(t, syncer.Options{})
	f.identical(t)
}

// TestCountsTriggerACatchUp: a row the stream will never deliver again
// (removed behind sync's back here; in production, a collection the stream
// had not found) makes the counts at the first consistent point disagree,
// and sync catches up by a snapshot comparison.
func TestCountsTriggerACatchUp(t *testing.T) {
	f := newFixture(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.pool.Exec(ctx, `DELETE FROM public.posts WHERE id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- syncer.Follow(ctx, f.pool, f.state, f.job, syncer.Options{CountInterval: time.Hour}) }()
	for {
		// The row is written before the catch-up records itself: wait for
		// both.
		if ok, _ := f.missing(t, "posts", "p1"); ok {
			if st, err := f.state.SyncStream(ctx, f.job.Name); err == nil && st != nil && st.CatchUps > 0 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("sync ended before restoring the row: %v", err)
		case <-ctx.Done():
			t.Fatal("the row removed behind sync's back was not restored")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := f.state.SyncStream(context.Background(), f.job.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st.CatchUps != 1 {
		t.Errorf("catch-ups %d, want 1", st.CatchUps)
	}
	f.identical(t)
}

// TestSoftDeletes: with SoftDeletes a deleted document's row stays, marked
// with the deletion time; comparisons treat it as absent, and writing the
// document again clears the mark.
func TestSoftDeletes(t *testing.T) {
	f := newFixture(t, 0)
	at, err := f.ex.Delete("users/u2")
	if err != nil {
		t.Fatal(err)
	}
	f.follow(t, syncer.Options{SoftDeletes: true})
	f.identical(t)
	var deletedAt *time.Time
	q := `SELECT _deleted_at FROM public.users WHERE id = 'u2'`
	if err := f.pool.QueryRow(context.Background(), q).Scan(&deletedAt); err != nil {
		t.Fatalf("the soft-deleted row is gone: %v", err)
	}
	if deletedAt == nil || !deletedAt.Equal(at) {
		t.Errorf("_deleted_at = %v, want the source's deletion time %v", deletedAt, at)
	}
	f.put(t, "users/u2", map[string]record.Value{"name": record.String("back")})
	f.follow(t, syncer.Options{SoftDeletes: true})
	f.identical(t)
	if err := f.pool.QueryRow(context.Background(), q).Scan(&deletedAt); err != nil || deletedAt != nil {
		t.Errorf("after re-creation: _deleted_at %v, err %v; want NULL", deletedAt, err)
	}
}

// TestDeleteOfANeverStoredDocumentIsNoReject: a document of a brand-new
// collection created and deleted before sync applied it arrives as one
// delete of a key no table holds: the target already lacks it, so nothing
// is rejected (status and metrics would report a record sync could not
// store) and no table is created.
func TestDeleteOfANeverStoredDocumentIsNoReject(t *testing.T) {
	f := newFixture(t, 0)
	f.put(t, "tags/t1", map[string]record.Value{"label": record.String("short-lived")})
	f.del(t, "tags/t1")
	f.follow(t, syncer.Options{})
	f.identical(t)
	st, err := f.state.SyncStream(context.Background(), f.job.Name)
	if err != nil || st == nil {
		t.Fatal(st, err)
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM baasmigrate.rejects WHERE source_key = 'tags/t1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if st.Rejected != 0 || n != 0 {
		t.Errorf("deleting a document the target never held: %d rejected in the sync state, %d rejects stored; want none", st.Rejected, n)
	}
}

// TestRejectedRecordCatchesUpOnce: a record the target rejects makes the
// counts of its stream disagree for good. Sync catches up once for it;
// later writes to the same stream change both counts but not how far they
// disagree, and must not start another snapshot comparison of the whole
// source at every count check.
func TestRejectedRecordCatchesUpOnce(t *testing.T) {
	f := newFixture(t, 0)
	// A subcollection without a table, rejected: the users stream counts
	// one record more at the source than rows in the target, for good.
	f.put(t, "users/u1/notes/n1", map[string]record.Value{"text": record.String("no table")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- syncer.Follow(ctx, f.pool, f.state, f.job, syncer.Options{NewCollections: syncer.NewCollectionsReject, CountInterval: time.Nanosecond})
	}()
	waitFor := func(what string, ok func(st *postgres.SyncStream) bool) {
		t.Helper()
		for {
			st, err := f.state.SyncStream(ctx, f.job.Name)
			if err != nil {
				t.Fatal(err)
			}
			if st != nil && ok(st) {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("sync ended before %s: %v", what, err)
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitFor("the first catch-up", func(st *postgres.SyncStream) bool { return st.CatchUps >= 1 })
	for i, id := range []string{"u5", "u6"} {
		at, err := f.ex.Put(record.Record{Kind: record.KindDocument, Key: "users/" + id, Fields: map[string]record.Value{"name": record.String(id)}})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(fmt.Sprintf("write %d applied and its counts checked", i+1), func(st *postgres.SyncStream) bool { return !st.ReadTime.Before(at) })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := f.state.SyncStream(context.Background(), f.job.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st.CatchUps != 1 {
		t.Errorf("catch-ups %d, want 1: the same disagreement (one rejected record) was caught up again", st.CatchUps)
	}
}

// TestNewCollectionTableLeftByAKilledSync: a sync killed after it created
// the table of a new collection but before it stored the mapping leaves
// the table with types a later inference may not choose (here: jsonb where
// the documents now say text[]); the next sync keeps the table's types
// instead of refusing, and the values still converge (in the overflow
// where the type does not fit).
func TestNewCollectionTableLeftByAKilledSync(t *testing.T) {
	f := newFixture(t, 0)
	if _, err := f.pool.Exec(context.Background(), `CREATE TABLE public.tags (id text PRIMARY KEY, labels jsonb,
		_create_time timestamptz, _update_time timestamptz, _overflow jsonb, _missing boolean NOT NULL DEFAULT false)`); err != nil {
		t.Fatal(err)
	}
	f.put(t, "tags/t1", map[string]record.Value{"labels": record.Array(record.String("a"), record.String("b"))})
	f.follow(t, syncer.Options{})
	f.identical(t)
	if c := f.job.Mapping.TableFor("tags"); c == nil || len(c.Columns) != 1 || c.Columns[0].Type != "jsonb" {
		t.Fatalf("the extended mapping's tags table: %+v (%+v); want labels typed jsonb, as the table has it", c, *c.Columns[0])
	}
}

// countingSink counts the transactions (Write calls) that carried
// changes; the documents sink's other methods (deletes) are its own.
type countingSink struct {
	*postgres.Documents
	writes atomic.Int64
}

func (s *countingSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	if len(recs) > 0 {
		s.writes.Add(1)
	}
	return s.Documents.Write(ctx, tx, recs)
}

// TestChangesAreBatchedByBytes: with a byte bound below one record, every
// change is applied in a transaction of its own however large BatchSize
// is, and the target still converges.
func TestChangesAreBatchedByBytes(t *testing.T) {
	f := newFixture(t, 0)
	sink := &countingSink{Documents: f.job.Sink.(*postgres.Documents)}
	f.job.Sink = sink
	for i := range 6 {
		f.put(t, fmt.Sprintf("users/n%d", i), map[string]record.Value{"name": record.String(strings.Repeat("x", 100))})
	}
	f.follow(t, syncer.Options{BatchSize: 1000, BatchBytes: 1})
	f.identical(t)
	if n := sink.writes.Load(); n < 6 {
		t.Errorf("6 upserts were written in %d transactions; a 1-byte bound allows one each", n)
	}
}
