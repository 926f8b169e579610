package transformers

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// pgxCopyField is one COPY field as pgx's CopyFrom encodes it
// (encodeCopyValue): a length of -1, replaced by the value's length unless
// pgx encodes NULL.
func pgxCopyField(t *testing.T, m *pgtype.Map, oid uint32, x any) []byte {
	t.Helper()
	buf := []byte{0xff, 0xff, 0xff, 0xff}
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, x, buf)
	if err != nil {
		t.Fatalf("pgx cannot encode %T %v for OID %d: %v", x, x, oid, err)
	}
	if out == nil {
		return buf
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// copyTestValues returns values of every kind: the edge values, random
// ones (arrays with NULL elements among them), and times at every
// precision, in zones other than UTC, before 1970 and 2000.
func copyTestValues() []record.Value {
	values := edgeValues()
	r := rand.New(rand.NewPCG(13, 14))
	for range 3000 {
		values = append(values, randValue(r, 0))
	}
	for _, tm := range copyTestTimes(r) {
		values = append(values, record.Timestamp(tm), record.Array(record.Timestamp(tm), record.Null()), record.Array(record.Timestamp(tm)))
	}
	return values
}

func copyTestTimes(r *rand.Rand) []time.Time {
	times := []time.Time{
		time.Date(2024, 1, 2, 3, 4, 5, 6789, time.UTC), time.Date(2024, 1, 2, 23, 4, 5, 999999999, time.FixedZone("x", -7*3600)),
		time.Date(2024, 1, 2, 0, 30, 0, 0, time.FixedZone("y", 5*3600)), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999, time.UTC),
		time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2000, 1, 1, 0, 0, 0, 1, time.UTC), time.Unix(0, 0),
	}
	for range 200 {
		times = append(times, time.Unix(r.Int64N(253402300800)-62135596800, r.Int64N(1e9)).In(time.FixedZone("z", (r.IntN(27)-13)*3600)))
	}
	return times
}

