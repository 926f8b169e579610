package firestoreemu_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"
	vkit "cloud.google.com/go/firestore/apiv1"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
)

// legacyOrder is the order Firestore gives document IDs: numeric IDs
// (__id<n>__, n an int64) first by value, then every other ID by its UTF-8
// bytes — the order the Firestore SDKs' integration tests read back from
// the server (firebase-js-sdk#8673, googleapis/java-firestore#1945).
var legacyOrder = []string{
	"__id-9223372036854775808__", "__id-2__", "__id0__", "__id7__", "__id12__", "__id9223372036854775807__",
	"12", "7", "A", "Aa", "__id", "__id1_", "_id1__", "a",
}

// TestNumericDocumentIDs: numeric IDs are accepted and ordered as Firestore
// orders them in collection queries (both directions), cursors, __name__
// filters, collection groups, kindless queries, ListDocuments and
// PartitionQuery; other reserved IDs are still refused.
func TestNumericDocumentIDs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	legacy := c.Collection("legacy")
	for i, id := range legacyOrder {
		mustSet(t, ctx, legacy.Doc(id), map[string]any{"i": i})
	}
	// Subcollections, one under a numeric parent that does not exist.
	for _, p := range []string{"legacy/__id7__/sub/x", "legacy/__id7__/sub/__id-1__", "legacy/a/sub/__id3__", "legacy/__id5__/sub/y"} {
		mustSet(t, ctx, c.Doc(p), map[string]any{"p": p})
	}
	if got := mustGet(t, ctx, legacy.Doc("__id-2__")); got.Ref.ID != "__id-2__" || got.Data()["i"] != int64(1) {
		t.Fatalf("Get __id-2__: %s %v", got.Ref.Path, got.Data())
	}

	byID := legacy.OrderBy(firestore.DocumentID, firestore.Asc)
	if got := ids(t, ctx, byID); !eq(got, legacyOrder) {
		t.Fatalf("ordered by ID:\n got %q\nwant %q", got, legacyOrder)
	}
	if got := ids(t, ctx, legacy.Query); !eq(got, legacyOrder) {
		t.Fatalf("default order:\n got %q\nwant %q", got, legacyOrder)
	}
	reversed := slices.Clone(legacyOrder)
	slices.Reverse(reversed)
	if got := ids(t, ctx, legacy.OrderBy(firestore.DocumentID, firestore.Desc)); !eq(got, reversed) {
		t.Fatalf("descending:\n got %q\nwant %q", got, reversed)
	}
	// Cursors and __name__ filters on numeric and string IDs.
	if got, want := ids(t, ctx, byID.StartAfter("__id7__").EndAt("A")), legacyOrder[4:9]; !eq(got, want) {
		t.Fatalf("start after __id7__, end at A: %q, want %q", got, want)
	}
	if got, want := ids(t, ctx, byID.StartAt("__id-2__").EndBefore("__id12__")), legacyOrder[1:4]; !eq(got, want) {
		t.Fatalf("start at __id-2__, end before __id12__: %q, want %q", got, want)
	}
	if got, want := ids(t, ctx, legacy.Where(firestore.DocumentID, ">", legacy.Doc("__id7__")).Where(firestore.DocumentID, "<=", legacy.Doc("A"))), legacyOrder[4:9]; !eq(got, want) {
		t.Fatalf("__name__ > __id7__ and <= A: %q, want %q", got, want)
	}
	if got, want := ids(t, ctx, legacy.Where(firestore.DocumentID, "<", legacy.Doc("0"))), legacyOrder[:6]; !eq(got, want) {
		t.Fatalf("__name__ < \"0\": %q, want %q (numeric IDs sort before every string)", got, want)
	}
	// Paging with start_after the last document of each page.
	var paged []string
	q := byID.Limit(4)
	for {
		docs, err := q.Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			paged = append(paged, d.Ref.ID)
		}
		if len(docs) < 4 {
			break
		}
		q = byID.StartAfter(docs[len(docs)-1]).Limit(4)
	}
	if !eq(paged, legacyOrder) {
		t.Fatalf("paged by 4:\n got %q\nwant %q", paged, legacyOrder)
	}

	// Collection group and kindless all-descendants queries: names segment
	// by segment, a parent before its descendants.
	subs := []string{"legacy/__id5__/sub/y", "legacy/__id7__/sub/__id-1__", "legacy/__id7__/sub/x", "legacy/a/sub/__id3__"}
	if got := paths(t, ctx, c.CollectionGroup("sub").OrderBy(firestore.DocumentID, firestore.Asc).Documents(ctx)); !eq(got, subs) {
		t.Fatalf("collection group:\n got %q\nwant %q", got, subs)
	}
	if got := paths(t, ctx, c.CollectionGroup("sub").OrderBy(firestore.DocumentID, firestore.Asc).StartAfter(mustGet(t, ctx, c.Doc("legacy/__id5__/sub/y"))).Documents(ctx)); !eq(got, subs[1:]) {
		t.Fatalf("collection group after legacy/__id5__/sub/y:\n got %q\nwant %q", got, subs[1:])
	}
	var all []string
	for _, id := range legacyOrder {
		if id == "__id7__" {
			all = append(all, "legacy/__id5__/sub/y")
		}
		all = append(all, "legacy/"+id)
		switch id {
		case "__id7__":
			all = append(all, "legacy/__id7__/sub/__id-1__", "legacy/__id7__/sub/x")
		case "a":
			all = append(all, "legacy/a/sub/__id3__")
		}
	}
	if got := kindless(t, ctx, raw, project, nil); !eq(got, all) {
		t.Fatalf("kindless query:\n got %q\nwant %q", got, all)
	}
	// From a cursor on a missing numeric parent: its descendants follow it.
	start := &pb.Cursor{Values: []*pb.Value{refValueOf(project, "legacy/__id5__")}, Before: true}
	if got := kindless(t, ctx, raw, project, start); !eq(got, all[3:]) {
		t.Fatalf("kindless query from legacy/__id5__:\n got %q\nwant %q", got, all[3:])
	}

	// ListDocuments, with the missing parent __id5__.
	refs, err := legacy.DocumentRefs(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, r := range refs {
		listed = append(listed, r.ID)
	}
	withMissing := slices.Insert(slices.Clone(legacyOrder), 3, "__id5__")
	if !eq(listed, withMissing) {
		t.Fatalf("DocumentRefs:\n got %q\nwant %q", listed, withMissing)
	}
	var pagedList []string
	it := raw.ListDocuments(ctx, &pb.ListDocumentsRequest{Parent: dbPath(project) + "/documents", CollectionId: "legacy", PageSize: 3})
	for {
		d, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pagedList = append(pagedList, d.Name[strings.LastIndex(d.Name, "/")+1:])
	}
	if !eq(pagedList, legacyOrder) {
		t.Fatalf("ListDocuments by pages of 3:\n got %q\nwant %q", pagedList, legacyOrder)
	}

	// PartitionQuery: split points in Firestore's order, and the partitions
	// they bound cover the group once.
	for _, n := range []int64{2, 5, int64(len(legacyOrder))} {
		cursors := partitionCursors(t, ctx, raw, project, "legacy", n)
		var rels []string
		for _, cur := range cursors {
			rels = append(rels, strings.TrimPrefix(cur.GetReferenceValue(), docName(project, "")))
		}
		if !slices.IsSortedFunc(rels, func(a, b string) int {
			return slices.Index(legacyOrder, a[len("legacy/"):]) - slices.Index(legacyOrder, b[len("legacy/"):])
		}) {
			t.Fatalf("%d partitions: split points out of Firestore's order: %q", n, rels)
		}
		var covered []string
		bounds := append(append([]*pb.Value{nil}, cursors...), nil)
		for i := 0; i+1 < len(bounds); i++ {
			covered = append(covered, groupRange(t, ctx, raw, project, "legacy", bounds[i], bounds[i+1])...)
		}
		var want []string
		for _, id := range legacyOrder {
			want = append(want, "legacy/"+id)
		}
		if !eq(covered, want) {
			t.Fatalf("%d partitions cover:\n got %q\nwant %q", n, covered, want)
		}
	}

	// Still reserved: what is not an int64 in canonical decimal, and numeric
	// collection IDs.
	for _, bad := range []*firestore.DocumentRef{
		legacy.Doc("__id007__"), legacy.Doc("__id-0__"), legacy.Doc("__id+5__"), legacy.Doc("__id__"),
		legacy.Doc("__id9223372036854775808__"), legacy.Doc("__id-9223372036854775809__"), legacy.Doc("__id 1__"),
		c.Collection("__id5__").Doc("x"),
	} {
		_, err := bad.Set(ctx, map[string]any{"a": 1})
		wantCode(t, err, codes.InvalidArgument, "writing "+bad.Path)
	}
}

