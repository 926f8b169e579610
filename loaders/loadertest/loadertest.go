// Package loadertest is the conformance suite every sink (loaders.Sink)
// passes, the loaders' twin of extractors/extractortest:
//
//   - Prepare is idempotent, and two sink instances prepare one target;
//   - a batch's rows and its checkpoint commit together or not at all
//     (written in one transaction with postgres.State.Checkpoint: rolled
//     back, nothing is stored and the cursor stays; committed, every row is
//     stored and the cursor moved);
//   - a rejected record leaves the transaction usable: the good records of
//     a mixed batch are stored, the bad ones are rejects with a reason, and
//     the checkpoint after them commits;
//   - re-writing a committed batch changes nothing: no changed rows, the
//     same stored content, and (when the harness can tell) no row
//     rewritten;
//   - every record gets an outcome (a table, or a reject), and what is read
//     is what is loaded plus what is rejected; an empty batch is written
//     without error.
//
// A sink's own test runs it against the real target service:
//
//	loadertest.Run(t, loadertest.Harness{
//		Pool:   func(t *testing.T) *pgxpool.Pool { return testenv.NewPool(t) },
//		Sink:   func(t *testing.T, pool *pgxpool.Pool) loaders.Sink { ... },
//		Good:   goodRecords,
//		Bad:    badRecords,
//		Stored: readBack,
//	})
package loadertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Harness describes the sink under test and how to look at its target.
type Harness struct {
	// Pool returns a pool on a fresh, empty database; each sub-test calls
	// it once. The harness closes it (t.Cleanup).
	Pool func(t *testing.T) *pgxpool.Pool
	// Sink returns a new sink writing into pool's database (and whatever
	// else it writes to: a fresh bucket or directory per pool). It may be
	// called more than once per pool: every sink it returns for one pool
	// writes to the same place, as two runs of the tool would. The suite
	// calls Prepare itself.
	Sink func(t *testing.T, pool *pgxpool.Pool) loaders.Sink
	// Good returns n records (n ≥ 1) the sink stores, all of one kind,
	// with distinct keys and cursors, in cursor order.
	Good func(n int) []record.Record
	// Bad returns at least one record the sink must reject, of the kind of
	// Good's and with keys none of Good's records has. Include records that
	// pass the sink's own checks but that the target refuses (a value
	// PostgreSQL cannot store), so that the transaction's survival is
	// tested.
	Bad func() []record.Record
	// Stored reads what the sink stored in pool's target, committed: for
	// every stored record, by its record key, a digest of its stored
	// content (rows, and bytes for files). Placeholders and bookkeeping
	// rows the sink writes besides the records' own are left out.
	Stored func(t *testing.T, pool *pgxpool.Pool) map[string]string
	// Versions, if set, returns per record key what changes whenever the
	// sink rewrites the stored record even with equal content (PostgreSQL
	// rows: xmin of every row of the record), so that the suite checks an
	// unchanged record is not rewritten.
	Versions func(t *testing.T, pool *pgxpool.Pool) map[string]string
	// Size is the number of good records per batch (default 20).
	Size int
}

// Run runs the suite, each property as its own sub-test.
func Run(t *testing.T, h Harness) {
	if h.Size <= 0 {
		h.Size = 20
	}
	t.Run("PrepareIsIdempotent", func(t *testing.T) { prepareTwice(t, h) })
	t.Run("RowsAndCheckpointCommitTogether", func(t *testing.T) { commitTogether(t, h) })
	t.Run("RejectsLeaveTheTransactionUsable", func(t *testing.T) { rejects(t, h) })
	t.Run("RewritingACommittedBatchChangesNothing", func(t *testing.T) { rewrite(t, h) })
	t.Run("EveryRecordGetsAnOutcome", func(t *testing.T) { outcomes(t, h) })
}

// target is one sub-test's database, sink and tool state.
type target struct {
	t     *testing.T
	h     Harness
	pool  *pgxpool.Pool
	sink  loaders.Sink
	state *postgres.State
}

func newTarget(t *testing.T, h Harness) *target {
	t.Helper()
	ctx := context.Background()
	pool := h.Pool(t)
	t.Cleanup(pool.Close)
	sink := h.Sink(t, pool)
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return &target{t: t, h: h, pool: pool, sink: sink, state: state}
}