// TestAppendCopyFieldMatchesPgx checks that AppendCopyField writes exactly
// the bytes pgx's CopyFrom writes, for every value the codec of every
// column type and source produces (arrays with and without NULL elements,
// vectors, NULL), for the loader's own columns (text keys, row times,
// jsonb overflow, the _missing flag) and for Go values or column types it
// leaves to pgx.
func TestAppendCopyFieldMatchesPgx(t *testing.T) {
	m := pgtype.NewMap()
	check := func(what string, oid uint32, x any) {
		t.Helper()
		want := pgxCopyField(t, m, oid, x)
		prefix := []byte("prefix")
		got, err := AppendCopyField(append([]byte(nil), prefix...), oid, x, m)
		if err != nil {
			t.Fatalf("%s: %T %v: %v", what, x, x, err)
		}
		if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("%s: %T %v:\n got %x\nwant %x", what, x, x, got[len(prefix):], want)
		}
	}
	values := copyTestValues()
	n := 0
	for _, typ := range mappings.SupportedTypes() {
		for _, src := range mappings.AllowedSources(typ) {
			c, err := newCodec(typ, src)
			if err != nil {
				t.Fatal(err)
			}
			check(typ+"/"+src+" NULL", oids[typ], nil)
			for _, v := range values {
				x, _, ok := c.encode(v)
				if !ok {
					continue
				}
				check(typ+"/"+src, oids[typ], x)
				n++
			}
		}
	}
	r := rand.New(rand.NewPCG(15, 16))
	for _, tm := range copyTestTimes(r) {
		check("row time", pgtype.TimestamptzOID, pgtype.Timestamptz{Time: tm, Valid: true})
		check("row time by pointer", pgtype.TimestamptzOID, &pgtype.Timestamptz{Time: tm, Valid: true})
		check("time", pgtype.TimestamptzOID, tm)
		check("date", pgtype.DateOID, tm)
	}
	one, s := 1.5, "s"
	for _, c := range []struct {
		oid uint32
		x   any
	}{
		{pgtype.TextOID, "doc"}, {pgtype.TextOID, ""}, {pgtype.TextOID, "\xff名前"},
		{pgtype.JSONBOID, []byte(`{"a":1}`)}, {pgtype.JSONBOID, []byte{}}, {pgtype.JSONBOID, []byte(nil)},
		{pgtype.BoolOID, false}, {pgtype.BoolOID, true},
		{pgtype.TimestamptzOID, pgtype.Timestamptz{}}, {pgtype.TimestamptzOID, &pgtype.Timestamptz{}}, {pgtype.TimestamptzOID, (*pgtype.Timestamptz)(nil)},
		{pgtype.TimestamptzOID, pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.Infinity}},
		{pgtype.UUIDOID, pgtype.UUID{}}, {pgtype.PointOID, pgtype.Point{}},
		{pgtype.PointOID, pgtype.Point{P: pgtype.Vec2{X: math.Copysign(0, -1), Y: math.NaN()}, Valid: true}},
		{pgtype.ByteaOID, []byte(nil)}, {pgtype.ByteaOID, []byte{}},
		{pgtype.ByteaArrayOID, [][]byte{nil, {}, {1}}}, {pgtype.ByteaArrayOID, [][]byte{}}, {pgtype.ByteaArrayOID, [][]byte(nil)},
		{pgtype.TextArrayOID, []string{}}, {pgtype.TextArrayOID, []string(nil)}, {pgtype.TextArrayOID, []*string{nil, &s}},
		{pgtype.Float8ArrayOID, []*float64{}}, {pgtype.Float8ArrayOID, []*float64{&one, nil}},
		{pgtype.Float4ArrayOID, []float32{float32(math.Inf(-1)), float32(math.NaN())}},
		{pgtype.Int8ArrayOID, []int64{math.MinInt64, 0, math.MaxInt64}}, {pgtype.Int4ArrayOID, []*int32{nil}},
		{pgtype.BoolArrayOID, []bool{true, false}}, {pgtype.TimestamptzArrayOID, []*time.Time{nil}},
		// Left to pgx: numeric, and values for columns of other types.
		{pgtype.NumericOID, pgtype.Numeric{Int: big.NewInt(-12345), Exp: -2, Valid: true}},
		{pgtype.Int8OID, int32(7)}, {pgtype.Float8OID, float32(0.1)}, {pgtype.VarcharOID, "v"},
		{pgtype.JSONOID, []byte(`[1]`)},
	} {
		check(fmt.Sprintf("OID %d", c.oid), c.oid, c.x)
	}
	// pgx's second try: a value it cannot encode in binary is read as
	// text into the column type's Go value.
	i1 := int64(1)
	for _, c := range []struct {
		oid        uint32
		text, same any
	}{
		{pgtype.PointOID, "(1,2)", pgtype.Point{P: pgtype.Vec2{X: 1, Y: 2}, Valid: true}},
		{pgtype.Int8OID, "12", int64(12)},
		{pgtype.Int8ArrayOID, "{1,NULL}", []*int64{&i1, nil}},
		{pgtype.NumericOID, "1.50", pgtype.Numeric{Int: big.NewInt(150), Exp: -2, Valid: true}},
	} {
		got, err := AppendCopyField(nil, c.oid, c.text, m)
		if want := pgxCopyField(t, m, c.oid, c.same); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q for OID %d: got %x, %v; want %x", c.text, c.oid, got, err, want)
		}
	}
	for _, x := range []any{struct{}{}, "twelve"} {
		if _, err := AppendCopyField(nil, pgtype.Int8OID, x, m); err == nil || !strings.Contains(err.Error(), "unable to encode") {
			t.Fatalf("%#v into bigint: got error %v, want pgx's encode error", x, err)
		}
	}
	if n < 10000 {
		t.Fatalf("only %d column values compared", n)
	}
	t.Logf("%d column values compared", n)
}