// TestNumericDocumentIDStorageSize: a numeric document ID counts 8 bytes in
// a document's size, not its string size (Firestore's storage size page).
func TestNumericDocumentIDStorageSize(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	// Name: "big" 4 + numeric ID 8 + 16; field "f" 2 + string len+1; 32.
	const overhead = 4 + 8 + 16 + 2 + 1 + 32
	doc := c.Doc("big/__id123456789012__")
	if _, err := doc.Set(ctx, map[string]any{"f": strings.Repeat("x", 1<<20-overhead)}); err != nil {
		t.Fatalf("document at the limit: %v", err)
	}
	_, err := doc.Set(ctx, map[string]any{"f": strings.Repeat("x", 1<<20-overhead+1)})
	wantCode(t, err, codes.InvalidArgument, "document one byte over the limit")
}

func refValueOf(project, path string) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_ReferenceValue{ReferenceValue: docName(project, path)}}
}

var byName = []*pb.StructuredQuery_Order{{Field: &pb.StructuredQuery_FieldReference{FieldPath: "__name__"}, Direction: pb.StructuredQuery_ASCENDING}}

// kindless runs an all-descendants query without a collection ID from the
// root, ordered by name, from start (nil: the beginning), and returns the
// relative paths.
func kindless(t *testing.T, ctx context.Context, raw *vkit.Client, project string, start *pb.Cursor) []string {
	t.Helper()
	return runRaw(t, ctx, raw, project, &pb.StructuredQuery{
		From: []*pb.StructuredQuery_CollectionSelector{{AllDescendants: true}}, OrderBy: byName, StartAt: start,
	})
}

