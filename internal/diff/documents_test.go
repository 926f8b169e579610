package diff

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/extractors"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// docsExtractor serves documents from memory as one stream, "c", in the
// order given (Firestore's, for the tests).
type docsExtractor struct{ recs []record.Record }

func (e *docsExtractor) Source() string { return "memory" }
func (e *docsExtractor) Close() error   { return nil }
func (e *docsExtractor) Plan(context.Context, int, time.Time) ([]extractors.Stream, error) {
	return []extractors.Stream{{Name: "c", Kind: record.KindDocument, Partitions: []extractors.Partition{{Stream: "c", ID: "p0"}}}}, nil
}

func (e *docsExtractor) Read(_ context.Context, _ extractors.Partition, _ time.Time, _ string, emit func(record.Record) error) error {
	for _, r := range e.recs {
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

func TestDocumentKeysCompareLikeFirestore(t *testing.T) {
	d := &Documents{order: fsx.IDOrder}
	ordered := [][]string{
		{"__id-5__"}, {"__id-5__", "__id2__"}, {"__id-5__", "a"}, {"__id1__"}, {"__id10__"},
		{"0"}, {"A"}, {"__id007__"}, {"b"}, {"b", "__id-1__"},
	}
	for i := range ordered {
		for j := range ordered {
			got := d.CompareKeys(ordered[i], ordered[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) || (i > j) != (got > 0) {
				t.Errorf("CompareKeys(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
}

// TestDocumentKeysCompareInByteOrderByDefault: without a source order,
// keys compare ID by ID in bytes, a prefix first.
func TestDocumentKeysCompareInByteOrderByDefault(t *testing.T) {
	in := mappings.NewInferrer(mappings.InferOptions{})
	in.Observe("c/x", nil)
	d, err := NewDocuments(in.Mapping(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ordered := [][]string{{"0"}, {"A"}, {"__id007__"}, {"__id10__"}, {"__id1__"}, {"__id1__", "a"}, {"b"}}
	for i := range ordered {
		for j := range ordered {
			got := d.CompareKeys(ordered[i], ordered[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) || (i > j) != (got > 0) {
				t.Errorf("CompareKeys(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
}

// TestCompareMergesNumericIDs: documents with numeric IDs arrive in
// Firestore's order (numeric IDs first, by value) and the target is read in
// the same order, so the merge pairs every document with its row, and a
// difference is reported under the document's name.
func TestCompareMergesNumericIDs(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)

	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var recs []record.Record
	for i, id := range []string{"__id1__", "__id10__", "__id-5__", "__id9__", "A", "b", "0", "__id007__"} {
		recs = append(recs, record.Record{Kind: record.KindDocument, Key: "c/" + id,
			Fields: map[string]record.Value{"n": record.Int(int64(i))}, CreateTime: ts, UpdateTime: ts})
		for j, sub := range []string{"__id2__", "__id-2__", "x"} {
			recs = append(recs, record.Record{Kind: record.KindDocument, Key: "c/" + id + "/s/" + sub,
				Fields: map[string]record.Value{"n": record.Int(int64(j))}, CreateTime: ts, UpdateTime: ts})
		}
	}
	slices.SortFunc(recs, func(a, b record.Record) int { return fsx.ComparePaths(a.Key, b.Key) })

	in := mappings.NewInferrer(mappings.InferOptions{})
	for _, r := range recs {
		in.Observe(r.Key, r.Fields)
	}
	m := in.Mapping()
	sink, err := postgres.NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := sink.Write(ctx, tx, recs)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	compare := func() *Report {
		t.Helper()
		a, err := NewDocuments(m, fsx.IDOrder)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Compare(ctx, &docsExtractor{recs}, pool, a, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := compare()
	if !rep.Identical() {
		t.Fatalf("after loading, the target differs: %+v", rep.Tables)
	}
	for _, tr := range rep.Tables {
		if tr.Matching != tr.Source || tr.Matching == 0 {
			t.Errorf("table %s: %d of %d source documents matching", tr.Table, tr.Matching, tr.Source)
		}
	}

	// One changed row, one deleted: each named by its document.
	sub := m.TableFor("c/{}/s")
	if _, err := pool.Exec(ctx, "UPDATE "+pgx.Identifier{m.Schema, sub.Name}.Sanitize()+` SET n = 42 WHERE c_id = '__id10__' AND id = '__id-2__'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "DELETE FROM "+pgx.Identifier{m.Schema, sub.Name}.Sanitize()+` WHERE c_id = '__id-5__' AND id = '__id2__'`); err != nil {
		t.Fatal(err)
	}
	rep = compare()
	for _, tr := range rep.Tables {
		if tr.Table != sub.Name {
			if !tr.Identical() {
				t.Errorf("table %s differs: %+v", tr.Table, tr)
			}
			continue
		}
		want := []Sample{
			{Outcome: MissingInTarget, Key: "c/__id-5__/s/__id2__"},
			{Outcome: Mismatched, Key: "c/__id10__/s/__id-2__", Fields: []string{"n"}},
		}
		if tr.Mismatched != 1 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 0 || tr.Matching != tr.Source-2 ||
			!slices.EqualFunc(tr.Samples, want, func(a, b Sample) bool {
				return a.Outcome == b.Outcome && a.Key == b.Key && slices.Equal(a.Fields, b.Fields)
			}) {
			t.Errorf("table %s: %+v, want one mismatched and one missing document: %+v", tr.Table, tr, want)
		}
	}
}