// TestAppendCopyFieldInPostgres writes every value of every column type
// and source twice with COPY into the real PostgreSQL — once as a stream
// AppendCopyField encoded, once through pgx's CopyFrom — and checks that
// each pair reads back identical, as text (exact: -0, NaN, digits of
// doubles, NULL array elements, jsonb). Skipped when PostgreSQL is not
// configured.
func TestAppendCopyFieldInPostgres(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	values := copyTestValues()
	if _, err := conn.Exec(ctx, `CREATE TABLE enc (n int, typ text, ours text, pgx text)`); err != nil {
		t.Fatal(err)
	}
	m := pgtype.NewMap()
	var cols []string
	written := 0
	for i, typ := range mappings.SupportedTypes() {
		for _, src := range mappings.AllowedSources(typ) {
			c, err := newCodec(typ, src)
			if err != nil {
				t.Fatal(err)
			}
			tbl := pgx.Identifier{fmt.Sprintf("t_%d_%s", i, strings.NewReplacer("[]", "_arr", " ", "_").Replace(src))}
			cols = append(cols, tbl[0])
			if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (n int, by_pgx bool, v %s)", tbl.Sanitize(), typ)); err != nil {
				t.Fatal(err)
			}
			var rows [][]any
			stream := append([]byte("PGCOPY\n\377\r\n\000"), 0, 0, 0, 0, 0, 0, 0, 0)
			add := func(x any) {
				rows = append(rows, []any{len(rows), true, x})
				stream = binary.BigEndian.AppendUint16(stream, 3)
				stream = binary.BigEndian.AppendUint32(stream, 4)
				stream = binary.BigEndian.AppendUint32(stream, uint32(len(rows)-1))
				stream = append(stream, 0, 0, 0, 1, 0) // false
				if stream, err = AppendCopyField(stream, oids[typ], x, m); err != nil {
					t.Fatalf("%s/%s: %v", typ, src, err)
				}
			}
			add(nil)
			for _, v := range values {
				if x, _, ok := c.encode(v); ok {
					add(x)
				}
			}
			stream = append(stream, 0xff, 0xff)
			if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(stream), fmt.Sprintf("COPY %s (n, by_pgx, v) FROM STDIN BINARY", tbl.Sanitize())); err != nil {
				t.Fatalf("%s/%s: COPY of AppendCopyField's stream: %v", typ, src, err)
			}
			if _, err := conn.CopyFrom(ctx, tbl, []string{"n", "by_pgx", "v"}, pgx.CopyFromRows(rows)); err != nil {
				t.Fatalf("%s/%s: pgx's COPY: %v", typ, src, err)
			}
			written += len(rows)
			if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO enc SELECT n, $1, a.v::text, b.v::text
				FROM (SELECT n, v FROM %s WHERE NOT by_pgx) a JOIN (SELECT n, v FROM %s WHERE by_pgx) b USING (n)`, tbl.Sanitize(), tbl.Sanitize()), typ+"/"+src); err != nil {
				t.Fatal(err)
			}
		}
	}
	var total, differ, nulls int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ours IS DISTINCT FROM pgx), count(*) FILTER (WHERE ours IS NULL) FROM enc`).Scan(&total, &differ, &nulls); err != nil {
		t.Fatal(err)
	}
	if differ > 0 {
		var typ, a, b string
		_ = conn.QueryRow(ctx, `SELECT typ, coalesce(ours, 'NULL'), coalesce(pgx, 'NULL') FROM enc WHERE ours IS DISTINCT FROM pgx LIMIT 1`).Scan(&typ, &a, &b)
		t.Fatalf("%d of %d values read back differently; first: %s ours %s, pgx's %s", differ, total, typ, a, b)
	}
	if total != written {
		t.Fatalf("%d rows written in each encoding, %d pairs read back", written, total)
	}
	if total < 10000 || nulls < len(cols) {
		t.Fatalf("only %d values compared (%d NULL) in %d columns", total, nulls, len(cols))
	}
	t.Logf("%d values compared in %d column types and sources", total, len(cols))
}
