package migration_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/erasure"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestExcludedRecordsAreCountedNeverStored: records Options.Exclude names
// (an erasure list's documents: the last of each root collection, so that
// partitions end on excluded records, and some in between) are counted
// under ExcludedTable, never written, and no checkpoint holds their
// cursor; read = loaded + rejected + excluded for every table.
func TestExcludedRecordsAreCountedNeverStored(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	last := map[string]string{} // root collection → its greatest key
	var list strings.Builder
	for i, r := range f.recs {
		root, _, _ := strings.Cut(r.Key, "/")
		last[root] = max(last[root], r.Key)
		if i%37 == 0 {
			list.WriteString("doc:" + r.Key + "\n")
		}
	}
	for _, k := range last {
		list.WriteString("doc:" + k + "\n")
	}
	l, err := erasure.Parse([]byte(list.String()))
	if err != nil {
		t.Fatal(err)
	}
	excluded := 0
	for _, r := range f.recs {
		if l.Excludes(record.KindDocument, r.Key) {
			excluded++
		}
	}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, f.sink(t)), migration.Options{Workers: 4, BatchSize: 40, Exclude: l.For(record.KindDocument)})
	if err != nil {
		t.Fatal(err)
	}
	if rows := f.rows(t); rows != int64(f.docs-excluded) {
		t.Fatalf("%d rows, want %d (%d documents, %d excluded)", rows, f.docs-excluded, f.docs, excluded)
	}
	sum, err := f.state.Summary(ctx, res.Run)
	if err != nil {
		t.Fatal(err)
	}
	var read, counted int64
	for _, ts := range sum {
		read += ts.Read
		counted += ts.Excluded
		if ts.Read != ts.Loaded()+ts.Rejected+ts.Excluded || ts.Loaded() < 0 || (ts.Excluded > 0) != (ts.Table == migration.ExcludedTable) {
			t.Errorf("table %s: %+v", ts.Table, ts)
		}
	}
	if d, ok := res.WriteTimes[migration.ExcludedTable]; ok {
		t.Errorf("%s has a write time (%v): nothing is written there", migration.ExcludedTable, d)
	}
	if read != int64(f.docs) || counted != int64(excluded) {
		t.Fatalf("read %d, excluded %d; want %d, %d", read, counted, f.docs, excluded)
	}
	rows, err := f.pool.Query(ctx, `SELECT cursor FROM baasmigrate.partitions UNION ALL SELECT source_key FROM baasmigrate.rejects`)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(stored, func(s string) bool { return l.Excludes(record.KindDocument, s) }); i >= 0 {
		t.Fatalf("the state holds the excluded key %q", stored[i])
	}
}
