package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
)

// TestNumericDocumentIDs migrates collections whose documents mix legacy
// numeric IDs (__id<n>__, which Firestore orders first, by value) with
// string IDs, subcollections included, over several partitions read in
// small pages: every document is read exactly once and lands intact,
// verify finds the target identical, and a tampered row is named.
func TestNumericDocumentIDs(t *testing.T) {
	f := newDocsFixture(t)
	var docs []demoapp.Doc
	add := func(path string, n int) {
		docs = append(docs, demoapp.Doc{Path: path, Fields: map[string]any{"n": n, "path": path}})
	}
	// The IDs of the review, and enough more of both kinds that split
	// points and page boundaries fall among numeric and string IDs.
	for i, id := range []string{"__id1__", "__id10__", "__id-5__", "A", "b", "0"} {
		add("legacy/"+id, i)
	}
	for i := range 40 {
		add(fmt.Sprintf("legacy/__id%d__", i*i*37-600), 100+i)
		add(fmt.Sprintf("legacy/s%02d", i), 200+i)
	}
	for i, p := range []string{
		"legacy/__id10__/lines/__id2__", "legacy/__id10__/lines/__id-2__", "legacy/__id10__/lines/x",
		"legacy/b/lines/__id-1__", "legacy/__id-5__/lines/__id3__/notes/n1", "legacy/__id-5__/lines/__id3__/notes/__id9__",
		"legacy/__id77__/lines/y", // under a numeric parent that does not exist
		"alpha/__id2__", "alpha/a", "alpha/__id2__/lines/__id1__",
	} {
		add(p, 300+i)
	}
	f.seed(docs)
	mapping := f.infer()

	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--workers", "6", "--batch-size", "5",
		"--firestore-page-size", "7", "--summary", sum)
	s := f.summary(sum)
	checkBalance(t, s)
	src := f.sourceDocs("legacy", "lines", "notes", "alpha")
	if len(src) != len(docs) {
		t.Fatalf("the source holds %d documents, %d were seeded", len(src), len(docs))
	}
	if s.Totals.Read != int64(len(src)) || s.Totals.Rejected != 0 {
		t.Fatalf("summary: read %d, rejected %d; the source has %d documents (a partition overlap reads some twice)",
			s.Totals.Read, s.Totals.Rejected, len(src))
	}
	compareDocs(t, src, f.targetDocs(loadMapping(t, mapping)))

	res := f.run(0, "verify", "--only", "documents", "--format", "json")
	if v := compareDoc(t, res.Stdout); !v.Identical {
		t.Fatalf("verify after migrate is not identical: %s", res.Stdout)
	}

	if _, err := f.pool.Exec(context.Background(), `UPDATE legacy_lines SET n = -1 WHERE legacy_id = '__id10__' AND id = '__id2__'`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, "verify", "--only", "documents", "--format", "json")
	for name, tr := range tableReports(t, compareDoc(t, res.Stdout), "document") {
		if name != "legacy_lines" {
			if !tr.Identical() {
				t.Errorf("table %s: %+v; want identical", name, tr)
			}
			continue
		}
		if tr.Mismatched != 1 || tr.MissingInTarget != 0 || tr.ExtraInTarget != 0 || tr.Matching != tr.Source-1 ||
			len(tr.Samples) != 1 || tr.Samples[0].Key != "legacy/__id10__/lines/__id2__" || strings.Join(tr.Samples[0].Fields, ",") != "n" {
			t.Errorf("table %s: %+v; want legacy/__id10__/lines/__id2__ mismatched in n", name, tr)
		}
	}
}
