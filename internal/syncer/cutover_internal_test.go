package syncer

import (
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/diff"
)

// A cutover that finds records of a collection without a table says why
// that happens under sync and what to do, beside the counts.
func TestReportDifferencesExplainsCollectionsWithoutATable(t *testing.T) {
	rep := &diff.Report{Tables: []*diff.TableReport{
		{Table: "items", Source: 3, Matching: 2, Mismatched: 1},
		{Table: "(no table for items/{}/notes)", Source: 1, Rejected: 1},
	}}
	got := strings.Join(reportDifferences(rep), "\n")
	if !strings.Contains(got, "items: 1 mismatched") || !strings.Contains(got, "(no table for items/{}/notes): 0 mismatched, 0 missing in target, 0 extra in target, 1 rejected") {
		t.Fatalf("differences:\n%s", got)
	}
	if n := strings.Count(got, "count check"); n != 1 {
		t.Fatalf("the hint about sync's count check appears %d times, want once (for the table-less collection):\n%s", n, got)
	}
}
