package loadertest

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
)

// Deletes describes what the Deleter suite (RunDeletes) needs beyond the
// Harness. The sink's records are deleted by their record keys.
type Deletes struct {
	// Marked, if set, reads per record key the deletion time of the
	// records soft deletes marked (committed), and makes the suite test
	// soft deletes: the sink must then be a loaders.SoftDeleter.
	Marked func(t *testing.T, pool *pgxpool.Pool) map[string]time.Time
	// Present, if set, reports whether the bytes of the record with key
	// are in the sink's store (for sinks that keep bytes outside the
	// database): the suite then tests loaders.Purger, which the sink must
	// implement.
	Present func(t *testing.T, pool *pgxpool.Pool, key string) bool
}

// RunDeletes runs the contract of loaders.Deleter (and SoftDeleter and
// Purger, as d says) against the sink h describes, each property as its
// own sub-test:
//
//   - Delete removes the records of the keys it is given, inside the
//     caller's transaction: rolled back, every record stays; committed,
//     exactly the others stay; its outcome has one table per key and
//     counts the rows it changed.
//   - Deleting keys already deleted, and keys never written, changes
//     nothing and rejects nothing.
//   - Soft: a soft delete keeps the records, marked at the deletion time;
//     deleting again keeps the first time; writing a marked record again
//     clears its mark.
//   - Purge, after a committed hard delete, removes the bytes; purging
//     again, or keys never written, is no error; a record written again
//     before the purge keeps its bytes.
func RunDeletes(t *testing.T, h Harness, d Deletes) {
	if h.Size <= 0 {
		h.Size = 20
	}
	t.Run("DeleteRemovesInTheCallersTransaction", func(t *testing.T) { deleteRemoves(t, h) })
	t.Run("DeletingTwiceOrAbsentKeysChangesNothing", func(t *testing.T) { deleteTwice(t, h) })
	if d.Marked != nil {
		t.Run("SoftDeleteMarksAndARewriteClears", func(t *testing.T) { softDelete(t, h, d) })
	}
	if d.Present != nil {
		t.Run("PurgeRemovesTheBytesOfDeletedRecordsOnly", func(t *testing.T) { purge(t, h, d) })
	}
}

// deleter returns g's sink as a Deleter.
func (g *target) deleter() loaders.Deleter {
	g.t.Helper()
	del, ok := g.sink.(loaders.Deleter)
	if !ok {
		g.t.Fatalf("%T is no loaders.Deleter", g.sink)
	}
	return del
}

