package diff

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// TestCompareNamesRowsAnUnorderedSourceLacks: documents from a source in no
// key order (LookUpByKey) are looked up by key, and with OnDifference the
// rows the source lacks are named, each once, by their document key
// (ScanUnseen), among hostile IDs; rows the source has are not.
func TestCompareNamesRowsAnUnorderedSourceLacks(t *testing.T) {
	ctx := context.Background()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	doc := func(id string, n int64) record.Record {
		return record.Record{Kind: record.KindDocument, Key: "c/" + id, Fields: map[string]record.Value{"n": record.Int(n)}, CreateTime: ts, UpdateTime: ts}
	}
	var target []record.Record
	for i := range 1200 { // more than a lookup batch and a cursor chunk
		id := fmt.Sprintf("d%04d", i)
		if i%100 == 7 {
			id = fmt.Sprintf("a%%2Fb'\"|%d 🙂", i)
		}
		target = append(target, doc(id, int64(i)))
	}
	pool, m := loadDocuments(t, target)
	// The source: every other of the target's documents, backwards (no
	// key order), one of them changed, and one the target lacks.
	var source []record.Record
	var lacks []string
	for i := len(target) - 1; i >= 0; i-- {
		if i%2 == 1 {
			lacks = append(lacks, target[i].Key)
			continue
		}
		r := target[i]
		if i == 500 {
			r = doc(r.Key[2:], -1)
		}
		source = append(source, r)
	}
	source = append(source, doc("new", 1))
	a, err := NewDocuments(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.LookUpByKey()
	var mu sync.Mutex
	got := map[string][]string{}
	rep, err := Compare(ctx, &docsExtractor{source}, pool, a, Options{OnDifference: func(_ context.Context, d Difference) error {
		mu.Lock()
		defer mu.Unlock()
		got[d.Outcome] = append(got[d.Outcome], d.Key)
		if (d.Outcome == ExtraInTarget) != (d.Source == nil) {
			t.Errorf("%s %q: source record %v", d.Outcome, d.Key, d.Source)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lacks)
	slices.Sort(got[ExtraInTarget])
	if !slices.Equal(got[ExtraInTarget], lacks) {
		t.Errorf("rows the source lacks: named %d, want %d (first named %q, first wanted %q)", len(got[ExtraInTarget]), len(lacks), first(got[ExtraInTarget]), first(lacks))
	}
	if !slices.Equal(got[Mismatched], []string{target[500].Key}) || !slices.Equal(got[MissingInTarget], []string{"c/new"}) {
		t.Errorf("mismatched %q, missing %q; want %q and c/new", got[Mismatched], got[MissingInTarget], target[500].Key)
	}
	var extra int64
	for _, tr := range rep.Tables {
		extra += tr.ExtraInTarget
	}
	if extra != int64(len(lacks)) {
		t.Errorf("the report counts %d extra rows, want %d", extra, len(lacks))
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