// groupRange returns the relative paths of the documents of collection
// group g in [from, to) (nil: unbounded), ordered by name.
func groupRange(t *testing.T, ctx context.Context, raw *vkit.Client, project, g string, from, to *pb.Value) []string {
	t.Helper()
	q := &pb.StructuredQuery{From: []*pb.StructuredQuery_CollectionSelector{{CollectionId: g, AllDescendants: true}}, OrderBy: byName}
	if from != nil {
		q.StartAt = &pb.Cursor{Values: []*pb.Value{from}, Before: true}
	}
	if to != nil {
		q.EndAt = &pb.Cursor{Values: []*pb.Value{to}, Before: true}
	}
	return runRaw(t, ctx, raw, project, q)
}

func runRaw(t *testing.T, ctx context.Context, raw *vkit.Client, project string, q *pb.StructuredQuery) []string {
	t.Helper()
	stream, err := raw.RunQuery(ctx, &pb.RunQueryRequest{Parent: dbPath(project) + "/documents", QueryType: &pb.RunQueryRequest_StructuredQuery{StructuredQuery: q}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Document != nil {
			out = append(out, strings.TrimPrefix(r.Document.Name, docName(project, "")))
		}
	}
}

// partitionCursors returns the split points PartitionQuery gives for
// collection group g in n partitions, one page of two at a time, in the
// order returned.
func partitionCursors(t *testing.T, ctx context.Context, raw *vkit.Client, project, g string, n int64) []*pb.Value {
	t.Helper()
	it := raw.PartitionQuery(ctx, &pb.PartitionQueryRequest{
		Parent: dbPath(project) + "/documents",
		QueryType: &pb.PartitionQueryRequest_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
			From: []*pb.StructuredQuery_CollectionSelector{{CollectionId: g, AllDescendants: true}}, OrderBy: byName,
		}},
		PartitionCount: n,
		PageSize:       2,
	})
	var out []*pb.Value
	for {
		cur, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cur.Values[0])
	}
}