// delete runs Delete of keys in a new transaction, checks the outcome's
// shape and that nothing is rejected, and commits it or, with rollback,
// rolls it back.
func (g *target) delete(keys []string, at time.Time, soft, rollback bool) loaders.Outcome {
	g.t.Helper()
	ctx := context.Background()
	tx, err := g.pool.Begin(ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	out, err := g.deleter().Delete(ctx, tx, keys, at, soft)
	if err != nil {
		g.t.Fatalf("Delete of %d keys (soft %v): %v", len(keys), soft, err)
	}
	if len(out.Tables) != len(keys) {
		g.t.Fatalf("Delete of %d keys: %d outcomes (Tables)", len(keys), len(out.Tables))
	}
	for i, table := range out.Tables {
		if table == "" {
			g.t.Errorf("Delete: key %d (%s) has no table", i, short(keys[i]))
		}
	}
	if len(out.Rejects) > 0 {
		g.t.Fatalf("Delete of keys of the sink's own records rejected some: %v", out.Rejects)
	}
	if rollback {
		if err := tx.Rollback(ctx); err != nil {
			g.t.Fatal(err)
		}
	} else if err := tx.Commit(ctx); err != nil {
		g.t.Fatalf("committing a Delete: %v", err)
	}
	return out
}

// every returns every other record of recs, from the second: records under
// others and records others are under, for sinks with such records.
func every(recs []record.Record) (picked, rest []string) {
	for i, r := range recs {
		if i%2 == 1 {
			picked = append(picked, r.Key)
		} else {
			rest = append(rest, r.Key)
		}
	}
	slices.Sort(picked)
	slices.Sort(rest)
	return picked, rest
}

func deleteRemoves(t *testing.T, h Harness) {
	g := newTarget(t, h)
	recs := h.Good(h.Size)
	g.commit(g.sink, recs, nil, nil)
	before := g.stored()
	sameKeys(t, "written", before, keys(recs))
	gone, kept := every(recs)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

	g.delete(gone, at, false, true)
	after := g.stored()
	sameKeys(t, "deleted, then rolled back", after, keys(recs))
	for k, v := range before {
		if after[k] != v {
			t.Errorf("deleted, then rolled back: %s changed", short(k))
		}
	}

	out := g.delete(gone, at, false, false)
	after = g.stored()
	sameKeys(t, "deleted and committed", after, kept)
	for k, v := range after {
		if before[k] != v {
			t.Errorf("deleting other records changed %s", short(k))
		}
	}
	if n := changed(out); n < int64(len(gone)) {
		t.Errorf("deleting %d records reports %d rows changed (%v)", len(gone), n, out.Changed)
	}
	// What is left can go too.
	g.delete(kept, at, false, false)
	sameKeys(t, "every record deleted", g.stored(), nil)
}

func deleteTwice(t *testing.T, h Harness) {
	g := newTarget(t, h)
	recs := h.Good(h.Size)
	g.commit(g.sink, recs, nil, nil)
	gone, kept := every(recs)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	g.delete(gone, at, false, false)
	before := g.stored()
	sameKeys(t, "deleted", before, kept)

	never := keys(h.Good(2 * h.Size)[h.Size:])
	for _, k := range never {
		if slices.Contains(keys(recs), k) {
			t.Fatalf("Harness.Good(%d) and Good(%d) share key %s: the suite needs keys never written", h.Size, 2*h.Size, short(k))
		}
	}
	for i, batch := range [][]string{gone, never, append(slices.Clone(gone), never...)} {
		out := g.delete(batch, at.Add(time.Hour), false, false)
		if n := changed(out); n != 0 {
			t.Errorf("delete %d of keys without records: %d rows reported changed (%v)", i+1, n, out.Changed)
		}
		after := g.stored()
		sameKeys(t, "deleting keys without records", after, kept)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("delete %d of keys without records changed %s", i+1, short(k))
			}
		}
	}
	// An empty batch is no error.
	g.delete(nil, at, false, false)
}

// softTarget is a target whose sink has soft deletes on before Prepare.
func softTarget(t *testing.T, h Harness) *target {
	t.Helper()
	sinkFn := h.Sink
	h.Sink = func(t *testing.T, pool *pgxpool.Pool) loaders.Sink {
		s := sinkFn(t, pool)
		sd, ok := s.(loaders.SoftDeleter)
		if !ok {
			t.Fatalf("%T is no loaders.SoftDeleter", s)
		}
		sd.SetSoftDeletes(true)
		return s
	}
	return newTarget(t, h)
}

