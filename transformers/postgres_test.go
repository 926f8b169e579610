package transformers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
