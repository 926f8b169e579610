package transformers

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// benchScale is the demo app at 1,929 documents: every table and
// value type of bench/documents, in its proportions.
var benchScale = demoapp.Scale{Users: 500, Posts: 250, CommentsPerPost: 3, Orders: 125, ItemsPerOrder: 3, Archive: 25}

// demoRecords returns the demo app's documents as the extractor hands them
// on, with the mapping infer makes for them.
func demoRecords(tb testing.TB) ([]record.Record, *mappings.Mapping) {
	tb.Helper()
	recs, m, err := demoapp.Records(1, benchScale)
	if err != nil {
		tb.Fatal(err)
	}
	return recs, m
}

// BenchmarkTransform measures Transform over the demo app's documents
// (ns/op and allocs/op are per document).
func BenchmarkTransform(b *testing.B) {
	recs, m := demoRecords(b)
	d := mustDocumentsTB(b, m)
	b.ReportAllocs()
	b.ResetTimer()
	defer testenv.ReportCPU(b)()
	for i := 0; i < b.N; i++ {
		if _, err := d.Transform(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// copyOIDs returns, per table, the OIDs of the loader's row layout: key
// columns, mapped columns, _created_at, _updated_at, _overflow, _missing.
func copyOIDs(m *mappings.Mapping) map[*mappings.Table][]uint32 {
	out := map[*mappings.Table][]uint32{}
	for _, t := range m.Tables {
		var o []uint32
		for range t.KeyColumns() {
			o = append(o, pgtype.TextOID)
		}
		for _, c := range t.Columns {
			o = append(o, oids[c.Type])
		}
		out[t] = append(o, pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.JSONBOID, pgtype.BoolOID)
	}
	return out
}

// benchRowValues lays a row out as the loader does (loaders/postgres
// rowValues).
func benchRowValues(r Row) []any {
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

// BenchmarkTransformEncode measures a document's whole client-side path
// to the wire: Transform, the loader's row layout, and pgx's binary
// encoding of every value as CopyFrom does it (one pgtype.Map, plans
// cached, one growing buffer). ns/op and allocs/op are per document.
func BenchmarkTransformEncode(b *testing.B) {
	benchmarkTransformTo(b, func(buf []byte, oid uint32, x any, tm *pgtype.Map) ([]byte, error) {
		// As pgx's encodeCopyValue: a length, then the value (nothing for
		// NULL).
		buf = append(buf, 0xff, 0xff, 0xff, 0xff)
		enc, err := tm.Encode(oid, pgtype.BinaryFormatCode, x, buf)
		if enc == nil {
			return buf, err
		}
		return enc, err
	})
}

// BenchmarkTransformAppendCopy is BenchmarkTransformEncode with the
// loader's encoder since issue 13's last step: AppendCopyField in place of
// pgx's generic per-value encoding (same bytes). ns/op and allocs/op are
// per document.
func BenchmarkTransformAppendCopy(b *testing.B) {
	benchmarkTransformTo(b, AppendCopyField)
}

// benchmarkTransformTo transforms the demo app's documents, lays each row
// out as the loader does and encodes every value with encode.
func benchmarkTransformTo(b *testing.B, encode func(buf []byte, oid uint32, x any, tm *pgtype.Map) ([]byte, error)) {
	recs, m := demoRecords(b)
	d := mustDocumentsTB(b, m)
	colOIDs := copyOIDs(m)
	tm := pgtype.NewMap()
	buf := make([]byte, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	defer testenv.ReportCPU(b)()
	for i := 0; i < b.N; i++ {
		row, err := d.Transform(recs[i%len(recs)])
		if err != nil {
			b.Fatal(err)
		}
		o := colOIDs[row.Table]
		buf = buf[:0]
		for j, x := range benchRowValues(row) {
			if buf, err = encode(buf, o[j], x, tm); err != nil {
				b.Fatalf("%s column %d: %v", row.Table.Name, j, err)
			}
		}
	}
}

func mustDocumentsTB(tb testing.TB, m *mappings.Mapping) *Documents {
	tb.Helper()
	d, err := NewDocuments(m)
	if err != nil {
		tb.Fatal(fmt.Errorf("mapping: %w", err))
	}
	return d
}