// run records a run with one stream of one partition, as the engine does
// before writing, and returns the partition.
func (g *target) run(kind record.Kind) (*postgres.Run, *postgres.PartitionState) {
	g.t.Helper()
	p := record.Partition{Stream: "loadertest", ID: "0"}
	r, err := g.state.StartRun(context.Background(), postgres.Job(kind, "loadertest"), kind, map[string]string{},
		[]record.Stream{{Name: p.Stream, Kind: kind, Partitions: []record.Partition{p}}})
	if err != nil {
		g.t.Fatal(err)
	}
	return r, r.Streams[0].Partitions[0]
}

// batch is one Write and its checkpoint in a transaction left open.
type batch struct {
	tx  pgx.Tx
	out loaders.Outcome
}

// write begins a transaction, writes recs with sink and, when run is not
// nil, checkpoints p at the last record's cursor with the batch's counts,
// as the engine does. The caller commits or rolls back.
func (g *target) write(sink loaders.Sink, recs []record.Record, r *postgres.Run, p *postgres.PartitionState) batch {
	g.t.Helper()
	ctx := context.Background()
	tx, err := g.pool.Begin(ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { tx.Rollback(context.Background()) })
	out, err := sink.Write(ctx, tx, recs)
	if err != nil {
		g.t.Fatalf("Write of %d records: %v", len(recs), err)
	}
	checkOutcome(g.t, recs, out)
	if r != nil {
		counts, rejects := tally(recs, out)
		cursor := p.Cursor
		if len(recs) > 0 {
			cursor = recs[len(recs)-1].Cursor
		}
		if err := g.state.Checkpoint(ctx, tx, r, p, cursor, false, counts, rejects); err != nil {
			g.t.Fatalf("Checkpoint in the batch's transaction, after Write: %v", err)
		}
	}
	return batch{tx: tx, out: out}
}

// commit writes recs and commits them with their checkpoint.
func (g *target) commit(sink loaders.Sink, recs []record.Record, r *postgres.Run, p *postgres.PartitionState) loaders.Outcome {
	g.t.Helper()
	b := g.write(sink, recs, r, p)
	if err := b.tx.Commit(context.Background()); err != nil {
		g.t.Fatalf("committing a batch of %d records: %v", len(recs), err)
	}
	if r != nil && len(recs) > 0 {
		p.Cursor = recs[len(recs)-1].Cursor
	}
	return b.out
}

// checkpoint returns p's stored cursor and the records its counts cover.
func (g *target) checkpoint(r *postgres.Run, p *postgres.PartitionState) (string, int64) {
	g.t.Helper()
	ctx := context.Background()
	cursor, _, err := g.state.PartitionCursor(ctx, r, p)
	if err != nil {
		g.t.Fatal(err)
	}
	read, err := g.state.StreamRead(ctx, r, p.Stream)
	if err != nil {
		g.t.Fatal(err)
	}
	return cursor, read
}

// tally turns an outcome into the counts and rejects a checkpoint stores,
// as the engine does.
func tally(recs []record.Record, out loaders.Outcome) (map[string]postgres.TableCounts, []postgres.Reject) {
	counts := map[string]postgres.TableCounts{}
	var rejects []postgres.Reject
	for i, r := range recs {
		c := counts[out.Tables[i]]
		c.Read++
		if reason, ok := out.Rejects[i]; ok {
			c.Rejected++
			raw, _ := r.MarshalJSON()
			rejects = append(rejects, postgres.Reject{Table: out.Tables[i], SourceKey: r.Key, Reason: reason, Record: raw})
		}
		counts[out.Tables[i]] = c
	}
	for t, n := range out.Changed {
		c := counts[t]
		c.Changed += n
		counts[t] = c
	}
	return counts, rejects
}

