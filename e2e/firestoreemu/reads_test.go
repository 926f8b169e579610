package firestoreemu_test

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
)

func TestReadsAtPastReadTime(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	d := c.Doc("hist/doc")
	w1 := mustSet(t, ctx, d, map[string]any{"v": 1})
	mustSet(t, ctx, c.Doc("hist/doc/sub/child"), map[string]any{"x": 1})
	w2 := mustSet(t, ctx, d, map[string]any{"v": 2})
	mustSet(t, ctx, c.Doc("hist/other"), map[string]any{"v": 3})
	if _, err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	// A delete's WriteResult has no update time; any time after the
	// commit and before the next one will do.
	afterDelete := time.Now()
	if _, err := c.Doc("hist/doc/sub/child").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	t1, t2, t3 := w1.UpdateTime, w2.UpdateTime, afterDelete

	// Document reads (BatchGetDocuments through the client).
	for _, tc := range []struct {
		at   time.Time
		want any
	}{{t1, int64(1)}, {t2, int64(2)}} {
		s, err := d.WithReadOptions(firestore.ReadTime(tc.at)).Get(ctx)
		if err != nil || s.Data()["v"] != tc.want || !s.ReadTime.Equal(tc.at) {
			t.Errorf("Get at %v: %v %v (read time %v)", tc.at, s.Data(), err, s.ReadTime)
		}
	}
	if _, err := d.WithReadOptions(firestore.ReadTime(t3)).Get(ctx); codeOf(err) != codes.NotFound {
		t.Errorf("Get at deletion time: %v, want NotFound", err)
	}
	// GetDocument RPC.
	doc, err := raw.GetDocument(ctx, &pb.GetDocumentRequest{Name: docName(project, "hist/doc"), ConsistencySelector: &pb.GetDocumentRequest_ReadTime{ReadTime: timestamppb.New(t1)}})
	if err != nil || doc.Fields["v"].GetIntegerValue() != 1 {
		t.Errorf("GetDocument at t1: %v %v", doc, err)
	}
	// Queries.
	q := c.Collection("hist").Where("v", ">", 0)
	if got := ids(t, ctx, *q.WithReadOptions(firestore.ReadTime(t2))); !eq(got, []string{"doc"}) {
		t.Errorf("query at t2: %v", got)
	}
	if got := ids(t, ctx, *q.WithReadOptions(firestore.ReadTime(t3))); !eq(got, []string{"other"}) {
		t.Errorf("query at t3: %v", got)
	}
	// Aggregation.
	agg := c.Collection("hist").WithReadOptions(firestore.ReadTime(t1)).NewAggregationQuery().WithCount("n")
	if res, err := agg.Get(ctx); err != nil || res["n"].(*pb.Value).GetIntegerValue() != 1 {
		t.Errorf("count at t1: %v %v", res, err)
	}
	// ListDocuments (DocumentRefs uses show_missing).
	refs, err := c.Collection("hist").WithReadOptions(firestore.ReadTime(t2)).DocumentRefs(ctx).GetAll()
	if err != nil || len(refs) != 1 || refs[0].ID != "doc" {
		t.Errorf("DocumentRefs at t2: %v %v", refs, err)
	}
	// At t3 the doc is deleted but still has its subcollection child.
	refs, err = c.Collection("hist").WithReadOptions(firestore.ReadTime(t3)).DocumentRefs(ctx).GetAll()
	if err != nil || len(refs) != 2 {
		t.Errorf("DocumentRefs at t3: %v %v, want doc (missing) and other", refs, err)
	}
	// ListCollectionIds.
	for _, tc := range []struct {
		at   time.Time
		want []string
	}{{t1, nil}, {t2, []string{"sub"}}, {time.Now(), nil}} {
		res, err := raw.ListCollectionIds(ctx, &pb.ListCollectionIdsRequest{Parent: docName(project, "hist/doc"), ConsistencySelector: &pb.ListCollectionIdsRequest_ReadTime{ReadTime: timestamppb.New(tc.at)}}).Next()
		if tc.want == nil {
			if !errors.Is(err, iterator.Done) {
				t.Errorf("collections at %v: %v %v, want none", tc.at, res, err)
			}
			continue
		}
		if err != nil || res != tc.want[0] {
			t.Errorf("collections at %v: %v %v, want %v", tc.at, res, err, tc.want)
		}
	}
	// Too old: FAILED_PRECONDITION; in the future: INVALID_ARGUMENT.
	_, err = d.WithReadOptions(firestore.ReadTime(time.Now().Add(-25 * time.Hour))).Get(ctx)
	wantCode(t, err, codes.FailedPrecondition, "read 25h ago")
	_, err = c.Collection("hist").WithReadOptions(firestore.ReadTime(time.Now().Add(-25 * time.Hour))).Documents(ctx).GetAll()
	wantCode(t, err, codes.FailedPrecondition, "query 25h ago")
	_, err = d.WithReadOptions(firestore.ReadTime(time.Now().Add(time.Hour))).Get(ctx)
	wantCode(t, err, codes.InvalidArgument, "read in the future")
}

