package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/memory"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// source returns documents in three root collections (one with a single
// record, keys with unicode, NUL and bytes that sort around "/", and
// subcollections of documents whose IDs are prefixes of others, where
// whole-key and segment orders differ) and users in a stream of their own.
func source() []record.Record {
	t0 := time.Date(2023, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var recs []record.Record
	add := func(kind record.Kind, key string, i int) {
		recs = append(recs, record.Record{
			Kind: kind, Key: key, CreateTime: t0.Add(time.Duration(i) * time.Second), UpdateTime: t0.Add(time.Duration(i) * time.Minute),
			Fields: map[string]record.Value{"n": record.Int(int64(i)), "key": record.String(key)},
		})
	}
	for i := range 60 {
		add(record.KindDocument, fmt.Sprintf("users/u%03d", i), i)
		if i%3 == 0 {
			add(record.KindDocument, fmt.Sprintf("users/u%03d/orders/o%d", i, i), i)
		}
	}
	for i, k := range []string{"posts/é", "posts/a-b", "posts/a\x00b", "posts/a", "posts/Z", "posts/日本", "posts/a.b", "posts/a0"} {
		add(record.KindDocument, k, 100+i)
	}
	for i, k := range []string{"posts/a/comments/c1", "posts/a-b/comments/c2", "posts/a/comments/c1/likes/l", "posts/a\x00b/x/y"} {
		add(record.KindDocument, k, 150+i)
	}
	add(record.KindDocument, "single/only", 200)
	for i := range 25 {
		add(record.KindUser, fmt.Sprintf("uid-%02d", i), 300+i)
	}
	return recs
}

func streamOf(r record.Record) string {
	if r.Kind == record.KindUser {
		return "users"
	}
	s, _, _ := strings.Cut(r.Key, "/")
	return "documents:" + s
}

func newSource(t *testing.T, opts memory.Options) *memory.Extractor {
	t.Helper()
	if opts.StreamOf == nil {
		opts.StreamOf = streamOf
	}
	ex, err := memory.New(source(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestConformance(t *testing.T) {
	want := map[string]record.Record{}
	for _, r := range source() {
		want[r.Key] = r
	}
	extractortest.Run(t, extractortest.Harness{
		New:         func(t *testing.T) extractors.Extractor { return newSource(t, memory.Options{Name: "conformance"}) },
		Want:        want,
		Times:       true,
		Partitions:  []int{1, 2, 3, 8, 500},
		ResumeEvery: 1,
	})
}

// TestPartitionsAreKeyRangesInKeyOrder: every partition delivers its keys
// in the extractor's order (documents segment by segment), within
// [Start, End), and the ranges of a stream follow each other.
func TestPartitionsAreKeyRangesInKeyOrder(t *testing.T) {
	ctx := context.Background()
	ex := newSource(t, memory.Options{})
	if ex.KeyOrder() != record.ByteOrder {
		t.Fatal("KeyOrder is not record.ByteOrder")
	}
	streams, err := ex.Plan(ctx, 4, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range streams {
		cmp := func(a, b string) int { return extractortest.KeyCompare(record.ByteOrder, st.Kind, a, b) }
		for i, p := range st.Partitions {
			if (i == 0) != (p.Start == "") || (i == len(st.Partitions)-1) != (p.End == "") {
				t.Errorf("%s/%s: open bounds only at the stream's ends: %+v", st.Name, p.ID, p)
			}
			if i > 0 && st.Partitions[i-1].End != p.Start {
				t.Errorf("%s: partition %s starts at %q, the previous ends at %q", st.Name, p.ID, p.Start, st.Partitions[i-1].End)
			}
			var keys []string
			if err := ex.Read(ctx, p, time.Time{}, "", func(r record.Record) error {
				if r.Cursor != r.Key {
					t.Errorf("%q: cursor %q, want the key", r.Key, r.Cursor)
				}
				keys = append(keys, r.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(keys, cmp) {
				t.Errorf("%s/%s: keys out of order: %q", st.Name, p.ID, keys)
			}
			for _, k := range keys {
				if (p.Start != "" && cmp(k, p.Start) < 0) || (p.End != "" && cmp(k, p.End) >= 0) {
					t.Errorf("%s/%s: key %q outside [%q, %q)", st.Name, p.ID, k, p.Start, p.End)
				}
			}
		}
	}
}

// readKeys reads every stream of ex with n partitions and returns its keys
// in the order read.
func readKeys(t *testing.T, ex *memory.Extractor, n int) []string {
	t.Helper()
	ctx := context.Background()
	streams, err := ex.Plan(ctx, n, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, st := range streams {
		for _, p := range st.Partitions {
			if err := ex.Read(ctx, p, time.Time{}, "", func(r record.Record) error {
				keys = append(keys, r.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys
}

// TestDocumentsInSegmentOrder: documents come path segment by path
// segment, as diff.Documents.CompareKeys merges them and the loaders read
// tables ("users/a/orders/x" before "users/a-b", which whole-key byte
// order puts first since '-' < '/'); users and files keep whole-key order
// (the users table is read ORDER BY uid COLLATE "C").
func TestDocumentsInSegmentOrder(t *testing.T) {
	recs := []record.Record{
		{Kind: record.KindDocument, Key: "users/a-b"},
		{Kind: record.KindDocument, Key: "users/a/orders/x"},
		{Kind: record.KindDocument, Key: "users/a"},
		{Kind: record.KindDocument, Key: "users/a/orders/x/items/1"},
		{Kind: record.KindDocument, Key: "users/a.b"},
		{Kind: record.KindDocument, Key: "users/a/orders/x-y"},
		{Kind: record.KindFile, Key: "img/a/x.png"},
		{Kind: record.KindFile, Key: "img/a-b.png"},
		{Kind: record.KindUser, Key: "u/a/x"},
		{Kind: record.KindUser, Key: "u/a-b"},
	}
	byKind := func(r record.Record) string { return string(r.Kind) }
	ex, err := memory.New(recs, memory.Options{StreamOf: byKind})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"users/a", "users/a/orders/x", "users/a/orders/x/items/1", "users/a/orders/x-y", "users/a-b", "users/a.b", // document
		"img/a-b.png", "img/a/x.png", // file: bytes
		"u/a-b", "u/a/x", // user: bytes
	}
	for _, n := range []int{1, 2, 4} {
		if got := readKeys(t, ex, n); !slices.Equal(got, want) {
			t.Errorf("%d partitions: read\n %q\nwant\n %q", n, got, want)
		}
	}
	if record.ByteOrder.Compare("users/a-b", "users/a/orders/x") >= 0 {
		t.Fatal("the example does not tell the orders apart")
	}
}

// lengthFirst orders IDs by length, then bytes: an order of its own, to
// see Options.Order applied to each segment.
type lengthFirst struct{}

func (lengthFirst) Compare(a, b string) int {
	if c := len(a) - len(b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
func (lengthFirst) OrderBy(col string) string { return "length(" + col + "), " + col + ` COLLATE "C"` }

// TestOrderOption: Options.Order is the key order, applied per segment to
// documents and to the whole uid of users (files keep byte order), and the
// suite holds with it (partitions and cursors found by that order).
func TestOrderOption(t *testing.T) {
	recs := []record.Record{
		{Kind: record.KindDocument, Key: "c/ccc"},
		{Kind: record.KindDocument, Key: "c/bb/s/x"},
		{Kind: record.KindDocument, Key: "c/a/s/yy"},
		{Kind: record.KindDocument, Key: "c/a/s/y"},
		{Kind: record.KindUser, Key: "zz"},
		{Kind: record.KindUser, Key: "aaa"},
		{Kind: record.KindUser, Key: "b"},
		{Kind: record.KindFile, Key: "ccc"},
		{Kind: record.KindFile, Key: "bb.txt"},
		{Kind: record.KindFile, Key: "a.txt"},
	}
	byKind := func(r record.Record) string { return string(r.Kind) }
	ex, err := memory.New(recs, memory.Options{StreamOf: byKind, Order: lengthFirst{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ex.KeyOrder().(lengthFirst); !ok {
		t.Fatalf("KeyOrder = %T", ex.KeyOrder())
	}
	want := []string{"c/a/s/y", "c/a/s/yy", "c/bb/s/x", "c/ccc", "a.txt", "bb.txt", "ccc", "b", "zz", "aaa"} // document, file, user streams
	for _, n := range []int{1, 3} {
		if got := readKeys(t, ex, n); !slices.Equal(got, want) {
			t.Errorf("%d partitions: read %q, want %q", n, got, want)
		}
	}
	all := map[string]record.Record{}
	for _, r := range source() {
		all[r.Key] = r
	}
	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			ex, err := memory.New(source(), memory.Options{StreamOf: streamOf, Order: lengthFirst{}})
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
		Want: all, Times: true, Partitions: []int{1, 3, 8}, ResumeEvery: 1,
	})
}

// TestCountsAndBillableReads: Count is the number of records a stream's
// partitions hold, and every record emitted is one billable read.
func TestCountsAndBillableReads(t *testing.T) {
	ctx := context.Background()
	ex := newSource(t, memory.Options{})
	streams, err := ex.Plan(ctx, 3, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var total, emitted int64
	for _, st := range streams {
		n, err := ex.Count(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		var read int64
		for _, p := range st.Partitions {
			if err := ex.Read(ctx, p, time.Time{}, "", func(record.Record) error { read++; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if read != n {
			t.Errorf("stream %s: Count %d, read %d", st.Name, n, read)
		}
		emitted += read
	}
	if total != int64(len(source())) || ex.BillableReads() != emitted {
		t.Fatalf("counted %d of %d records; %d billable reads for %d emitted", total, len(source()), ex.BillableReads(), emitted)
	}
}

// TestSnapshotsExpireWithTheClock: a read time stays readable for the
// window of the fake clock, then fails with ErrSnapshotExpired; the zero
// read time always reads.
func TestSnapshotsExpireWithTheClock(t *testing.T) {
	ctx := context.Background()
	clock := memory.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 999, time.UTC))
	ex := newSource(t, memory.Options{Clock: clock, Window: time.Minute})
	rt, err := ex.SnapshotTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Equal(clock.Now().Truncate(time.Microsecond)) || ex.SnapshotWindow() != time.Minute {
		t.Fatalf("SnapshotTime %v, window %v", rt, ex.SnapshotWindow())
	}
	streams, err := ex.Plan(ctx, 1, rt)
	if err != nil {
		t.Fatal(err)
	}
	p := streams[0].Partitions[0]
	read := func(at time.Time) error {
		return ex.Read(ctx, p, at, "", func(record.Record) error { return nil })
	}
	clock.Advance(time.Minute - time.Microsecond)
	if err := read(rt); err != nil {
		t.Fatalf("within the window: %v", err)
	}
	clock.Advance(time.Microsecond)
	if err := read(rt); !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Fatalf("after the window: %v, want ErrSnapshotExpired", err)
	}
	if err := read(time.Time{}); err != nil {
		t.Fatalf("the latest data: %v", err)
	}
	// The clock moving during a read ends it there, after the records
	// read so far.
	rt, _ = ex.SnapshotTime(ctx)
	var got []string
	err = ex.Read(ctx, p, rt, "", func(r record.Record) error {
		got = append(got, r.Key)
		if len(got) == 3 {
			clock.Advance(time.Hour)
		}
		return nil
	})
	if !errors.Is(err, extractors.ErrSnapshotExpired) || len(got) != 3 {
		t.Fatalf("the window passed during a read: %v after %d records; want ErrSnapshotExpired after 3", err, len(got))
	}
}

// TestDefaultStreams: without StreamOf, documents are streamed by root
// collection and other records in one stream per kind (so a root
// collection named "users" next to users needs a StreamOf).
func TestDefaultStreams(t *testing.T) {
	recs := []record.Record{
		{Kind: record.KindDocument, Key: "people/a"}, {Kind: record.KindDocument, Key: "people/a/orders/x"},
		{Kind: record.KindDocument, Key: "posts/p"}, {Kind: record.KindUser, Key: "u-1"}, {Kind: record.KindUser, Key: "u/2"},
		{Kind: record.KindFile, Key: "img/a.png"}, {Kind: record.KindFile, Key: "notes.txt"},
	}
	ex, err := memory.New(recs, memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	streams, err := ex.Plan(context.Background(), 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range streams {
		n, _ := ex.Count(context.Background(), st)
		got = append(got, fmt.Sprintf("%s:%s:%d", st.Name, st.Kind, n))
	}
	if want := []string{"files:file:2", "people:document:2", "posts:document:1", "users:user:2"}; !slices.Equal(got, want) {
		t.Errorf("streams %q, want %q", got, want)
	}
}

// TestRefusesAmbiguousSources: duplicate or empty keys, and a stream of two
// kinds, are errors.
func TestRefusesAmbiguousSources(t *testing.T) {
	doc := func(k string) record.Record { return record.Record{Kind: record.KindDocument, Key: k} }
	for name, recs := range map[string][]record.Record{
		"duplicate key": {doc("a/1"), doc("a/1")},
		"empty key":     {doc("")},
		"no kind":       {{Key: "a/1"}},
		"mixed kinds":   {doc("a/1"), {Kind: record.KindUser, Key: "a/2"}},
	} {
		oneStream := func(record.Record) string { return "a" }
		if _, err := memory.New(recs, memory.Options{Name: "x", StreamOf: oneStream}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestEmptySourceAndClose: an empty source plans no stream; a closed
// extractor refuses to read.
func TestEmptySourceAndClose(t *testing.T) {
	ctx := context.Background()
	ex, err := memory.New(nil, memory.Options{Name: "empty"})
	if err != nil {
		t.Fatal(err)
	}
	if streams, err := ex.Plan(ctx, 4, time.Time{}); err != nil || len(streams) != 0 {
		t.Fatalf("Plan of an empty source: %v, %v", streams, err)
	}
	if ex.Source() != "memory:empty" {
		t.Fatalf("Source = %q", ex.Source())
	}
	ex = newSource(t, memory.Options{})
	streams, _ := ex.Plan(ctx, 1, time.Time{})
	ex.Close()
	if err := ex.Read(ctx, streams[0].Partitions[0], time.Time{}, "", func(record.Record) error { return nil }); err == nil {
		t.Fatal("a closed extractor read")
	}
}

// TestNotRegistered: the package adds nothing to the registry, so no
// --source can name it.
func TestNotRegistered(t *testing.T) {
	if all := extractors.All(); len(all) != 0 {
		t.Fatalf("registered: %+v", all)
	}
}

// changeSource is an empty memory source for the change-stream suite:
// documents in collection "items" (the hinted one) and in collections
// "later<i>" that no hint names.
func changeSource(t *testing.T) extractortest.ChangeSource {
	ex, err := memory.New(nil, memory.Options{Name: "changes"})
	if err != nil {
		t.Fatal(err)
	}
	return extractortest.ChangeSource{
		Extractor: ex,
		Hints:     extractors.ChangeHints{Collections: []string{"items"}},
		Key:       func(i int) string { return fmt.Sprintf("items/k%d", i) },
		Unhinted:  func(i int) string { return fmt.Sprintf("later%d/k", i) },
		Put: func(_ context.Context, key string, fields map[string]record.Value) error {
			_, err := ex.Put(record.Record{Kind: record.KindDocument, Key: key, Fields: fields})
			return err
		},
		Delete: func(_ context.Context, key string) error {
			_, err := ex.Delete(key)
			return err
		},
	}
}

func TestChangeStreamConformance(t *testing.T) {
	extractortest.ChangeStream(t, extractortest.ChangeHarness{New: changeSource, Window: memory.DefaultWindow})
}

// TestChangesAreReadAtTheirTimes: after Put and Delete, Plan, Read and
// Count at a read time see the records as they were then (a stream whose
// records are all deleted is no longer planned), the zero read time the
// latest; the records given to New are there at every time; Put sets the
// times and keeps a key's and a stream's kind.
func TestChangesAreReadAtTheirTimes(t *testing.T) {
	ctx := context.Background()
	doc := func(key string, n int64) record.Record {
		return record.Record{Kind: record.KindDocument, Key: key, Fields: map[string]record.Value{"n": record.Int(n)}}
	}
	clock := memory.NewClock(memory.Epoch)
	ex, err := memory.New([]record.Record{doc("a/1", 0)}, memory.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t0, _ := ex.SnapshotTime(ctx)
	c1, err := ex.Put(doc("a/2", 1))
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := ex.Put(doc("b/1", 2))
	t1, _ := ex.SnapshotTime(ctx)
	c3, _ := ex.Put(doc("a/2", 3))
	if _, err := ex.Delete("b/1"); err != nil {
		t.Fatal(err)
	}
	if !(t0.Before(c1) && c1.Before(c2) && !c2.After(t1) && t1.Before(c3)) {
		t.Fatalf("commit times %v %v %v around snapshot times %v %v do not follow each other", c1, c2, c3, t0, t1)
	}
	state := func(at time.Time) string {
		t.Helper()
		streams, err := ex.Plan(ctx, 2, at)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, st := range streams {
			st.ReadTime = at
			n, err := ex.Count(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s(%d):", st.Name, n))
			for _, p := range st.Partitions {
				if err := ex.Read(ctx, p, at, "", func(r record.Record) error {
					out = append(out, fmt.Sprintf("%s=%d", r.Key, r.Fields["n"].IntValue()))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{t0, "a(1): a/1=0"},
		{t1, "a(2): a/1=0 a/2=1 b(1): b/1=2"},
		{time.Time{}, "a(2): a/1=0 a/2=3"},
	} {
		if got := state(c.at); got != c.want {
			t.Errorf("at %v: %s; want %s", c.at, got, c.want)
		}
	}
	var got *record.Record
	if err := ex.Get(ctx, []string{"a/2"}, time.Time{}, func(_ string, r *record.Record) error { got = r; return nil }); err != nil || got == nil {
		t.Fatalf("Get: %v, %v", got, err)
	}
	if !got.CreateTime.Equal(c1) || !got.UpdateTime.Equal(c3) {
		t.Errorf("a/2: created %v, updated %v; want %v, %v", got.CreateTime, got.UpdateTime, c1, c3)
	}
	if _, err := ex.Put(record.Record{Kind: record.KindUser, Key: "u1"}); err != nil { // into stream "users"
		t.Fatal(err)
	}
	for name, put := range map[string]func() error{
		"a user where a document is": func() error { _, err := ex.Put(record.Record{Kind: record.KindUser, Key: "a/2"}); return err },
		"a document in users' stream": func() error {
			_, err := ex.Put(record.Record{Kind: record.KindDocument, Key: "users/x"})
			return err
		},
		"a record without a key":      func() error { _, err := ex.Put(record.Record{Kind: record.KindDocument}); return err },
		"the delete of a missing key": func() error { _, err := ex.Delete("b/1"); return err },
	} {
		if err := put(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestChangesFollowTheClock: Changes delivers a batch when it starts and
// one each time the clock moves (a heartbeat when nothing was committed),
// counts every change delivered as a billable read, ends when the
// extractor is closed, and refuses a position it did not make.
func TestChangesFollowTheClock(t *testing.T) {
	ctx := context.Background()
	clock := memory.NewClock(memory.Epoch)
	ex, err := memory.New(nil, memory.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	from, err := ex.PositionAt(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Put(record.Record{Kind: record.KindDocument, Key: "a/1"}); err != nil {
		t.Fatal(err)
	}
	if err := ex.Changes(ctx, "yesterday", extractors.ChangeHints{}, func(record.ChangeBatch) error { return nil }); err == nil {
		t.Error("Changes from a position it did not make: no error")
	}
	batches := make(chan record.ChangeBatch)
	done := make(chan error, 1)
	go func() {
		done <- ex.Changes(ctx, from, extractors.ChangeHints{}, func(b record.ChangeBatch) error {
			batches <- b
			return nil
		})
	}()
	b := <-batches
	if len(b.Changes) != 1 || b.Changes[0].Record.Key != "a/1" || !b.ReadTime.Equal(memory.Epoch.Add(time.Microsecond)) {
		t.Fatalf("first batch %+v; want the put of a/1, consistent at its commit", b)
	}
	clock.Advance(time.Second)
	if b := <-batches; len(b.Changes) != 0 || !b.ReadTime.Equal(memory.Epoch.Add(time.Second+time.Microsecond)) {
		t.Fatalf("after Advance: %+v; want a heartbeat at the clock's time", b)
	}
	if n := ex.BillableReads(); n != 1 {
		t.Errorf("%d billable reads; want 1, for the change delivered", n)
	}
	ex.Close()
	if err := <-done; err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Changes of a closed extractor returned %v; want an error saying so", err)
	}
}
