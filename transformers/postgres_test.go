package transformers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// TestPostgresRoundTrip loads every edge value into a column of every
// supported type and source with COPY, reads the rows back as a loader or
// verifier would (rows.Values(), jsonb as text) and rebuilds the documents.
// It checks what the pure-Go tests cannot: jsonb's normalisation (key
// order, spacing, number scale), numeric scale, -0, NaN and time zones as
// the server keeps them. Skipped when PostgreSQL is not configured.
func TestPostgresRoundTrip(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	tb := &mappings.Table{Collection: "docs", Name: "docs", IDColumn: "id"}
	ddl := []string{`"id" text PRIMARY KEY`, `"_overflow" jsonb`}
	var sel []string
	for _, typ := range mappings.SupportedTypes() {
		for _, src := range mappings.AllowedSources(typ) {
			name := fmt.Sprintf("c%d", len(tb.Columns))
			tb.Columns = append(tb.Columns, &mappings.Column{Field: name, Name: name, Type: typ, Source: src})
			ddl = append(ddl, fmt.Sprintf("%q %s", name, typ))
			if typ == "jsonb" {
				sel = append(sel, fmt.Sprintf("%q::text", name))
			} else {
				sel = append(sel, fmt.Sprintf("%q", name))
			}
		}
	}
	m := &mappings.Mapping{Version: 1, Schema: "public", Tables: []*mappings.Table{tb}}
	d := mustDocuments(t, m)
	if _, err := conn.Exec(ctx, "CREATE TABLE docs ("+strings.Join(ddl, ", ")+")"); err != nil {
		t.Fatal(err)
	}

	want := map[string]record.Value{}
	var rows [][]any
	cols := []string{"id", "_overflow"}
	for _, c := range tb.Columns {
		cols = append(cols, c.Name)
	}
	edges := edgeValues()
	edges = append(edges, record.Map(map[string]record.Value{
		"zz": record.Int(1), "a": record.Double(1), "bbb": record.Double(1e20), "$x": record.Null(), "\x00": record.String("\xff"),
	}))
	for i, v := range edges {
		f := map[string]record.Value{}
		for _, c := range tb.Columns {
			f[c.Field] = v
		}
		f["unmapped"] = v
		rec := docRec(fmt.Sprintf("docs/v%03d", i), f)
		row, err := d.Transform(rec)
		if err != nil {
			t.Fatal(err)
		}
		want[row.Key[0]] = record.Map(f)
		rows = append(rows, append([]any{row.Key[0], row.Overflow}, row.Values...))
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"docs"}, cols, pgx.CopyFromRows(rows)); err != nil {
		t.Fatalf("COPY: %v", err)
	}

	res, err := conn.Query(ctx, `SELECT "id", "_overflow"::text, `+strings.Join(sel, ", ")+` FROM docs ORDER BY "id"`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for res.Next() {
		vals, err := res.Values()
		if err != nil {
			t.Fatal(err)
		}
		id := vals[0].(string)
		var overflow []byte
		if vals[1] != nil {
			overflow = []byte(vals[1].(string))
		}
		_, fields, err := d.Reconstruct(tb, []string{id}, vals[2:], overflow)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := record.Map(fields); !record.Equal(got, want[id]) {
			t.Errorf("%s: read back\n got %v\nwant %v\noverflow %s", id, got, want[id], overflow)
		}
		n++
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(edges) {
		t.Fatalf("read %d rows, wrote %d", n, len(edges))
	}
}

// oldTime is a row time as the loader passed it before issue 13.
func oldTime(t time.Time) any { return &t }

// oldArray builds an array column value the way the encoders before issue
// 13 packed it, element by element: a []*T with nil for NULL ([][]byte for
// bytea), whatever the elements. Each element is encoded on its own, as a
// one-element array.
func oldArray(t *testing.T, c codec, v record.Value) any {
	t.Helper()
	var out reflect.Value
	for _, e := range v.ArrayValue() {
		if !e.IsNull() {
			x, _, ok := c.encode(record.Array(e))
			if !ok {
				t.Fatalf("element %v of %v alone is refused", e, v)
			}
			if out.IsValid() {
				continue
			}
			elem := reflect.TypeOf(x).Elem()
			if elem.Kind() != reflect.Pointer && elem != reflect.TypeOf([]byte{}) {
				elem = reflect.PointerTo(elem)
			}
			out = reflect.MakeSlice(reflect.SliceOf(elem), len(v.ArrayValue()), len(v.ArrayValue()))
		}
	}
	if !out.IsValid() {
		x, _, _ := c.encode(v) // only NULL elements, or none
		return x
	}
	for i, e := range v.ArrayValue() {
		if e.IsNull() {
			continue
		}
		x, _, _ := c.encode(record.Array(e))
		el := reflect.ValueOf(x).Index(0)
		if out.Type().Elem().Kind() == reflect.Pointer && el.Kind() != reflect.Pointer {
			p := reflect.New(el.Type())
			p.Elem().Set(el)
			el = p
		}
		out.Index(i).Set(el)
	}
	return out.Interface()
}

// TestNewEncodingsMatchOldInPostgres writes every array value the array
// codecs now encode as []T, and row times as the loader now passes them
// (pgtype.Timestamptz), next to the form they had before (oldArray,
// oldTime) with
// COPY into the real PostgreSQL, and checks each pair reads back
// identical. Skipped when PostgreSQL is not configured.
func TestNewEncodingsMatchOldInPostgres(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	values := edgeValues()
	r := rand.New(rand.NewPCG(11, 12))
	for range 3000 {
		values = append(values, randValue(r, 0))
	}
	type pair struct{ typ, src string }
	var pairs []pair
	for _, typ := range mappings.SupportedTypes() {
		if strings.HasSuffix(typ, "[]") {
			for _, src := range mappings.AllowedSources(typ) {
				pairs = append(pairs, pair{typ, src})
			}
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE enc (n int, typ text, new_v text, old_v text)`); err != nil {
		t.Fatal(err)
	}
	n, flat := 0, 0
	for _, p := range pairs {
		c, err := newCodec(p.typ, p.src)
		if err != nil {
			t.Fatal(err)
		}
		tbl := pgx.Identifier{fmt.Sprintf("arr_%d", n)}
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (n int, new_v %s, old_v %s)", tbl.Sanitize(), p.typ, p.typ)); err != nil {
			t.Fatal(err)
		}
		var rows [][]any
		for _, v := range values {
			x, _, ok := c.encode(v)
			if !ok || v.IsNull() {
				continue
			}
			if reflect.TypeOf(x).Elem().Kind() != reflect.Pointer {
				flat++
			}
			rows = append(rows, []any{len(rows), x, oldArray(t, c, v)})
		}
		if _, err := conn.CopyFrom(ctx, tbl, []string{"n", "new_v", "old_v"}, pgx.CopyFromRows(rows)); err != nil {
			t.Fatalf("%s/%s: COPY: %v", p.typ, p.src, err)
		}
		// Text comparison is exact: -0 stays -0, doubles print
		// round-trippably, NULL elements print as NULL.
		if _, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO enc SELECT n, $1, new_v::text, old_v::text FROM %s", tbl.Sanitize()), p.typ+"/"+p.src); err != nil {
			t.Fatal(err)
		}
		n++
	}

	// The row times, at every precision and in zones other than UTC.
	times := []time.Time{
		time.Date(2024, 1, 2, 3, 4, 5, 6789, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", -7*3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ts, time.Unix(0, 0),
	}
	for range 200 {
		times = append(times, time.Unix(r.Int64N(253402300800)-62135596800, r.Int64N(1e9)))
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE times (n int, new_v timestamptz, old_v timestamptz)"); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i, tm := range times {
		rows = append(rows, []any{i, pgtype.Timestamptz{Time: tm, Valid: true}, oldTime(tm)})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"times"}, []string{"n", "new_v", "old_v"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatalf("COPY of times: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO enc SELECT n, 'row time', new_v::text, old_v::text FROM times"); err != nil {
		t.Fatal(err)
	}

	var total, differ int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE new_v IS DISTINCT FROM old_v) FROM enc`).Scan(&total, &differ); err != nil {
		t.Fatal(err)
	}
	if differ > 0 {
		var typ, nv, ov string
		_ = conn.QueryRow(ctx, `SELECT typ, coalesce(new_v, 'NULL'), coalesce(old_v, 'NULL') FROM enc WHERE new_v IS DISTINCT FROM old_v LIMIT 1`).Scan(&typ, &nv, &ov)
		t.Fatalf("%d of %d values read back differently; first: %s new %s, old %s", differ, total, typ, nv, ov)
	}
	if flat < 100 || total < len(times)+flat {
		t.Fatalf("only %d values compared, %d of them arrays without pointers", total, flat)
	}
	t.Logf("%d values compared, %d arrays encoded as []T", total, flat)
}
