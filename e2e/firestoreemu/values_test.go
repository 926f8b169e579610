package firestoreemu_test

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/genproto/googleapis/type/latlng"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestReadinessProbe(t *testing.T) {
	t.Parallel()
	res, err := http.Get("http://" + emulatorHost + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || strings.TrimSpace(string(b)) != "Ok" {
		t.Fatalf("GET / = %d %q, want 200 Ok", res.StatusCode, b)
	}
}

func TestValuesRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	ts := time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)
	ref := c.Doc("other/doc")
	in := map[string]any{
		"null":     nil,
		"true":     true,
		"false":    false,
		"maxInt":   int64(math.MaxInt64),
		"minInt":   int64(math.MinInt64),
		"zero":     int64(0),
		"pi":       math.Pi,
		"nan":      math.NaN(),
		"posInf":   math.Inf(1),
		"negInf":   math.Inf(-1),
		"negZero":  math.Copysign(0, -1),
		"tiny":     math.SmallestNonzeroFloat64,
		"bytes":    []byte{0, 1, 2, 255},
		"empty":    []byte{},
		"str":      "héllo \u0000 wörld 😀",
		"ts":       ts,
		"ref":      ref,
		"geo":      &latlng.LatLng{Latitude: -33.5, Longitude: 151.25},
		"arr":      []any{int64(1), "two", 3.5, nil, map[string]any{"x": int64(1)}},
		"emptyArr": []any{},
		"emptyMap": map[string]any{},
		"nested":   map[string]any{"a": map[string]any{"b": map[string]any{"c": "deep"}}},
		"vec":      firestore.Vector64{1.5, -2, 0},
		"a.b":      "dotted key",
		"`odd`":    "backticks",
	}
	mustSet(t, ctx, c.Doc("values/all"), in)
	got := mustGet(t, ctx, c.Doc("values/all")).Data()

	checkFloat := func(name string, want float64) {
		t.Helper()
		f, ok := got[name].(float64)
		if !ok || math.Float64bits(f) != math.Float64bits(want) && !(math.IsNaN(f) && math.IsNaN(want)) {
			t.Errorf("%s = %#v, want %v", name, got[name], want)
		}
	}
	if got["null"] != nil || got["true"] != true || got["false"] != false {
		t.Errorf("null/bool round trip: %v %v %v", got["null"], got["true"], got["false"])
	}
	if got["maxInt"] != int64(math.MaxInt64) || got["minInt"] != int64(math.MinInt64) || got["zero"] != int64(0) {
		t.Errorf("int64 bounds: %v %v %v", got["maxInt"], got["minInt"], got["zero"])
	}
	checkFloat("pi", math.Pi)
	checkFloat("nan", math.NaN())
	checkFloat("posInf", math.Inf(1))
	checkFloat("negInf", math.Inf(-1))
	checkFloat("negZero", math.Copysign(0, -1))
	checkFloat("tiny", math.SmallestNonzeroFloat64)
	if b, _ := got["bytes"].([]byte); !bytes.Equal(b, []byte{0, 1, 2, 255}) {
		t.Errorf("bytes = %v", got["bytes"])
	}
	if got["str"] != in["str"] {
		t.Errorf("str = %q", got["str"])
	}
	if gt, _ := got["ts"].(time.Time); !gt.Equal(ts.Truncate(time.Microsecond)) {
		t.Errorf("timestamp = %v, want %v (truncated to µs)", got["ts"], ts.Truncate(time.Microsecond))
	}
	if r, _ := got["ref"].(*firestore.DocumentRef); r == nil || r.Path != ref.Path {
		t.Errorf("ref = %v, want %v", got["ref"], ref.Path)
	}
	if g, _ := got["geo"].(*latlng.LatLng); g == nil || g.Latitude != -33.5 || g.Longitude != 151.25 {
		t.Errorf("geo = %v", got["geo"])
	}
	arr, _ := got["arr"].([]any)
	if len(arr) != 5 || arr[0] != int64(1) || arr[1] != "two" || arr[2] != 3.5 || arr[3] != nil {
		t.Errorf("arr = %#v", got["arr"])
	}
	if m, _ := arr[4].(map[string]any); m["x"] != int64(1) {
		t.Errorf("map in array = %#v", arr[4])
	}
	if a, _ := got["emptyArr"].([]any); a == nil || len(a) != 0 {
		t.Errorf("emptyArr = %#v", got["emptyArr"])
	}
	if m, _ := got["emptyMap"].(map[string]any); m == nil || len(m) != 0 {
		t.Errorf("emptyMap = %#v", got["emptyMap"])
	}
	deep := got["nested"].(map[string]any)["a"].(map[string]any)["b"].(map[string]any)["c"]
	if deep != "deep" {
		t.Errorf("nested = %#v", got["nested"])
	}
	if v, _ := got["vec"].(firestore.Vector64); len(v) != 3 || v[0] != 1.5 || v[1] != -2 {
		t.Errorf("vector = %#v", got["vec"])
	}
	if got["a.b"] != "dotted key" || got["`odd`"] != "backticks" {
		t.Errorf("quoted field names: %#v %#v", got["a.b"], got["`odd`"])
	}
}

