package firestoreemu_test

import (
	"context"
	"math"
	"sort"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/genproto/googleapis/type/latlng"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// seedNumbers writes n01..n10 with fields used by the operator tests.
func seedNumbers(t *testing.T, ctx context.Context, c *firestore.Client) {
	t.Helper()
	docs := map[string]map[string]any{
		"n01": {"v": 1, "tags": []any{"a", "b"}, "color": "red"},
		"n02": {"v": 2.0, "tags": []any{"b"}, "color": "blue"},
		"n03": {"v": 3, "tags": []any{"c", int64(1)}, "color": "green"},
		"n04": {"v": 4.5, "color": "red"},
		"n05": {"v": nil, "color": "blue"},
		"n06": {"v": math.NaN(), "color": "red"},
		"n07": {"v": "3", "color": "green"},
		"n08": {"color": "red"},
		"n09": {"v": -1, "tags": []any{1.0}, "color": nil},
		"n10": {"v": 2, "tags": []any{}, "color": "blue"},
	}
	for id, d := range docs {
		mustSet(t, ctx, c.Collection("nums").Doc(id), d)
	}
	// A document of another collection must never show up.
	mustSet(t, ctx, c.Doc("other/n99"), map[string]any{"v": 1, "color": "red"})
}

func TestQueryOperators(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	seedNumbers(t, ctx, c)
	col := c.Collection("nums")
	cases := []struct {
		name string
		q    firestore.Query
		want []string
	}{
		{"==", col.Where("v", "==", 2), []string{"n02", "n10"}},
		{"== double", col.Where("v", "==", 2.0), []string{"n02", "n10"}},
		{"== string", col.Where("v", "==", "3"), []string{"n07"}},
		{"!=", col.Where("v", "!=", 2), []string{"n06", "n09", "n01", "n03", "n04", "n07"}},
		{"<", col.Where("v", "<", 3), []string{"n06", "n09", "n01", "n02", "n10"}},
		{"<=", col.Where("v", "<=", 3), []string{"n06", "n09", "n01", "n02", "n10", "n03"}},
		{">", col.Where("v", ">", 2), []string{"n03", "n04"}},
		{">=", col.Where("v", ">=", 2), []string{"n02", "n10", "n03", "n04"}},
		{"> string", col.Where("v", ">", ""), []string{"n07"}},
		{"in", col.Where("v", "in", []any{1, 4.5, "3"}), []string{"n01", "n04", "n07"}},
		{"not-in", col.Where("v", "not-in", []any{1, 2, "3"}), []string{"n06", "n09", "n03", "n04"}},
		{"array-contains", col.Where("tags", "array-contains", "b"), []string{"n01", "n02"}},
		{"array-contains number", col.Where("tags", "array-contains", 1), []string{"n03", "n09"}},
		{"array-contains-any", col.Where("tags", "array-contains-any", []any{"a", "c"}), []string{"n01", "n03"}},
		{"is null", col.Where("v", "==", nil), []string{"n05"}},
		{"is nan", col.Where("v", "==", math.NaN()), []string{"n06"}},
		{"is not null", col.Where("v", "!=", nil), []string{"n06", "n09", "n01", "n02", "n10", "n03", "n04", "n07"}},
		{"is not nan", col.Where("v", "!=", math.NaN()), []string{"n09", "n01", "n02", "n10", "n03", "n04", "n07"}},
		{"and", col.Where("color", "==", "red").Where("v", ">", 0), []string{"n01", "n04"}},
		{"or", col.WhereEntity(firestore.OrFilter{Filters: []firestore.EntityFilter{
			firestore.PropertyFilter{Path: "color", Operator: "==", Value: "green"},
			firestore.PropertyFilter{Path: "v", Operator: "==", Value: 1},
		}}), []string{"n01", "n03", "n07"}},
		{"or of ands", col.WhereEntity(firestore.OrFilter{Filters: []firestore.EntityFilter{
			firestore.AndFilter{Filters: []firestore.EntityFilter{
				firestore.PropertyFilter{Path: "color", Operator: "==", Value: "red"},
				firestore.PropertyFilter{Path: "v", Operator: "==", Value: 4.5},
			}},
			firestore.PropertyFilter{Path: "color", Operator: "==", Value: nil},
		}}), []string{"n04", "n09"}},
		{"__name__ ==", col.Where(firestore.DocumentID, "==", col.Doc("n03")), []string{"n03"}},
		{"__name__ >", col.Where(firestore.DocumentID, ">", col.Doc("n08")), []string{"n09", "n10"}},
		{"__name__ in", col.Where(firestore.DocumentID, "in", []any{col.Doc("n02"), col.Doc("n05")}), []string{"n02", "n05"}},
	}
	for _, tc := range cases {
		if got := ids(t, ctx, tc.q); !eq(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCrossTypeOrdering(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	col := c.Collection("mixed")
	values := []struct {
		id string
		v  any
	}{
		{"a00", nil},
		{"a01", false},
		{"a02", true},
		{"a03", math.NaN()},
		{"a04", math.Inf(-1)},
		{"a05", int64(math.MinInt64)},
		{"a06", -1.5},
		{"a07", int64(0)},
		{"a08", int64(1)},
		{"a09", 1.5},
		{"a10", int64(math.MaxInt64)},
		{"a11", math.Inf(1)},
		{"a12", time.Unix(0, 0)},
		{"a13", time.Unix(1e9, 1000)},
		{"a14", ""},
		{"a15", "B"},
		{"a16", "a"},
		{"a17", "é"},
		{"a18", []byte{}},
		{"a19", []byte{0}},
		{"a20", []byte{1, 2}},
		{"a21", c.Doc("a/b")},
		{"a22", c.Doc("a/b/c/d")},
		{"a23", c.Doc("a/b0")},
		{"a24", &latlng.LatLng{Latitude: -10, Longitude: 50}},
		{"a25", &latlng.LatLng{Latitude: 10, Longitude: -50}},
		{"a26", []any{}},
		{"a27", []any{int64(1), "z"}},
		{"a28", []any{int64(2)}},
		{"a29", firestore.Vector64{9, 9}},
		{"a30", firestore.Vector64{1, 1, 1}},
		{"a31", map[string]any{}},
		{"a32", map[string]any{"a": "aaa", "b": "baz"}},
		{"a33", map[string]any{"a": "foo", "b": "bar", "c": "qux"}},
		{"a34", map[string]any{"b": "aaa"}},
	}
	// Write in scrambled order so insertion order cannot explain the result.
	for i := len(values) - 1; i >= 0; i -= 2 {
		mustSet(t, ctx, col.Doc(values[i].id), map[string]any{"v": values[i].v})
	}
	for i := len(values) - 2; i >= 0; i -= 2 {
		mustSet(t, ctx, col.Doc(values[i].id), map[string]any{"v": values[i].v})
	}
	var want []string
	for _, v := range values {
		want = append(want, v.id)
	}
	if got := ids(t, ctx, col.OrderBy("v", firestore.Asc)); !eq(got, want) {
		t.Errorf("ascending:\n got %v\nwant %v", got, want)
	}
	rev := append([]string(nil), want...)
	sort.Sort(sort.Reverse(sort.StringSlice(rev)))
	if got := ids(t, ctx, col.OrderBy("v", firestore.Desc)); !eq(got, rev) {
		t.Errorf("descending:\n got %v\nwant %v", got, rev)
	}
	// Integers and doubles are equal when numerically equal; -0.0 == 0.
	mustSet(t, ctx, col.Doc("z1"), map[string]any{"v": 1.0})
	mustSet(t, ctx, col.Doc("z0"), map[string]any{"v": math.Copysign(0, -1)})
	if got := ids(t, ctx, col.Where("v", "==", 1)); !eq(got, []string{"a08", "z1"}) {
		t.Errorf("v == 1: %v", got)
	}
	if got := ids(t, ctx, col.Where("v", "==", 0)); !eq(got, []string{"a07", "z0"}) {
		t.Errorf("v == 0: %v", got)
	}
}

func TestOrderingCursorsLimitOffset(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	col := c.Collection("people")
	people := []struct {
		id   string
		city string
		age  int
	}{
		{"p1", "Oslo", 30}, {"p2", "Bergen", 25}, {"p3", "Oslo", 25}, {"p4", "Bergen", 40},
		{"p5", "Oslo", 35}, {"p6", "Tromsø", 25}, {"p7", "Bergen", 25},
	}
	for _, p := range people {
		mustSet(t, ctx, col.Doc(p.id), map[string]any{"city": p.city, "age": p.age})
	}
	mustSet(t, ctx, col.Doc("p8"), map[string]any{"city": "Oslo"}) // no age: excluded when ordering by age

	byCityAge := col.OrderBy("city", firestore.Asc).OrderBy("age", firestore.Desc)
	// The implicit __name__ order takes the direction of the last order: desc.
	all := []string{"p4", "p7", "p2", "p5", "p1", "p3", "p6"}
	if got := ids(t, ctx, byCityAge); !eq(got, all) {
		t.Fatalf("order by city, age desc: %v, want %v", got, all)
	}
	cases := []struct {
		name string
		q    firestore.Query
		want []string
	}{
		{"order by age excludes missing", col.OrderBy("age", firestore.Asc), []string{"p2", "p3", "p6", "p7", "p1", "p5", "p4"}},
		{"order by name desc", col.OrderBy(firestore.DocumentID, firestore.Desc), []string{"p8", "p7", "p6", "p5", "p4", "p3", "p2", "p1"}},
		{"limit", byCityAge.Limit(3), all[:3]},
		{"offset", byCityAge.Offset(5), all[5:]},
		{"offset+limit", byCityAge.Offset(2).Limit(2), all[2:4]},
		{"start at values", byCityAge.StartAt("Oslo", 35), all[3:]},
		{"start after values", byCityAge.StartAfter("Oslo", 35), all[4:]},
		{"end at", byCityAge.EndAt("Oslo", 30), all[:5]},
		{"cursor on one of two orders", col.OrderBy("city", firestore.Asc).StartAfter("Bergen").EndBefore("Tromsø"), []string{"p1", "p3", "p5", "p8"}},
		{"end before", byCityAge.EndBefore("Oslo", 30), all[:4]},
		{"range", byCityAge.StartAfter("Bergen", 40).EndAt("Oslo", 35), all[1:4]},
		{"limit to last", byCityAge.LimitToLast(2), all[5:]},
		{"implicit order by inequality", col.Where("age", ">", 25), []string{"p1", "p5", "p4"}},
		{"implicit order follows last direction", col.Where("age", ">=", 25).OrderBy("city", firestore.Desc).Limit(4), []string{"p6", "p5", "p1", "p3"}},
		{"name cursor", col.OrderBy(firestore.DocumentID, firestore.Asc).StartAfter("p3").Limit(2), []string{"p4", "p5"}},
		{"name cursor desc", col.OrderBy(firestore.DocumentID, firestore.Desc).StartAfter("p3"), []string{"p2", "p1"}},
		{"name end cursor", col.OrderBy(firestore.DocumentID, firestore.Asc).EndBefore("p3"), []string{"p1", "p2"}},
		{"name range with offset", col.OrderBy(firestore.DocumentID, firestore.Asc).StartAt("p2").EndAt("p6").Offset(1).Limit(3), []string{"p3", "p4", "p5"}},
	}
	for _, tc := range cases {
		if got := ids(t, ctx, tc.q); !eq(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// Cursor from a snapshot: the client adds the order values and name.
	p1 := mustGet(t, ctx, col.Doc("p1"))
	// (A fresh query: the client's LimitToLast reverses the orders of the
	// query it was derived from in place.)
	fresh := col.OrderBy("city", firestore.Asc).OrderBy("age", firestore.Desc)
	if got := ids(t, ctx, fresh.StartAfter(p1)); !eq(got, all[5:]) {
		t.Errorf("start after snapshot: %v", got)
	}
	if got := ids(t, ctx, col.Where("age", "==", 25).StartAfter(mustGet(t, ctx, col.Doc("p3")))); !eq(got, []string{"p6", "p7"}) {
		t.Errorf("start after snapshot with equality filter: %v", got)
	}
	// Projection.
	docs, err := col.Select("city").Where("age", "==", 40).Documents(ctx).GetAll()
	if err != nil || len(docs) != 1 || len(docs[0].Data()) != 1 || docs[0].Data()["city"] != "Bergen" {
		t.Errorf("select city: %v %v", docs, err)
	}
	docs, err = col.Select().Limit(1).Documents(ctx).GetAll()
	if err != nil || len(docs) != 1 || len(docs[0].Data()) != 0 || docs[0].Ref.ID != "p1" {
		t.Errorf("select __name__ only: %v %v", docs, err)
	}
	// Too many cursor values are rejected.
	_, err = col.OrderBy("age", firestore.Asc).StartAt(1, "p1", "extra").Documents(ctx).GetAll()
	if err == nil {
		t.Errorf("too many cursor values accepted")
	}
}

func TestCollectionGroups(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	for _, p := range []string{
		"users/u1/orders/o1", "users/u1/orders/o2", "users/u2/orders/o3",
		"shops/s1/orders/o4", "orders/o0", "users/u1/orders/o1/orders/nested",
		"users/u1/returns/r1", "users/u10/orders/o5",
	} {
		mustSet(t, ctx, c.Doc(p), map[string]any{"total": len(p)})
	}
	got := paths(t, ctx, c.CollectionGroup("orders").OrderBy(firestore.DocumentID, firestore.Asc).Documents(ctx))
	want := []string{"orders/o0", "shops/s1/orders/o4", "users/u1/orders/o1", "users/u1/orders/o1/orders/nested", "users/u1/orders/o2", "users/u10/orders/o5", "users/u2/orders/o3"}
	if !eq(got, want) {
		t.Fatalf("collection group at root:\n got %v\nwant %v", got, want)
	}
	// Collection group under a document, through the raw API.
	raw := newRawClient(t)
	stream, err := raw.RunQuery(ctx, &pb.RunQueryRequest{
		Parent: docName(project, "users/u1"),
		QueryType: &pb.RunQueryRequest_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
			From: []*pb.StructuredQuery_CollectionSelector{{CollectionId: "orders", AllDescendants: true}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var under []string
	for {
		r, err := stream.Recv()
		if err != nil {
			break
		}
		if r.Document != nil {
			under = append(under, r.Document.Name[len(docName(project, "")):])
		}
	}
	if want := []string{"users/u1/orders/o1", "users/u1/orders/o1/orders/nested", "users/u1/orders/o2"}; !eq(under, want) {
		t.Fatalf("collection group under users/u1: %v, want %v", under, want)
	}
	// A plain collection query does not see nested same-ID collections.
	if got := ids(t, ctx, c.Collection("users/u1/orders").Query); !eq(got, []string{"o1", "o2"}) {
		t.Fatalf("plain collection: %v", got)
	}
	// Collection group with a filter and descending names.
	got = paths(t, ctx, c.CollectionGroup("orders").Where("total", ">=", 18).OrderBy(firestore.DocumentID, firestore.Desc).Documents(ctx))
	if want := []string{"users/u2/orders/o3", "users/u10/orders/o5", "users/u1/orders/o2", "users/u1/orders/o1/orders/nested", "users/u1/orders/o1", "shops/s1/orders/o4"}; !eq(got, want) {
		t.Fatalf("group with filter desc: %v, want %v", got, want)
	}
}

func TestAggregations(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, project := newClient(t)
	col := c.Collection("agg")
	for i, v := range []any{1, 2, 3.5, "x", nil} {
		mustSet(t, ctx, col.Doc("d"+strconv.Itoa(i)), map[string]any{"v": v, "k": i % 2})
	}
	res, err := col.NewAggregationQuery().WithCount("n").WithSum("v", "s").WithAvg("v", "a").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := res["n"].(*pb.Value).GetIntegerValue(); n != 5 {
		t.Errorf("count = %d", n)
	}
	if s := res["s"].(*pb.Value).GetDoubleValue(); s != 6.5 {
		t.Errorf("sum = %v", res["s"])
	}
	if a := res["a"].(*pb.Value).GetDoubleValue(); math.Abs(a-6.5/3) > 1e-12 {
		t.Errorf("avg = %v", res["a"])
	}
	q0 := col.Where("k", "==", 0).Limit(2)
	res, err = q0.NewAggregationQuery().WithCount("n").WithSum("v", "s").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := res["n"].(*pb.Value).GetIntegerValue(); n != 2 {
		t.Errorf("count with limit = %d", n)
	}
	if s := res["s"].(*pb.Value).GetDoubleValue(); s != 4.5 {
		t.Errorf("sum with limit = %v", res["s"])
	}
	q1 := col.Where("k", "==", 1)
	res, err = q1.NewAggregationQuery().WithSum("v", "s").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := res["s"].(*pb.Value).GetValueType().(*pb.Value_IntegerValue); !ok || s.IntegerValue != 2 {
		t.Errorf("integer sum = %v, want integer 2", res["s"])
	}
	// COUNT up_to through the raw API.
	raw := newRawClient(t)
	stream, err := raw.RunAggregationQuery(ctx, &pb.RunAggregationQueryRequest{
		Parent: dbPath(project) + "/documents",
		QueryType: &pb.RunAggregationQueryRequest_StructuredAggregationQuery{StructuredAggregationQuery: &pb.StructuredAggregationQuery{
			QueryType: &pb.StructuredAggregationQuery_StructuredQuery{StructuredQuery: &pb.StructuredQuery{From: []*pb.StructuredQuery_CollectionSelector{{CollectionId: "agg"}}}},
			Aggregations: []*pb.StructuredAggregationQuery_Aggregation{{Alias: "c", Operator: &pb.StructuredAggregationQuery_Aggregation_Count_{
				Count: &pb.StructuredAggregationQuery_Aggregation_Count{UpTo: wrapperspb.Int64(3)},
			}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil || r.Result.AggregateFields["c"].GetIntegerValue() != 3 || r.ReadTime == nil {
		t.Errorf("count up_to 3: %v %v", r, err)
	}
}

func TestDatabasesAndProjectsAreSeparate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	project := newProject(t)
	def := clientFor(t, project, "(default)")
	other := clientFor(t, project, "second-db")
	otherProject := clientFor(t, project+"-b", "(default)")
	mustSet(t, ctx, def.Doc("c/d"), map[string]any{"db": "default"})
	mustSet(t, ctx, other.Doc("c/d"), map[string]any{"db": "second"})
	if got := mustGet(t, ctx, def.Doc("c/d")).Data()["db"]; got != "default" {
		t.Errorf("default database read %v", got)
	}
	if got := mustGet(t, ctx, other.Doc("c/d")).Data()["db"]; got != "second" {
		t.Errorf("second database read %v", got)
	}
	if _, err := otherProject.Doc("c/d").Get(ctx); codeOf(err) != codes.NotFound {
		t.Errorf("other project sees the document: %v", err)
	}
}
