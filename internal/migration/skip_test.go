package migration_test

import (
	"context"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestSkippedRecordsAreCounted: records an extractor marks (record.Skip)
// never reach the sink; those skipped on purpose are counted as read and
// excluded under SkippedTable of their target table, those it could not
// read as read and rejected in their target table, stored as rejects with
// their reason; read = loaded + rejected + excluded everywhere.
func TestSkippedRecordsAreCounted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	skipped, unreadable := 0, 0
	for i := range f.recs {
		switch {
		case i%29 == 3:
			f.recs[i].Skip = &record.Skip{Reason: "a tombstone"}
			f.recs[i].Fields = nil
			skipped++
		case i%31 == 5:
			f.recs[i].Skip = &record.Skip{Reject: true, Reason: "line 7 is not an item"}
			f.recs[i].Fields = map[string]record.Value{"line": record.Int(7)}
			unreadable++
		}
	}
	res, err := migration.Execute(ctx, f.pool, f.state, f.job(t, f.sink(t)), migration.Options{Workers: 4, BatchSize: 40})
	if err != nil {
		t.Fatal(err)
	}
	if rows := f.rows(t); rows != int64(f.docs-skipped-unreadable) {
		t.Fatalf("%d rows, want %d (%d documents, %d skipped, %d unreadable)", rows, f.docs-skipped-unreadable, f.docs, skipped, unreadable)
	}
	tables := map[string]bool{}
	for _, tb := range f.mapping.Tables {
		tables[tb.Name] = true
	}
	var read, excluded, rejected int64
	for _, ts := range res.Tables {
		read += ts.Read
		excluded += ts.Excluded
		rejected += ts.Rejected
		base, isSkip := strings.CutSuffix(ts.Table, " (skipped: a tombstone)")
		if ts.Read != ts.Loaded()+ts.Rejected+ts.Excluded || !tables[base] || isSkip != (ts.Excluded > 0) || (isSkip && ts.Read != ts.Excluded) {
			t.Errorf("table %s: %+v", ts.Table, ts)
		}
		if _, ok := res.WriteTimes[ts.Table]; isSkip && ok {
			t.Errorf("%s has a write time: nothing is written there", ts.Table)
		}
	}
	if read != int64(f.docs) || excluded != int64(skipped) || rejected != int64(unreadable) {
		t.Fatalf("read %d, excluded %d, rejected %d; want %d, %d, %d", read, excluded, rejected, f.docs, skipped, unreadable)
	}
	var stored int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM baasmigrate.rejects WHERE reason = 'line 7 is not an item'
		AND record->'fields'->'line' IS NOT NULL AND target_table NOT LIKE '(%'`).Scan(&stored); err != nil || stored != unreadable {
		t.Fatalf("%d rejects stored with their reason and target table, %v; want %d", stored, err, unreadable)
	}
}