// TestHistoryWindowPrunes uses an emulator of its own with a short history.
func TestHistoryWindowPrunes(t *testing.T) {
	t.Parallel()
	requireInProcess(t)
	ctx := testContext(t)
	emu, err := firestoreemu.Start("127.0.0.1:0", firestoreemu.Options{History: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	c := clientAt(t, emu.Addr(), newProject(t))
	d := c.Doc("h/x")
	w1 := mustSet(t, ctx, d, map[string]any{"v": 1})
	mustSet(t, ctx, d, map[string]any{"v": 2})
	s, err := d.WithReadOptions(firestore.ReadTime(w1.UpdateTime)).Get(ctx)
	if err != nil || s.Data()["v"] != int64(1) {
		t.Fatalf("read within history: %v %v", s, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := d.WithReadOptions(firestore.ReadTime(w1.UpdateTime)).Get(ctx)
		if codeOf(err) == codes.FailedPrecondition {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("read older than history: %v, want FailedPrecondition", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The current version stays readable. (A fresh reference: the client's
	// WithReadOptions changes the reference it is called on.)
	if got := mustGet(t, ctx, c.Doc("h/x")).Data()["v"]; got != int64(2) {
		t.Fatalf("current value %v", got)
	}
}

func TestListDocumentsShowMissing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	mustSet(t, ctx, c.Doc("lib/a"), map[string]any{"title": "A", "n": 1})
	mustSet(t, ctx, c.Doc("lib/b/shelves/s1"), map[string]any{"x": 1}) // lib/b is missing
	mustSet(t, ctx, c.Doc("lib/c"), map[string]any{"title": "C", "n": 3})
	mustSet(t, ctx, c.Doc("lib/d/x/y/z/w"), map[string]any{"x": 1}) // lib/d missing, deeper
	mustSet(t, ctx, c.Doc("lib/e/gone/g"), map[string]any{"x": 1})
	if _, err := c.Doc("lib/e/gone/g").Delete(ctx); err != nil { // lib/e has nothing left
		t.Fatal(err)
	}
	mustSet(t, ctx, c.Doc("libx/z"), map[string]any{"x": 1})

	refs, err := c.Collection("lib").DocumentRefs(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.ID)
	}
	if !eq(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("DocumentRefs = %v, want [a b c d]", got)
	}
	// Raw, paged by one, with show_missing: missing docs have no times.
	var names []string
	it := raw.ListDocuments(ctx, &pb.ListDocumentsRequest{Parent: dbPath(project) + "/documents", CollectionId: "lib", PageSize: 1, ShowMissing: true})
	for {
		d, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id := d.Name[len(d.Name)-1:]
		missing := id == "b" || id == "d"
		if missing != (d.CreateTime == nil && d.UpdateTime == nil && len(d.Fields) == 0) {
			t.Errorf("%s: create %v update %v fields %v", id, d.CreateTime, d.UpdateTime, d.Fields)
		}
		names = append(names, id)
	}
	if !eq(names, []string{"a", "b", "c", "d"}) {
		t.Fatalf("paged ListDocuments = %v", names)
	}
	// Firestore refuses order_by together with show_missing.
	_, err = raw.ListDocuments(ctx, &pb.ListDocumentsRequest{Parent: dbPath(project) + "/documents", CollectionId: "lib", ShowMissing: true, OrderBy: "__name__"}).Next()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("show_missing with order_by: %v, want INVALID_ARGUMENT", err)
	}
	// Without show_missing, and with a mask.
	it = raw.ListDocuments(ctx, &pb.ListDocumentsRequest{Parent: dbPath(project) + "/documents", CollectionId: "lib", Mask: &pb.DocumentMask{FieldPaths: []string{"title"}}})
	names = nil
	for {
		d, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Fields) != 1 || d.Fields["title"] == nil {
			t.Errorf("masked fields %v", d.Fields)
		}
		names = append(names, d.Name[len(d.Name)-1:])
	}
	if !eq(names, []string{"a", "c"}) {
		t.Fatalf("ListDocuments without show_missing = %v", names)
	}
}

func TestListCollectionIds(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	for _, p := range []string{"zeta/1", "alpha/1", "mid/x/inner/1", "mid/x/other/2", "mid/x/other/3/deep/4", "mid/y"} {
		mustSet(t, ctx, c.Doc(p), map[string]any{"p": p})
	}
	mustSet(t, ctx, c.Doc("gone/1"), map[string]any{})
	if _, err := c.Doc("gone/1").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	collect := func(it *firestore.CollectionIterator) []string {
		cols, err := it.GetAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, col := range cols {
			out = append(out, col.ID)
		}
		return out
	}
	if got := collect(c.Collections(ctx)); !eq(got, []string{"alpha", "mid", "zeta"}) {
		t.Errorf("root collections = %v", got)
	}
	// Under a missing document.
	if got := collect(c.Doc("mid/x").Collections(ctx)); !eq(got, []string{"inner", "other"}) {
		t.Errorf("collections under missing mid/x = %v", got)
	}
	if got := collect(c.Doc("mid/y").Collections(ctx)); len(got) != 0 {
		t.Errorf("collections under mid/y = %v", got)
	}
	// Paged by one: every page holds one ID and a token for the next.
	var got []string
	pager := iterator.NewPager(raw.ListCollectionIds(ctx, &pb.ListCollectionIdsRequest{Parent: docName(project, "mid/x")}), 1, "")
	for pages := 0; ; pages++ {
		var page []string
		next, err := pager.NextPage(&page)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 1 || pages > 3 {
			t.Fatalf("page %d has %d IDs", pages, len(page))
		}
		got = append(got, page...)
		if next == "" {
			break
		}
	}
	if !eq(got, []string{"inner", "other"}) {
		t.Errorf("paged collection IDs = %v", got)
	}
}

func TestPartitionQueryCoversEveryDocumentOnce(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	docs := map[string]map[string]any{}
	want := map[string]bool{}
	for i := 0; i < 5000; i++ {
		var p string
		switch i % 4 {
		case 0:
			p = fmt.Sprintf("items/i%05d", i)
		case 1:
			p = fmt.Sprintf("shops/s%02d/items/i%05d", i%37, i)
		case 2:
			p = fmt.Sprintf("shops/s%02d/items/i%05d/items/n%05d", i%13, i-1, i)
		default:
			p = fmt.Sprintf("regions/r%d/shops/s%d/items/i%05d", i%5, i%7, i)
		}
		docs[p] = map[string]any{"i": i}
		want[p] = true
		docs[fmt.Sprintf("decoys/d%05d", i)] = map[string]any{"i": i}
	}
	writeDocs(t, ctx, raw, project, docs)
	group := c.CollectionGroup("items")
	for _, n := range []int{1, 2, 3, 7, 16, 64} {
		queries, err := group.GetPartitionedQueries(ctx, n)
		if err != nil {
			t.Fatalf("GetPartitionedQueries(%d): %v", n, err)
		}
		if len(queries) > n || (n > 1 && len(queries) < 2) {
			t.Fatalf("GetPartitionedQueries(%d) gave %d queries", n, len(queries))
		}
		seen := map[string]int{}
		for _, q := range queries {
			for _, p := range paths(t, ctx, q.Documents(ctx)) {
				seen[p]++
			}
		}
		if len(seen) != len(want) {
			t.Errorf("%d partitions cover %d documents, want %d", n, len(seen), len(want))
		}
		for p, k := range seen {
			if k != 1 || !want[p] {
				t.Errorf("%d partitions: %s seen %d times (expected: %v)", n, p, k, want[p])
			}
		}
	}
	// Few documents: fewer partitions; split points are existing documents.
	mustSet(t, ctx, c.Doc("few/a"), map[string]any{})
	mustSet(t, ctx, c.Doc("x/y/few/b"), map[string]any{})
	mustSet(t, ctx, c.Doc("few/c"), map[string]any{})
	queries, err := c.CollectionGroup("few").GetPartitionedQueries(ctx, 10)
	if err != nil || len(queries) > 3 {
		t.Fatalf("10 partitions of 3 documents: %d queries, %v", len(queries), err)
	}
	// Raw: paging with page_size and a read time; cursors are references to
	// documents that existed at that time.
	readTime := time.Now()
	mustSet(t, ctx, c.Doc("items/zz-late"), map[string]any{})
	var cursors []string
	it := raw.PartitionQuery(ctx, &pb.PartitionQueryRequest{
		Parent: dbPath(project) + "/documents",
		QueryType: &pb.PartitionQueryRequest_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
			From:    []*pb.StructuredQuery_CollectionSelector{{CollectionId: "items", AllDescendants: true}},
			OrderBy: []*pb.StructuredQuery_Order{{Field: &pb.StructuredQuery_FieldReference{FieldPath: "__name__"}, Direction: pb.StructuredQuery_ASCENDING}},
		}},
		PartitionCount:      10,
		PageSize:            4,
		ConsistencySelector: &pb.PartitionQueryRequest_ReadTime{ReadTime: timestamppb.New(readTime)},
	})
	for {
		cur, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		cursors = append(cursors, cur.Values[0].GetReferenceValue())
	}
	if len(cursors) != 9 || !sort.StringsAreSorted(cursors) {
		t.Fatalf("partition cursors: %d, sorted %v", len(cursors), sort.StringsAreSorted(cursors))
	}
	for _, cur := range cursors {
		rel := cur[len(docName(project, "")):]
		if !want[rel] {
			t.Errorf("split point %s is not a document of the group at the read time", rel)
		}
	}
}

func TestPagingLargeCollectionGroup(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	raw := newRawClient(t)
	const n = 20000
	docs := map[string]map[string]any{}
	for i := 0; i < n; i++ {
		docs[fmt.Sprintf("tenants/t%02d/events/e%06d", i%50, i)] = map[string]any{"i": i, "pad": strconv.Itoa(i)}
	}
	start := time.Now()
	writeDocs(t, ctx, raw, project, docs)
	writeTook := time.Since(start)
	start = time.Now()
	q := c.CollectionGroup("events").OrderBy(firestore.DocumentID, firestore.Asc).Limit(500)
	var last *firestore.DocumentSnapshot
	total, pages := 0, 0
	prev := ""
	for {
		page := q
		if last != nil {
			page = q.StartAfter(last)
		}
		got, err := page.Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, d := range got {
			if d.Ref.Path <= prev && prev != "" {
				t.Fatalf("out of order: %s after %s", d.Ref.Path, prev)
			}
			prev = d.Ref.Path
		}
		total += len(got)
		pages++
		last = got[len(got)-1]
	}
	if total != n || pages != n/500 {
		t.Fatalf("paged %d documents in %d pages, want %d in %d", total, pages, n, n/500)
	}
	t.Logf("wrote %d docs in batches of 500 in %v; paged them in %d pages in %v", n, writeTook, pages, time.Since(start))
}