// checkOutcome checks the shape every outcome has: one table per record,
// rejects only of records of the batch, each with a reason, no negative
// change counts.
func checkOutcome(t *testing.T, recs []record.Record, out loaders.Outcome) {
	t.Helper()
	if len(out.Tables) != len(recs) {
		t.Fatalf("%d outcomes (Tables) for %d records", len(out.Tables), len(recs))
	}
	for i, reason := range out.Rejects {
		if i < 0 || i >= len(recs) {
			t.Fatalf("reject of record %d in a batch of %d: %q", i, len(recs), reason)
		}
		if strings.TrimSpace(reason) == "" {
			t.Errorf("record %d (%s) rejected without a reason", i, short(recs[i].Key))
		}
	}
	for i, table := range out.Tables {
		if _, rejected := out.Rejects[i]; !rejected && table == "" {
			t.Errorf("record %d (%s) neither stored in a table nor rejected", i, short(recs[i].Key))
		}
	}
	for table, n := range out.Changed {
		if n < 0 {
			t.Errorf("table %q: %d rows changed", table, n)
		}
	}
}

func (g *target) stored() map[string]string {
	g.t.Helper()
	return g.h.Stored(g.t, g.pool)
}

func keys(recs []record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Key
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// short quotes a key for a message, cut to 80 bytes.
func short(k string) string {
	if len(k) > 80 {
		return fmt.Sprintf("%q…", k[:80])
	}
	return fmt.Sprintf("%q", k)
}

// shortAll quotes keys for a message: the first ten, each cut.
func shortAll(keys []string) string {
	var out []string
	for i, k := range keys {
		if i == 10 {
			out = append(out, fmt.Sprintf("… %d more", len(keys)-i))
			break
		}
		out = append(out, short(k))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// sameKeys fails t unless stored holds exactly want's keys.
func sameKeys(t *testing.T, what string, stored map[string]string, want []string) {
	t.Helper()
	got := sortedKeys(stored)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %d records stored %s; want %d %s", what, len(got), shortAll(got), len(want), shortAll(want))
	}
}

func changed(out loaders.Outcome) int64 {
	var n int64
	for _, c := range out.Changed {
		n += c
	}
	return n
}

func prepareTwice(t *testing.T, h Harness) {
	ctx := context.Background()
	g := newTarget(t, h)
	if err := g.sink.Prepare(ctx, g.pool); err != nil {
		t.Fatalf("a second Prepare of the same sink: %v", err)
	}
	other := h.Sink(t, g.pool)
	if err := other.Prepare(ctx, g.pool); err != nil {
		t.Fatalf("Prepare of a second sink over the same target: %v", err)
	}
	recs := h.Good(h.Size)
	g.commit(other, recs, nil, nil)
	sameKeys(t, "after Prepare three times and a batch", g.stored(), keys(recs))
}

func commitTogether(t *testing.T, h Harness) {
	ctx := context.Background()
	g := newTarget(t, h)
	recs := h.Good(h.Size)
	r, p := g.run(recs[0].Kind)

	b := g.write(g.sink, recs, r, p)
	if err := b.tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := g.stored(); len(got) != 0 {
		t.Fatalf("rolled back with its checkpoint, the batch left %d records stored: %s", len(got), shortAll(sortedKeys(got)))
	}
	if cursor, read := g.checkpoint(r, p); cursor != "" || read != 0 {
		t.Fatalf("rolled back, the checkpoint moved to %q covering %d records", cursor, read)
	}

	out := g.commit(g.sink, recs, r, p)
	if len(out.Rejects) != 0 {
		t.Fatalf("good records rejected: %v", out.Rejects)
	}
	sameKeys(t, "committed with its checkpoint", g.stored(), keys(recs))
	if cursor, read := g.checkpoint(r, p); cursor != recs[len(recs)-1].Cursor || read != int64(len(recs)) {
		t.Fatalf("committed, the checkpoint is at %q covering %d records; want %q and %d", cursor, read, recs[len(recs)-1].Cursor, len(recs))
	}
}

// mixed returns good records with bad ones spread among them, and the
// indexes of the bad ones.
func mixed(h Harness) ([]record.Record, []record.Record, map[int]bool) {
	good, bad := h.Good(h.Size), h.Bad()
	if len(bad) == 0 {
		panic("loadertest: Harness.Bad returned no record")
	}
	var recs []record.Record
	badAt := map[int]bool{}
	step := max(1, len(good)/len(bad))
	gi := 0
	for _, b := range bad {
		for range step {
			if gi < len(good) {
				recs = append(recs, good[gi])
				gi++
			}
		}
		badAt[len(recs)] = true
		recs = append(recs, b)
	}
	return append(recs, good[gi:]...), good, badAt
}

func rejects(t *testing.T, h Harness) {
	ctx := context.Background()
	g := newTarget(t, h)
	recs, good, badAt := mixed(h)
	r, p := g.run(recs[0].Kind)
	b := g.write(g.sink, recs, r, p) // checkOutcome and the checkpoint ran in tx
	for i := range recs {
		reason, rejected := b.out.Rejects[i]
		switch {
		case badAt[i] && !rejected:
			t.Errorf("record %d (%s) not rejected", i, short(recs[i].Key))
		case !badAt[i] && rejected:
			t.Errorf("good record %d (%s) rejected: %s", i, short(recs[i].Key), reason)
		}
	}
	var one int
	if err := b.tx.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("after the rejects and the checkpoint, the transaction fails: %v", err)
	}
	if err := b.tx.Commit(ctx); err != nil {
		t.Fatalf("committing a batch with rejects: %v", err)
	}
	sameKeys(t, "a batch with rejects, committed", g.stored(), keys(good))
	var stored int64
	if err := g.pool.QueryRow(ctx, `SELECT count(*) FROM baasmigrate.rejects WHERE run_id = $1`, r.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != int64(len(badAt)) {
		t.Fatalf("%d rejects stored with the checkpoint; want %d", stored, len(badAt))
	}
}

func rewrite(t *testing.T, h Harness) {
	g := newTarget(t, h)
	recs, good, _ := mixed(h)
	r, p := g.run(recs[0].Kind)
	first := g.commit(g.sink, recs, r, p)
	if changed(first) == 0 {
		t.Fatalf("the first write of %d records into an empty target reports no changed row: %+v", len(good), first.Changed)
	}
	before := g.stored()
	var versions map[string]string
	if h.Versions != nil {
		versions = h.Versions(t, g.pool)
	}
	// Again with the same sink, then with a new one (a resumed process).
	for i, sink := range []loaders.Sink{g.sink, h.Sink(t, g.pool)} {
		if i == 1 {
			if err := sink.Prepare(context.Background(), g.pool); err != nil {
				t.Fatalf("Prepare of a new sink: %v", err)
			}
		}
		out := g.write(sink, recs, nil, nil)
		if err := out.tx.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := changed(out.out); n != 0 {
			t.Errorf("rewrite %d: %d rows reported changed (%v); want none", i+1, n, out.out.Changed)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(first.Rejects)), slices.Sorted(maps.Keys(out.out.Rejects))) {
			t.Errorf("rewrite %d: rejects %v; the first write rejected %v", i+1, out.out.Rejects, first.Rejects)
		}
		after := g.stored()
		for k, d := range before {
			if after[k] != d {
				t.Errorf("rewrite %d: %s stored content changed:\n was %.300s\n now %.300s", i+1, short(k), d, after[k])
			}
		}
		sameKeys(t, fmt.Sprintf("rewrite %d", i+1), after, sortedKeys(before))
		if h.Versions != nil {
			now := h.Versions(t, g.pool)
			for k, v := range versions {
				if now[k] != v {
					t.Errorf("rewrite %d: %s was rewritten (version %s, now %s)", i+1, short(k), v, now[k])
				}
			}
		}
	}
}

func outcomes(t *testing.T, h Harness) {
	ctx := context.Background()
	g := newTarget(t, h)
	r, p := g.run(h.Good(1)[0].Kind)
	b := g.write(g.sink, nil, r, p)
	if err := b.tx.Commit(ctx); err != nil {
		t.Fatalf("committing an empty batch: %v", err)
	}
	recs, good, _ := mixed(h)
	out := g.commit(g.sink, recs, r, p)
	loaded := int64(len(recs) - len(out.Rejects))
	if got := int64(len(g.stored())); got != loaded || loaded != int64(len(good)) {
		t.Fatalf("%d records read, %d rejected: %d loaded, but %d stored (%d good)", len(recs), len(out.Rejects), loaded, got, len(good))
	}
	sums, err := g.state.Summary(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	var read, rejected int64
	for _, s := range sums {
		read += s.Read
		rejected += s.Rejected
	}
	if read != int64(len(recs)) || read-rejected != loaded {
		t.Fatalf("the run's counts: read %d, rejected %d; want read %d = %d loaded + %d rejected", read, rejected, len(recs), loaded, len(out.Rejects))
	}
}
