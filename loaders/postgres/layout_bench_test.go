package postgres

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/genproto/googleapis/type/latlng"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// BenchmarkLayoutEncode measures what Documents.Write does per document
// between the record and the bytes of its COPY: Transform, the row layout
// and the binary encoding (copyStream), over the demo app's 1,929
// documents in batches of 500 — with the row layout of a pooled rowArena
// ("arena", as Write does) and with a slice and two boxed row times per
// row ("per-row", as before). ns/op, cpu-ns/op and allocs/op are per
// document; cpu-ns/op is the process's CPU (the garbage collector's
// included), which a busy machine does not inflate.
func BenchmarkLayoutEncode(b *testing.B) {
	recs, m := benchDemoRecords(b)
	d, err := NewDocuments(m)
	if err != nil {
		b.Fatal(err)
	}
	oids := map[*mappings.Table][]uint32{}
	tm := pgtype.NewMap()
	for _, t := range m.Tables {
		for _, c := range documentColumns(t) {
			oid, ok := benchOIDs[strings.TrimSuffix(c.ddlType, ` COLLATE "C"`)]
			if !ok {
				b.Fatalf("no OID for %s", c.ddlType)
			}
			oids[t] = append(oids[t], oid)
		}
	}
	run := func(b *testing.B, layout func(a *rowArena, r transformers.Row) []any) {
		s := &copyStream{m: tm, buf: new([]byte)}
		b.ReportAllocs()
		b.ResetTimer()
		defer reportCPU(b)()
		a := rowArenas.Get().(*rowArena)
		for i := 0; i < b.N; i++ {
			if i%500 == 0 {
				a.release()
				a = rowArenas.Get().(*rowArena)
				*s.buf = (*s.buf)[:0]
			}
			row, err := d.tr.Transform(recs[i%len(recs)])
			if err != nil {
				b.Fatal(err)
			}
			s.oids = oids[row.Table]
			if *s.buf, err = s.appendRow(*s.buf, layout(a, row)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("per-row", func(b *testing.B) {
		run(b, func(_ *rowArena, r transformers.Row) []any { return perRowValues(r) })
	})
	b.Run("arena", func(b *testing.B) {
		run(b, func(a *rowArena, r transformers.Row) []any { return a.rowValues(r, false) })
	})
}

// benchOIDs are the OIDs of the column types of a documents table.
var benchOIDs = map[string]uint32{
	"text": pgtype.TextOID, "bigint": pgtype.Int8OID, "integer": pgtype.Int4OID,
	"double precision": pgtype.Float8OID, "real": pgtype.Float4OID, "numeric": pgtype.NumericOID,
	"boolean": pgtype.BoolOID, "timestamptz": pgtype.TimestamptzOID, "date": pgtype.DateOID,
	"uuid": pgtype.UUIDOID, "bytea": pgtype.ByteaOID, "point": pgtype.PointOID, "jsonb": pgtype.JSONBOID,
	"text[]": pgtype.TextArrayOID, "bigint[]": pgtype.Int8ArrayOID, "integer[]": pgtype.Int4ArrayOID,
	"double precision[]": pgtype.Float8ArrayOID, "real[]": pgtype.Float4ArrayOID,
	"boolean[]": pgtype.BoolArrayOID, "timestamptz[]": pgtype.TimestamptzArrayOID, "bytea[]": pgtype.ByteaArrayOID,
}

// perRowValues is the row layout before rowArena: a slice per row and
// each row time boxed on its own.
func perRowValues(r transformers.Row) []any {
	vals := make([]any, 0, len(r.Key)+len(r.Values)+4)
	for _, k := range r.Key {
		vals = append(vals, k)
	}
	vals = append(vals, r.Values...)
	for _, t := range []time.Time{r.CreateTime, r.UpdateTime} {
		if t.IsZero() {
			vals = append(vals, nil)
		} else {
			vals = append(vals, pgtype.Timestamptz{Time: t, Valid: true})
		}
	}
	if r.Overflow == nil {
		vals = append(vals, nil)
	} else {
		vals = append(vals, r.Overflow)
	}
	return append(vals, false)
}

// benchDemoRecords returns the demo app's documents at 1,929 documents
// (every table and value type of bench/documents, in its proportions) as
// the extractor hands them on, with the mapping infer makes for them.
func benchDemoRecords(tb testing.TB) ([]record.Record, *mappings.Mapping) {
	tb.Helper()
	docs := demoapp.Documents(1, demoapp.Scale{Users: 500, Posts: 250, CommentsPerPost: 3, Orders: 125, ItemsPerOrder: 3, Archive: 25})
	created := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	recs := make([]record.Record, len(docs))
	in := mappings.NewInferrer(mappings.InferOptions{})
	for i, doc := range docs {
		f := make(map[string]record.Value, len(doc.Fields))
		for k, x := range doc.Fields {
			f[k] = benchValue(tb, x)
		}
		recs[i] = record.Record{Kind: record.KindDocument, Key: doc.Path, Fields: f, Cursor: doc.Path,
			CreateTime: created, UpdateTime: created.Add(time.Duration(i) * time.Millisecond)}
		in.Observe(doc.Path, f)
	}
	return recs, in.Mapping()
}

// benchValue converts a demo app value (as the Firestore Go client takes
// it) into the record value the extractor reads back.
func benchValue(tb testing.TB, x any) record.Value {
	switch v := x.(type) {
	case nil:
		return record.Null()
	case bool:
		return record.Bool(v)
	case int64:
		return record.Int(v)
	case float64:
		return record.Double(v)
	case time.Time:
		return record.Timestamp(v)
	case string:
		return record.String(v)
	case []byte:
		return record.Bytes(v)
	case *latlng.LatLng:
		return record.Geo(v.Latitude, v.Longitude)
	case firestore.Vector64:
		return record.Vector(append([]float64(nil), v...))
	case []string:
		out := make([]record.Value, len(v))
		for i, s := range v {
			out[i] = record.String(s)
		}
		return record.Array(out...)
	case []any:
		out := make([]record.Value, len(v))
		for i, e := range v {
			out[i] = benchValue(tb, e)
		}
		return record.Array(out...)
	case map[string]any:
		out := make(map[string]record.Value, len(v))
		for k, e := range v {
			out[k] = benchValue(tb, e)
		}
		return record.Map(out)
	}
	if rv := reflect.ValueOf(x); rv.Kind() == reflect.String {
		return record.Reference(rv.String()) // demoapp's unexported docRef
	}
	tb.Fatalf("demo value of Go type %T", x)
	return record.Value{}
}

// reportCPU starts measuring the CPU time the process uses and returns the
// function that reports it per operation as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}
