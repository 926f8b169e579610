package transformers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// keyPool holds the field names random documents use: plain, hostile, and
// the names the random mappings flatten.
var keyPool = []string{"a", "b", "m", "n", "k0", "k1", "x", "a.b", "`", "$ref", "", "名前", "\x00", "\xff", "id", "_overflow"}

func randValue(r *rand.Rand, depth int) record.Value {
	edges := edgeValues()
	switch n := r.IntN(10); {
	case n < 5 || depth > 2:
		return edges[r.IntN(len(edges))]
	case n < 7:
		m := map[string]record.Value{}
		for range r.IntN(4) {
			m[keyPool[r.IntN(len(keyPool))]] = randValue(r, depth+1)
		}
		return record.Map(m)
	case n < 9:
		// Mostly homogeneous scalar arrays, which typed array columns hold.
		elems := make([]record.Value, r.IntN(4))
		proto := edges[r.IntN(len(edges))]
		for i := range elems {
			switch r.IntN(6) {
			case 0:
				elems[i] = record.Null()
			case 1:
				elems[i] = randValue(r, depth+1)
			default:
				elems[i] = proto
			}
		}
		return record.Array(elems...)
	default:
		return record.Timestamp(time.UnixMicro(r.Int64N(253402300800000000)).UTC())
	}
}

func randFields(r *rand.Rand) map[string]record.Value {
	f := map[string]record.Value{}
	for range r.IntN(8) {
		f[keyPool[r.IntN(len(keyPool))]] = randValue(r, 0)
	}
	if r.IntN(2) == 0 {
		f["m"] = record.Map(map[string]record.Value{"k0": randValue(r, 1), "k1": randValue(r, 2)})
	}
	return f
}

// randMapping maps fields a, b, x, m.k0, m.k1 (flattened) and n (whole)
// to columns of random type and source, and excludes some paths.
func randMapping(r *rand.Rand) *mappings.Mapping {
	types := mappings.SupportedTypes()
	tb := &mappings.Table{Collection: "c/{}/d", Name: "c_d", IDColumn: "id", ParentColumns: []string{"c_id"}}
	for i, f := range []string{"a", "b", "x", "m.k0", "m.k1", "n", "`名前`", "`$ref`"} {
		typ := types[r.IntN(len(types))]
		srcs := mappings.AllowedSources(typ)
		tb.Columns = append(tb.Columns, &mappings.Column{Field: f, Name: fmt.Sprintf("col%d", i), Type: typ, Source: srcs[r.IntN(len(srcs))]})
	}
	for _, e := range []string{"k1", "m.`a.b`", "`\x7f`", "id"} {
		if r.IntN(2) == 0 {
			tb.Exclude = append(tb.Exclude, e)
		}
	}
	parent := &mappings.Table{Collection: "c", Name: "c", IDColumn: "id"}
	return &mappings.Mapping{Version: 1, Schema: "public", Tables: []*mappings.Table{parent, tb}}
}

// TestRandomRoundTrip: for random documents under random mappings (every
// column type and source, flattening, exclusions), Transform then
// Reconstruct gives back exactly the source fields less the excluded ones,
// both from the Go values and after pgx's binary encoding.
func TestRandomRoundTrip(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 99))
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	var d *Documents
	for i := range iterations {
		if i%20 == 0 {
			var err error
			if d, err = NewDocuments(randMapping(r)); err != nil {
				t.Fatal(err)
			}
		}
		checkRoundTrip(t, d, docRec(fmt.Sprintf("c/p%d/d/doc%d", i%3, i), randFields(r)))
	}
}

// TestRandomInferredRoundTrip infers a mapping from random documents and
// round-trips the same documents through it.
func TestRandomInferredRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	in := mappings.NewInferrer(mappings.InferOptions{MaxColumns: 6})
	var recs []record.Record
	for i := range 500 {
		path := fmt.Sprintf("users/u%d", i%40)
		if i%4 == 0 {
			path += fmt.Sprintf("/orders/o%d", i)
		}
		f := randFields(r)
		// Give fields a dominant type so inference picks typed columns.
		f["score"] = []record.Value{record.Int(int64(i)), record.Double(float64(i) / 3), record.String("n/a")}[i%5%3]
		f["when"] = record.Timestamp(time.Unix(int64(i)*1000, 0))
		f["tags"] = record.Array(record.String(fmt.Sprint(i)), record.Null())
		recs = append(recs, docRec(path, f))
		in.Observe(path, f)
	}
	m := in.Mapping()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if m, err = mappings.Parse(data, "inferred.yaml"); err != nil {
		t.Fatalf("inferred mapping does not parse: %v\n%s", err, data)
	}
	d := mustDocuments(t, m)
	typed := 0
	for _, rec := range recs {
		row := checkRoundTrip(t, d, rec)
		for _, x := range row.Values {
			if x != nil {
				typed++
			}
		}
	}
	if typed == 0 || !strings.Contains(string(data), "timestamptz") {
		t.Errorf("inference produced no typed values:\n%s", data)
	}
}

// TestSpecialDoubles checks the doubles a JSON number cannot carry through
// every numeric column flavour.
func TestSpecialDoubles(t *testing.T) {
	m := parseMapping(t, `version: 1
tables:
  - collection: c
    table: c
    id_column: id
    columns:
      - {field: d, column: d, type: double precision}
      - {field: n, column: n, type: double precision, source: number}
      - {field: r, column: r, type: real}
      - {field: num, column: num, type: numeric}
      - {field: j, column: j, type: jsonb}
`)
	d := mustDocuments(t, m)
	for i, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, math.MaxFloat64, 1 << 62, 0.1} {
		v := record.Double(f)
		checkRoundTrip(t, d, docRec(fmt.Sprintf("c/%d", i), map[string]record.Value{"d": v, "n": v, "r": v, "num": v, "j": v}))
	}
}

// TestConcurrentTransform runs Transform and Reconstruct from many
// goroutines on one Documents (run with -race).
func TestConcurrentTransform(t *testing.T) {
	d := mustDocuments(t, randMapping(rand.New(rand.NewPCG(3, 4))))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 5))
			for i := range 200 {
				rec := docRec(fmt.Sprintf("c/p/d/w%d-%d", w, i), randFields(r))
				row, err := d.Transform(rec)
				if err == nil {
					_, _, err = d.Reconstruct(row.Table, row.Key, row.Values, row.Overflow)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
