package supabasetables_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/supabasetables"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// conformanceSchema has what the extractor reads differently: an integer
// key whose numeric order is not its text's byte order (9 < 10), a
// composite key of text and integer with values whose JSON sorts apart
// from their text (a space, "!", a quote, non-ASCII), a keyless table with
// exact duplicate rows, a table that moves in COPY's text format (an array
// of an enum), an empty table, a standalone sequence and identity columns.
const conformanceSchema = `
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE SEQUENCE public.ticket_seq START 100;
SELECT nextval('public.ticket_seq'), nextval('public.ticket_seq');
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], at timestamptz);
INSERT INTO public.items SELECT i, 'item ' || i, CASE WHEN i % 5 <> 0 THEN i * 1.25 END, ARRAY['t' || i % 3], timestamptz '2025-01-01 00:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 40) AS i;
CREATE TABLE public.pairs (a text, b integer, v jsonb, PRIMARY KEY (a, b));
INSERT INTO public.pairs SELECT a, b, jsonb_build_object('a', a, 'b', b)
FROM unnest(ARRAY['a', 'a b', 'a!', 'a"q', 'é', 'Z', 'a\tb']) AS a, generate_series(1, 3) AS b;
CREATE TABLE public.loose (x integer, y text);
INSERT INTO public.loose SELECT i % 4, 'same ' || (i % 4) FROM generate_series(1, 12) AS i;
CREATE TABLE public.moods (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, m public.mood[] NOT NULL, note text);
INSERT INTO public.moods (m, note) SELECT ARRAY['ok', 'happy']::public.mood[], E'line\nbreak\ttab\\' || i FROM generate_series(1, 9) AS i;
CREATE TABLE public.nothing (id uuid PRIMARY KEY);
ANALYZE;
`

func newSource(t *testing.T) string {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), conformanceSchema); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// want reads every row of every table the way the server itself copies
// it, independently of the extractor's paging: COPY (SELECT the copied
// columns ORDER BY the key, or ctid) TO STDOUT in the table's format,
// split into tuples, beside the key columns' text (or the ctid) in the
// same order; a record of the index stream per table with keys or
// indexes; and the sequences' values.
func want(t *testing.T, dsn string) map[string]record.Record {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cat, err := pgcatalog.Load(ctx, pool, []string{"public"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.PgConn().Exec(ctx, pgcatalog.SessionSettings).Close(); err != nil {
		t.Fatal(err)
	}
	out := map[string]record.Record{}
	for _, tb := range cat.Tables {
		order, keyText := "ctid", []string{"ctid::text"}
		if len(tb.Key) > 0 {
			order, keyText = "", nil
			for i, k := range tb.Key {
				if i > 0 {
					order += ", "
				}
				order += pgx.Identifier{k}.Sanitize()
				keyText = append(keyText, pgx.Identifier{k}.Sanitize()+"::text")
			}
		}
		var keys []string
		rows, err := conn.Query(ctx, "SELECT ARRAY["+join(keyText)+"] FROM "+tb.QName()+" ORDER BY "+order)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k []string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			if len(tb.Key) == 0 {
				keys = append(keys, k[0])
			} else {
				keys = append(keys, pgcatalog.EncodeKey(k))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		format := "text"
		if tb.Binary() {
			format = "binary"
		}
		var buf bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT "+tb.CopyColumns()+" FROM "+tb.QName()+" ORDER BY "+order+") TO STDOUT (FORMAT "+format+")"); err != nil {
			t.Fatal(err)
		}
		tuples := splitCopy(t, buf.Bytes(), tb.Binary())
		if len(tuples) != len(keys) {
			t.Fatalf("%s: %d tuples, %d keys", tb.QName(), len(tuples), len(keys))
		}
		if len(tb.Keys) > 0 || len(tb.Indexes) > 0 {
			key := pgcatalog.IndexStream + " " + tb.QName()
			out[key] = record.Record{Kind: record.KindTable, Key: key,
				Fields: map[string]record.Value{pgcatalog.FieldIndexes: record.String(tb.QName())}}
		}
		for i, k := range keys {
			key := tb.QName() + " " + k
			out[key] = record.Record{Kind: record.KindTable, Key: key, Fields: map[string]record.Value{
				pgcatalog.FieldTable: record.String(tb.QName()), pgcatalog.FieldTuple: record.Bytes(tuples[i])}}
		}
	}
	seqs := []pgcatalog.SequenceValue{{Name: `"public"."ticket_seq"`, Value: 101, IsCalled: true},
		{Table: `"public"."moods"`, Column: "id", Value: 9, IsCalled: true}}
	b, _ := json.Marshal(seqs)
	out[pgcatalog.FinishStream] = record.Record{Kind: record.KindTable, Key: pgcatalog.FinishStream,
		Fields: map[string]record.Value{pgcatalog.FieldSequences: record.String(string(b))}}
	return out
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// splitCopy splits COPY data into its tuples (binary: without the header
// and trailer; text: each line with its newline).
func splitCopy(t *testing.T, data []byte, bin bool) [][]byte {
	t.Helper()
	var out [][]byte
	if !bin {
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			out = append(out, data[:i+1])
			data = data[i+1:]
		}
		return out
	}
	if !bytes.HasPrefix(data, pgcatalog.BinaryHeader) {
		t.Fatalf("binary COPY data without the header: %q", data[:min(len(data), 19)])
	}
	data = data[len(pgcatalog.BinaryHeader):]
	for {
		n := int16(binary.BigEndian.Uint16(data))
		if n == -1 {
			return out
		}
		i := 2
		for range n {
			l := int32(binary.BigEndian.Uint32(data[i:]))
			i += 4
			if l > 0 {
				i += int(l)
			}
		}
		out = append(out, data[:i])
		data = data[i:]
	}
}

func newExtractor(t *testing.T, cfg plugin.Config) extractors.Extractor {
	t.Helper()
	ex, err := supabasetables.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestConformance runs the shared extractor suite over the copy's reads
// (what migrate uses), with pages of 4 rows, and its key order over the
// comparison's reads (what plan and verify use).
func TestConformance(t *testing.T) {
	dsn := newSource(t)
	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			return newExtractor(t, plugin.Config{"supabase-db": dsn, "supabase-page-size": "4"})
		},
		Want: want(t, dsn),
		// The first row of a partition carries the range the sink clears.
		PartitionFields: []string{pgcatalog.FieldClear},
		// migrate reads in each key's own order; plan and verify read
		// every key column's text in byte order.
		Comparing: func(t *testing.T) extractors.Extractor {
			ex := newExtractor(t, plugin.Config{"supabase-db": dsn, "supabase-page-size": "4"})
			ex.(*supabasetables.Extractor).ForComparison()
			return ex
		},
	})
}

// TestUnreachableIsRetryable: New reads the catalog, so an unreachable
// source fails there, classified retryable (the suite's own check plans
// with an extractor New already returned).
func TestUnreachableIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = supabasetables.New(context.Background(), plugin.Config{"supabase-db": "postgres://u:p@" + addr + "/db?sslmode=disable",
		"retry-attempts": "1", "source-timeout": "2s"})
	if err == nil {
		t.Fatal("New against an unreachable source succeeded")
	}
	if !retry.IsRetryable(err) {
		t.Fatalf("an unreachable source's error is not classified retryable: %v", err)
	}
}
