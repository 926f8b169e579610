package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
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
		defer testenv.ReportCPU(b)()
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
	recs, m, err := demoapp.Records(1, demoapp.Scale{Users: 500, Posts: 250, CommentsPerPost: 3, Orders: 125, ItemsPerOrder: 3, Archive: 25})
	if err != nil {
		tb.Fatal(err)
	}
	return recs, m
}