func TestLimitsRejected(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	nest := func(levels int) map[string]any {
		m := map[string]any{"leaf": int64(1)}
		for i := 1; i < levels; i++ {
			m = map[string]any{"m": m}
		}
		return m
	}
	// Document size: name "big/doc" = (4+4)+16 = 24, field "f" = 2,
	// string value len+1, plus 32.
	const overhead = 24 + 2 + 1 + 32
	cases := []struct {
		name string
		doc  *firestore.DocumentRef
		data map[string]any
		ok   bool
	}{
		{"size at limit", c.Doc("big/doc"), map[string]any{"f": strings.Repeat("x", 1<<20-overhead)}, true},
		{"size over limit", c.Doc("big/doc"), map[string]any{"f": strings.Repeat("x", 1<<20-overhead+1)}, false},
		{"depth 20", c.Doc("deep/ok"), map[string]any{"top": nest(20)}, true},
		{"depth 21", c.Doc("deep/bad"), map[string]any{"top": nest(21)}, false},
		{"field name 1500 bytes", c.Doc("names/ok"), map[string]any{strings.Repeat("n", 1500): true}, true},
		{"field name 1501 bytes", c.Doc("names/bad"), map[string]any{strings.Repeat("n", 1501): true}, false},
		{"reserved field name", c.Doc("names/reserved"), map[string]any{"__secret__": true}, false},
		{"reserved nested field name", c.Doc("names/reserved2"), map[string]any{"m": map[string]any{"__x__": 1}}, false},
		{"array in array", c.Doc("arrays/bad"), map[string]any{"a": []any{[]any{int64(1)}}}, false},
		{"array in map in array", c.Doc("arrays/ok"), map[string]any{"a": []any{map[string]any{"b": []any{int64(1)}}}}, true},
		{"document ID ..", c.Collection("ids").Doc(".."), map[string]any{"a": 1}, false},
		{"document ID reserved", c.Collection("ids").Doc("__bad__"), map[string]any{"a": 1}, false},
		{"document ID 1500 bytes", c.Collection("ids").Doc(strings.Repeat("i", 1500)), map[string]any{"a": 1}, true},
		{"document ID 1501 bytes", c.Collection("ids").Doc(strings.Repeat("i", 1501)), map[string]any{"a": 1}, false},
		{"collection ID reserved", c.Collection("__c__").Doc("x"), map[string]any{"a": 1}, false},
	}
	for _, tc := range cases {
		if tc.doc == nil {
			t.Errorf("%s: the client refused to build the reference", tc.name)
			continue
		}
		_, err := tc.doc.Set(ctx, tc.data)
		if tc.ok && err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
		if !tc.ok && status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	// A reference with a malformed name, and a "." ID, through the raw API.
	raw := newRawClient(t)
	project := newProject(t)
	_, err := raw.Commit(ctx, &pb.CommitRequest{Database: dbPath(project), Writes: []*pb.Write{{
		Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, "refs/bad"), Fields: map[string]*pb.Value{
			"r": {ValueType: &pb.Value_ReferenceValue{ReferenceValue: "projects/p/databases/d/documents/onlycollection"}},
		}}},
	}}})
	wantCode(t, err, codes.InvalidArgument, "malformed reference")
	_, err = raw.Commit(ctx, &pb.CommitRequest{Database: dbPath(project), Writes: []*pb.Write{{
		Operation: &pb.Write_Update{Update: &pb.Document{Name: docName(project, "ids/.")}},
	}}})
	wantCode(t, err, codes.InvalidArgument, "document ID .")
}

func TestDocumentSizeCountsNestedValues(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c, _ := newClient(t)
	// 1,100 KB of data spread over many small fields must be rejected too.
	m := map[string]any{}
	for i := 0; i < 1100; i++ {
		m[strings.Repeat("k", 10)+string(rune('a'+i%26))+strings.Repeat("z", i%7)+strconv.Itoa(i)] = strings.Repeat("v", 1000)
	}
	_, err := c.Doc("big/many").Set(ctx, map[string]any{"m": m})
	wantCode(t, err, codes.InvalidArgument, "1.1 MB of nested fields")
}
