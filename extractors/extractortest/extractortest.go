// Package extractortest is the conformance suite every extractor passes:
// partitions cover the source exactly once, reading from any cursor a read
// returned yields exactly the remainder, values round-trip, every stream
// comes in the extractor's key order (byte order without one),
// users and files come in one stream each, the caller's errors come back
// unchanged, and source failures are classified as retryable or not.
//
// An extractor's own test seeds a real source (an emulator or a file) and
// calls Run:
//
//	extractortest.Run(t, extractortest.Harness{
//		New:  func(t *testing.T) extractors.Extractor { ... },
//		Want: wantRecords,
//	})
//
// An extractor with a change stream (extractors.ChangeStreamer) also passes
// ChangeStream, over a source the suite writes to through a ChangeHarness.
package extractortest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Harness describes the extractor under test and the source it reads.
type Harness struct {
	// New returns an extractor reading the seeded source. It is called once
	// per sub-test; the suite closes what it returns.
	New func(t *testing.T) extractors.Extractor
	// Want holds every record the source holds, by key. The suite compares
	// keys, fields and, when Times is set, create and update times.
	Want  map[string]record.Record
	Times bool
	// Partitions lists the partition counts to plan with (default 1, 3, 8).
	Partitions []int
	// Unreachable, if set, returns an extractor whose source does not answer
	// (a closed port), configured to give up quickly. Its errors must be
	// classified retryable (retry.IsRetryable).
	Unreachable func(t *testing.T) extractors.Extractor
	// ResumeEvery checks resumption from every n-th cursor (default 7).
	ResumeEvery int
	// PartitionFields are fields an extractor sets on the first record of
	// a partition read from its start, describing the partition rather
	// than the record (the tables extractor's range to clear first). The
	// suite leaves them out of the comparison with Want and checks that no
	// other record carries them.
	PartitionFields []string
	// Comparing, if set, returns an extractor reading the source as plan
	// and verify do, when that differs from migrate's read (the tables
	// extractor's ForComparison): InKeyOrder checks its order instead.
	Comparing func(t *testing.T) extractors.Extractor
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if len(h.Partitions) == 0 {
		h.Partitions = []int{1, 3, 8}
	}
	if h.ResumeEvery < 1 {
		h.ResumeEvery = 7
	}
	for _, n := range h.Partitions {
		t.Run(fmt.Sprintf("CoverExactlyOnce/%d", n), func(t *testing.T) { coverExactlyOnce(t, h, n) })
	}
	for _, n := range h.Partitions {
		t.Run(fmt.Sprintf("InKeyOrder/%d", n), func(t *testing.T) { inKeyOrder(t, h, n) })
	}
	t.Run("UsersAndFilesInOneStream", func(t *testing.T) { oneStreamPerKind(t, h) })
	t.Run("ResumeFromEveryCursor", func(t *testing.T) { resume(t, h) })
	t.Run("CallerErrorsComeBackUnchanged", func(t *testing.T) { callerErrors(t, h) })
	if h.Unreachable != nil {
		t.Run("UnreachableIsRetryable", func(t *testing.T) { unreachable(t, h) })
	}
}

func open(t *testing.T, h Harness) extractors.Extractor {
	t.Helper()
	ex := h.New(t)
	t.Cleanup(func() { ex.Close() })
	return ex
}

// plan plans with n partitions at a fresh snapshot, as the executor does.
func plan(t *testing.T, ex extractors.Extractor, n int) []extractors.Stream {
	t.Helper()
	_, streams, err := extractors.PlanSnapshot(context.Background(), ex, n)
	if err != nil {
		t.Fatalf("Plan(%d): %v", n, err)
	}
	for i := range streams {
		if len(streams[i].Partitions) == 0 || len(streams[i].Partitions) > max(n, 1) {
			t.Fatalf("stream %q: %d partitions planned for at most %d", streams[i].Name, len(streams[i].Partitions), n)
		}
	}
	return streams
}