func softDelete(t *testing.T, h Harness, d Deletes) {
	g := softTarget(t, h)
	recs := h.Good(h.Size)
	g.commit(g.sink, recs, nil, nil)
	if m := d.Marked(t, g.pool); len(m) != 0 {
		t.Fatalf("written, %d records are marked deleted: %v", len(m), slices.Sorted(maps.Keys(m)))
	}
	before := g.stored()
	gone, _ := every(recs)
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

	g.delete(gone, at, true, true)
	if m := d.Marked(t, g.pool); len(m) != 0 {
		t.Fatalf("soft-deleted, then rolled back: %d records are marked", len(m))
	}
	out := g.delete(gone, at, true, false)
	if n := changed(out); n < int64(len(gone)) {
		t.Errorf("soft-deleting %d records reports %d rows changed (%v)", len(gone), n, out.Changed)
	}
	checkMarks := func(what string, want time.Time) {
		t.Helper()
		m := d.Marked(t, g.pool)
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, gone) {
			t.Fatalf("%s: marked %s; want %s", what, shortAll(got), shortAll(gone))
		}
		for k, ts := range m {
			if !ts.Equal(want) {
				t.Errorf("%s: %s marked deleted at %s; want %s", what, short(k), ts, want)
			}
		}
	}
	checkMarks("soft-deleted", at)
	sameKeys(t, "soft-deleted (rows are kept)", g.stored(), keys(recs))
	if d.Present != nil {
		for _, k := range gone {
			if !d.Present(t, g.pool, k) {
				t.Errorf("soft-deleted, %s lost its bytes; soft deletes keep them", short(k))
			}
		}
	}

	out = g.delete(gone, at.Add(time.Hour), true, false)
	if n := changed(out); n != 0 {
		t.Errorf("soft-deleting marked records again: %d rows changed (%v)", n, out.Changed)
	}
	checkMarks("soft-deleted twice", at)

	out = g.commit(g.sink, recs, nil, nil)
	if len(out.Rejects) > 0 {
		t.Fatalf("writing the records again: rejected %v", out.Rejects)
	}
	if n := changed(out); n < int64(len(gone)) {
		t.Errorf("writing %d marked records again reports %d rows changed; clearing a mark is a change", len(gone), n)
	}
	if m := d.Marked(t, g.pool); len(m) != 0 {
		t.Fatalf("written again, %d records are still marked deleted: %s", len(m), shortAll(slices.Sorted(maps.Keys(m))))
	}
	after := g.stored()
	sameKeys(t, "written again", after, keys(recs))
	for k, v := range before {
		if after[k] != v {
			t.Errorf("soft-deleted and written again, %s is not as it was", short(k))
		}
	}
	// A hard delete of a marked record removes it.
	g.delete(gone, at, true, false)
	g.delete(gone, at, false, false)
	_, kept := every(recs)
	sameKeys(t, "soft-, then hard-deleted", g.stored(), kept)
}

func purge(t *testing.T, h Harness, d Deletes) {
	ctx := context.Background()
	g := newTarget(t, h)
	p, ok := g.sink.(loaders.Purger)
	if !ok {
		t.Fatalf("%T is no loaders.Purger", g.sink)
	}
	recs := h.Good(h.Size)
	g.commit(g.sink, recs, nil, nil)
	gone, kept := every(recs)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, k := range gone {
		if !d.Present(t, g.pool, k) {
			t.Fatalf("written, %s has no bytes in the store", short(k))
		}
	}
	// Written again before the purge: its bytes stay.
	again, gone := gone[0], gone[1:]
	var againRec []record.Record
	for _, r := range recs {
		if r.Key == again {
			againRec = append(againRec, r)
		}
	}
	g.delete(append([]string{again}, gone...), at, false, false)
	for _, k := range gone {
		if !d.Present(t, g.pool, k) {
			t.Fatalf("deleted (hard), %s lost its bytes before Purge; they go only after the commit, with Purge", short(k))
		}
	}
	g.commit(g.sink, againRec, nil, nil)
	if err := p.Purge(ctx, append([]string{again}, gone...)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	for _, k := range gone {
		if d.Present(t, g.pool, k) {
			t.Errorf("purged, %s still has bytes in the store", short(k))
		}
	}
	if !d.Present(t, g.pool, again) {
		t.Errorf("%s, deleted then written again before Purge, lost its bytes", short(again))
	}
	for _, k := range kept {
		if !d.Present(t, g.pool, k) {
			t.Errorf("Purge of other records removed the bytes of %s", short(k))
		}
	}
	sameKeys(t, "purged", g.stored(), slices.Sorted(slices.Values(append(slices.Clone(kept), again))))
	if err := p.Purge(ctx, gone); err != nil {
		t.Fatalf("Purge of records already purged: %v", err)
	}
	if err := p.Purge(ctx, keys(h.Good(2 * h.Size)[h.Size:])); err != nil {
		t.Fatalf("Purge of keys never written: %v", err)
	}
	if err := p.Purge(ctx, nil); err != nil {
		t.Fatalf("Purge of no key: %v", err)
	}
}