// readAll reads p from after and returns its records in order.
func readAll(t *testing.T, ex extractors.Extractor, p extractors.Partition, rt time.Time, after string) []record.Record {
	t.Helper()
	var out []record.Record
	err := ex.Read(context.Background(), p, rt, after, func(r record.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Read(%s/%s after %q): %v", p.Stream, p.ID, after, err)
	}
	return out
}

func coverExactlyOnce(t *testing.T, h Harness, n int) {
	ex := open(t, h)
	seen := map[string]string{}
	for _, st := range plan(t, ex, n) {
		ids := map[string]bool{}
		for _, p := range st.Partitions {
			if p.Stream != st.Name || ids[p.ID] {
				t.Fatalf("partition %+v: wrong stream or duplicate ID in stream %q", p, st.Name)
			}
			ids[p.ID] = true
			for i, r := range readAll(t, ex, p, st.ReadTime, "") {
				where := st.Name + "/" + p.ID
				for _, f := range h.PartitionFields {
					if _, ok := r.Fields[f]; ok && i > 0 {
						t.Errorf("record %q (%s, not the partition's first) carries the partition's field %q", r.Key, where, f)
					}
				}
				if prev, dup := seen[r.Key]; dup {
					t.Errorf("record %q read twice: in %s and %s", r.Key, prev, where)
					continue
				}
				seen[r.Key] = where
				checkRecord(t, h, r)
			}
		}
	}
	for key := range h.Want {
		if _, ok := seen[key]; !ok {
			t.Errorf("record %q never read", key)
		}
	}
	for key := range seen {
		if _, ok := h.Want[key]; !ok {
			t.Errorf("record %q read but not in the source", key)
		}
	}
}

// inKeyOrder checks what plan and verify rely on to merge a stream with
// the target read in the same order (diff: "not in key order, so it
// cannot be merged"): each stream's records, read partition after
// partition in the order Plan lists them, come strictly increasing by
// KeyCompare in the order the kind's comparison merges in:
//   - documents: the extractor's key order (extractors.KeyOrderOf, byte
//     order without extractors.KeyOrderer), path segment by path segment;
//   - users: the extractor's key order; without one they are looked up by
//     uid in any order, and not checked;
//   - files: byte order of names, whatever the extractor declares (the
//     files comparison reads the table ORDER BY name COLLATE "C").
//
// Tables merge by their key columns' text, each in byte order (the
// comparison reads both sides ORDER BY each key column COLLATE "C"), in
// the comparing extractor's read (Harness.Comparing).
func inKeyOrder(t *testing.T, h Harness, n int) {
	ex := open(t, h)
	if h.Comparing != nil {
		ex = h.Comparing(t)
		t.Cleanup(func() { ex.Close() })
	}
	_, declared := ex.(extractors.KeyOrderer)
	checked := 0
	for _, st := range plan(t, ex, n) {
		order := extractors.KeyOrderOf(ex)
		switch st.Kind {
		case record.KindDocument:
			if extractors.IsUnordered(ex) {
				continue
			}
		case record.KindUser:
			if !declared {
				continue
			}
		case record.KindFile:
			order = record.ByteOrder
		}
		checked++
		var prev record.Record
		prevAt := ""
		for _, p := range st.Partitions {
			for _, r := range readAll(t, ex, p, st.ReadTime, "") {
				at := st.Name + "/" + p.ID
				if prevAt != "" && KeyCompare(order, r.Kind, prev.Key, r.Key) >= 0 {
					t.Errorf("stream %q: %q (partition %s) is read after %q (partition %s) but does not sort after it in the order plan and verify merge %ss in",
						st.Name, r.Key, at, prev.Key, prevAt, r.Kind)
				}
				prev, prevAt = r, at
			}
		}
	}
	if checked == 0 {
		t.Skip("only users without a key order, or unordered documents (extractors.Unordered): the comparison looks them up by key")
	}
}

// oneStreamPerKind checks what the users and files comparisons of plan and
// verify rely on: all of a kind's records go to one table, which they
// merge with (or look up in) one stream, and whose remaining rows they
// count as extra when that stream ends. So an extractor plans at most one
// stream of users and one of files; documents and tables may come in any
// number (one per root collection or table, named after it).
func oneStreamPerKind(t *testing.T, h Harness) {
	ex := open(t, h)
	for _, n := range []int{1, 8} {
		seen := map[record.Kind]string{}
		for _, st := range plan(t, ex, n) {
			if st.Kind == record.KindDocument || st.Kind == record.KindTable {
				continue
			}
			if prev, dup := seen[st.Kind]; dup {
				t.Errorf("Plan(%d): %ss in two streams, %q and %q; plan and verify need them in one", n, st.Kind, prev, st.Name)
			}
			seen[st.Kind] = st.Name
		}
	}
}

// KeyCompare orders two keys of records of kind as an extractor with key
// order delivers them: a document's key path segment by path segment,
// each by order and the shorter path first when one is a prefix of the
// other (diff.Documents.CompareKeys, and the target's tables read with
// order.OrderBy on each key column); a table row's key,
// `"schema"."table" ["k1", ...]`, within its table key column by key
// column in byte order (the comparison's); any other record's whole key by
// order (the users table read with order.OrderBy on uid).
func KeyCompare(order record.KeyOrder, kind record.Kind, a, b string) int {
	switch kind {
	case record.KindDocument:
		return slices.CompareFunc(strings.Split(a, "/"), strings.Split(b, "/"), order.Compare)
	case record.KindTable:
		ta, ra, errA := pgcatalog.SplitKey(a)
		tb, rb, errB := pgcatalog.SplitKey(b)
		if errA != nil || errB != nil || ta != tb {
			return strings.Compare(a, b)
		}
		ka, errA := pgcatalog.DecodeKey(ra)
		kb, errB := pgcatalog.DecodeKey(rb)
		if errA != nil || errB != nil {
			return strings.Compare(a, b)
		}
		return slices.Compare(ka, kb)
	}
	return order.Compare(a, b)
}

func checkRecord(t *testing.T, h Harness, r record.Record) {
	t.Helper()
	want, ok := h.Want[r.Key]
	if !ok {
		return
	}
	if r.Kind != want.Kind {
		t.Errorf("%q: kind %q, want %q", r.Key, r.Kind, want.Kind)
	}
	if r.Cursor == "" {
		t.Errorf("%q: empty cursor", r.Key)
	}
	fields := r.Fields
	if len(h.PartitionFields) > 0 {
		fields = maps.Clone(fields)
		for _, f := range h.PartitionFields {
			delete(fields, f)
		}
	}
	if !record.Equal(record.Map(fields), record.Map(want.Fields)) {
		t.Errorf("%q: fields\n got  %v\n want %v", r.Key, record.Map(fields), record.Map(want.Fields))
	}
	if h.Times && (!r.CreateTime.Equal(want.CreateTime) || !r.UpdateTime.Equal(want.UpdateTime)) {
		t.Errorf("%q: times %v/%v, want %v/%v", r.Key, r.CreateTime, r.UpdateTime, want.CreateTime, want.UpdateTime)
	}
}

func resume(t *testing.T, h Harness) {
	ex := open(t, h)
	checked := 0
	for _, st := range plan(t, ex, 3) {
		for _, p := range st.Partitions {
			all := readAll(t, ex, p, st.ReadTime, "")
			for i := 0; i < len(all); i += h.ResumeEvery {
				rest := readAll(t, ex, p, st.ReadTime, all[i].Cursor)
				if got, want := keys(rest), keys(all[i+1:]); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s/%s: reading after the cursor of %q gave %d records %.200v, want the %d after it %.200v",
						p.Stream, p.ID, all[i].Key, len(got), got, len(want), want)
				}
				checked++
			}
		}
	}
	if checked == 0 && len(h.Want) > 0 {
		t.Fatal("no cursor was checked")
	}
}

func keys(rs []record.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

var errCaller = errors.New("the caller's own error")

func callerErrors(t *testing.T, h Harness) {
	if len(h.Want) == 0 {
		t.Skip("the source is empty")
	}
	ex := open(t, h)
	for _, st := range plan(t, ex, 1) {
		for _, p := range st.Partitions {
			calls := 0
			err := ex.Read(context.Background(), p, st.ReadTime, "", func(record.Record) error {
				calls++
				return errCaller
			})
			if calls == 0 {
				continue // an empty partition
			}
			if !errors.Is(err, errCaller) || calls != 1 {
				t.Fatalf("emit's error: Read returned %v after %d calls; want the error itself after 1 call", err, calls)
			}
			if retry.IsRetryable(err) {
				t.Fatalf("emit's error came back classified retryable: %v", err)
			}
			return
		}
	}
	t.Fatal("no partition had a record")
}

func unreachable(t *testing.T, h Harness) {
	ex := h.Unreachable(t)
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := ex.Plan(ctx, 2, time.Time{})
	if err == nil {
		t.Fatal("Plan against an unreachable source succeeded")
	}
	if !retry.IsRetryable(err) {
		t.Fatalf("an unreachable source's error is not classified retryable: %v", err)
	}
}
