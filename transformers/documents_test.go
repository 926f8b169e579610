package transformers

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// oids maps the supported column types to their PostgreSQL type OIDs, for
// encoding values the way COPY does.
var oids = map[string]uint32{
	"text": pgtype.TextOID, "bigint": pgtype.Int8OID, "integer": pgtype.Int4OID,
	"double precision": pgtype.Float8OID, "real": pgtype.Float4OID, "numeric": pgtype.NumericOID,
	"boolean": pgtype.BoolOID, "timestamptz": pgtype.TimestamptzOID, "date": pgtype.DateOID,
	"uuid": pgtype.UUIDOID, "bytea": pgtype.ByteaOID, "point": pgtype.PointOID, "jsonb": pgtype.JSONBOID,
	"text[]": pgtype.TextArrayOID, "bigint[]": pgtype.Int8ArrayOID, "integer[]": pgtype.Int4ArrayOID,
	"double precision[]": pgtype.Float8ArrayOID, "real[]": pgtype.Float4ArrayOID,
	"boolean[]": pgtype.BoolArrayOID, "timestamptz[]": pgtype.TimestamptzArrayOID, "bytea[]": pgtype.ByteaArrayOID,
}

func TestEveryTypeHasAnOID(t *testing.T) {
	for _, typ := range mappings.SupportedTypes() {
		if oids[typ] == 0 {
			t.Errorf("no OID for %s in the test table", typ)
		}
		for _, src := range mappings.AllowedSources(typ) {
			if _, err := newCodec(typ, src); err != nil {
				t.Errorf("newCodec(%s, %s): %v", typ, src, err)
			}
		}
	}
}

// wire sends a row's values through pgx's binary encoding (what COPY
// sends) and decodes them the way the loader reads them back: jsonb as raw
// text, everything else as pgx's default Go type (rows.Values()).
func wire(t *testing.T, tb *mappings.Table, values []any) []any {
	t.Helper()
	m := pgtype.NewMap()
	out := make([]any, len(values))
	for i, x := range values {
		c := tb.Columns[i]
		oid := oids[c.Type]
		buf, err := m.Encode(oid, pgtype.BinaryFormatCode, x, make([]byte, 0, 16)) // nil only for NULL, as in COPY
		if err != nil {
			t.Fatalf("column %s (%s): pgx cannot encode %T: %v", c.Name, c.Type, x, err)
		}
		if buf == nil {
			if x != nil {
				t.Fatalf("column %s: %T %v encoded as NULL", c.Name, x, x)
			}
			continue
		}
		if c.Type == "jsonb" {
			var raw []byte
			if err := m.Scan(oid, pgtype.BinaryFormatCode, buf, &raw); err != nil {
				t.Fatalf("column %s: scanning jsonb: %v", c.Name, err)
			}
			out[i] = raw
			continue
		}
		typ, _ := m.TypeForOID(oid)
		if out[i], err = typ.Codec.DecodeValue(m, oid, pgtype.BinaryFormatCode, buf); err != nil {
			t.Fatalf("column %s: decoding: %v", c.Name, err)
		}
	}
	return out
}

// withoutExcluded returns fields less the excluded paths.
func withoutExcluded(fields map[string]record.Value, tb *mappings.Table) map[string]record.Value {
	out := copyMap(fields)
	for _, e := range tb.Exclude {
		segs, _ := mappings.ParseFieldPath(e)
		m := out
		for i, s := range segs {
			v, ok := m[s]
			if !ok {
				break
			}
			if i == len(segs)-1 {
				delete(m, s)
				break
			}
			if v.Type() != record.TypeMap {
				break
			}
			inner := copyMap(v.MapValue())
			m[s] = record.Map(inner)
			m = inner
		}
	}
	return out
}

func copyMap(m map[string]record.Value) map[string]record.Value {
	out := make(map[string]record.Value, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkRoundTrip transforms rec, reconstructs it both from the Go values
// directly and after a pgx wire round trip, and compares with the source.
func checkRoundTrip(t *testing.T, d *Documents, rec record.Record) Row {
	t.Helper()
	row, err := d.Transform(rec)
	if err != nil {
		t.Fatalf("Transform(%s): %v", rec.Key, err)
	}
	want := record.Map(withoutExcluded(rec.Fields, row.Table))
	for name, values := range map[string][]any{"direct": row.Values, "wire": wire(t, row.Table, row.Values)} {
		path, fields, err := d.Reconstruct(row.Table, row.Key, values, row.Overflow)
		if err != nil {
			t.Fatalf("Reconstruct (%s) of %s: %v\noverflow %s", name, rec.Key, err, row.Overflow)
		}
		if path != rec.Key {
			t.Fatalf("Reconstruct (%s): path %q, want %q", name, path, rec.Key)
		}
		if got := record.Map(fields); !record.Equal(got, want) {
			t.Fatalf("Reconstruct (%s) of %s differs\n got %v\nwant %v\nvalues %#v\noverflow %s", name, rec.Key, got, want, row.Values, row.Overflow)
		}
	}
	return row
}

func mustDocuments(t *testing.T, m *mappings.Mapping) *Documents {
	t.Helper()
	d, err := NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func parseMapping(t *testing.T, src string) *mappings.Mapping {
	t.Helper()
	m, err := mappings.Parse([]byte(src), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func docRec(path string, fields map[string]record.Value) record.Record {
	return record.Record{Kind: record.KindDocument, Key: path, Fields: fields,
		CreateTime: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), UpdateTime: time.Date(2024, 1, 2, 3, 4, 5, 7000, time.UTC)}
}

var ts = time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC)

// edgeValues covers every value type and its edges.
func edgeValues() []record.Value {
	return []record.Value{
		record.Null(), record.Bool(true), record.Bool(false),
		record.Int(0), record.Int(1), record.Int(-7), record.Int(math.MaxInt64), record.Int(math.MinInt64),
		record.Int(1 << 53), record.Int(1<<53 + 1), record.Int(math.MaxInt32 + 1), record.Int(math.MinInt32),
		record.Double(0), record.Double(math.Copysign(0, -1)), record.Double(5), record.Double(0.1), record.Double(-2.5),
		record.Double(1e300), record.Double(5e-324), record.Double(math.MaxFloat64), record.Double(1 << 63),
		record.Double(math.NaN()), record.Double(math.Inf(1)), record.Double(math.Inf(-1)), record.Double(0.5),
		record.Timestamp(ts), record.Timestamp(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)),
		record.Timestamp(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)), record.Timestamp(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)),
		record.String(""), record.String("hello"), record.String("é 日本 🎉 \"'\\"), record.String("a\x00b"), record.String("\xff\xfe"),
		record.String("2024-05-01"), record.String("0000-01-01"), record.String("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
		record.String("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"), record.String("null"), record.String("$ref"),
		record.Bytes(nil), record.Bytes([]byte{0, 1, 255}),
		record.Reference("users/alice"), record.Reference("projects/p/databases/other/documents/a/b"), record.Reference("a/\x00"),
		record.Geo(-33.8688, 151.2093), record.Geo(90, -180), record.Geo(0, math.Copysign(0, -1)),
		record.Vector([]float64{0.5, 1, -3}), record.Vector(nil), record.Vector([]float64{math.NaN(), 1e300}),
		record.Array(), record.Array(record.Null()), record.Array(record.String("a"), record.Null(), record.String("b")),
		record.Array(record.Int(1), record.Int(2)), record.Array(record.Int(1), record.Double(2)), record.Array(record.Double(2), record.Double(2.5)),
		record.Array(record.Bool(true), record.Null()), record.Array(record.Timestamp(ts)), record.Array(record.Bytes(nil), record.Null(), record.Bytes([]byte{9})),
		record.Array(record.Reference("a/b")), record.Array(record.String("x\x00")), record.Array(record.Int(math.MaxInt64)),
		record.Array(record.Int(1), record.String("1"), record.Map(nil)), record.Array(record.Array(record.Int(1))),
		record.Array(record.Geo(1, 2), record.Vector([]float64{1})),
		record.Map(nil), record.Map(map[string]record.Value{"$tag": record.Int(1), "a.b": record.Null(), "": record.Bool(true)}),
		record.Map(map[string]record.Value{"deep": record.Map(map[string]record.Value{"er": record.Array(record.Map(nil))})}),
	}
}

// TestEveryTypeInEveryColumn puts every edge value into a column of every
// supported type and source: whatever the column cannot hold exactly must
// come back through the overflow.
func TestEveryTypeInEveryColumn(t *testing.T) {
	var cols strings.Builder
	var names []string
	for _, typ := range mappings.SupportedTypes() {
		for _, src := range mappings.AllowedSources(typ) {
			name := fmt.Sprintf("c%d", len(names))
			names = append(names, name)
			fmt.Fprintf(&cols, "      - {field: %s, column: %s, type: %q, source: %q}\n", name, name, typ, src)
		}
	}
	d := mustDocuments(t, parseMapping(t, "version: 1\ntables:\n  - collection: docs\n    table: docs\n    id_column: id\n    columns:\n"+cols.String()))
	inColumn := 0
	for i, v := range edgeValues() {
		f := map[string]record.Value{}
		for _, n := range names {
			f[n] = v
		}
		row := checkRoundTrip(t, d, docRec(fmt.Sprintf("docs/v%d", i), f))
		for _, x := range row.Values {
			if x != nil {
				inColumn++
			}
		}
	}
	if inColumn == 0 {
		t.Fatal("no value landed in a column")
	}
}

func TestRowValues(t *testing.T) {
	d := mustDocuments(t, parseMapping(t, `version: 1
tables:
  - collection: users
    table: users
    id_column: id
    columns:
      - {field: s, column: s, type: text}
      - {field: r, column: r, type: text, source: reference}
      - {field: i, column: i, type: bigint}
      - {field: i4, column: i4, type: integer}
      - {field: n, column: n, type: double precision, source: number}
      - {field: b, column: b, type: boolean}
      - {field: t, column: t, type: timestamptz}
      - {field: y, column: y, type: bytea}
      - {field: g, column: g, type: point}
      - {field: v, column: v, type: "double precision[]", source: vector}
      - {field: as, column: as, type: "text[]"}
      - {field: ay, column: ay, type: "bytea[]"}
      - {field: j, column: j, type: jsonb}
      - {field: u, column: u, type: uuid}
      - {field: dt, column: dt, type: date}
      - {field: num, column: num, type: numeric}
      - {field: rl, column: rl, type: real, source: number}
`))
	row := checkRoundTrip(t, d, docRec("users/alice", map[string]record.Value{
		"s": record.String("x"), "r": record.Reference("users/bob"), "i": record.Int(-5), "i4": record.Int(7),
		"n": record.Int(3), "b": record.Bool(true), "t": record.Timestamp(ts), "y": record.Bytes(nil),
		"g": record.Geo(10, 20), "v": record.Vector([]float64{1, 2}), "as": record.Array(record.String("a"), record.Null()),
		"ay": record.Array(record.Bytes(nil), record.Null()), "j": record.Map(map[string]record.Value{"k": record.Double(1)}),
		"u": record.String("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), "dt": record.Timestamp(time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)),
		"num": record.Double(12.25), "rl": record.Double(0.5),
	}))
	if row.Overflow != nil {
		t.Errorf("unexpected overflow %s", row.Overflow)
	}
	a := "a"
	want := []any{"x", "users/bob", int64(-5), int32(7), float64(3), true, ts, []byte{},
		pgtype.Point{P: pgtype.Vec2{X: 20, Y: 10}, Valid: true}, []*float64{ptr(1.0), ptr(2.0)}, []*string{&a, nil},
		[][]byte{{}, nil}, []byte(`{"k":1.0}`)}
	for i, w := range want {
		if !reflect.DeepEqual(row.Values[i], w) {
			t.Errorf("column %s: got %#v, want %#v", row.Table.Columns[i].Name, row.Values[i], w)
		}
	}
	if row.Values[7].([]byte) == nil || row.Values[11].([][]byte)[0] == nil {
		t.Error("empty bytes must not be NULL")
	}
	if u, ok := row.Values[13].(pgtype.UUID); !ok || !u.Valid {
		t.Errorf("uuid: %#v", row.Values[13])
	}
	if n, ok := row.Values[15].(pgtype.Numeric); !ok || n.Int.Int64() != 1225 || n.Exp != -2 {
		t.Errorf("numeric: %#v", row.Values[15])
	}
	if row.Key[0] != "alice" || !row.CreateTime.Equal(docRec("", nil).CreateTime) {
		t.Errorf("key/time: %v %v", row.Key, row.CreateTime)
	}
}

func ptr[T any](v T) *T { return &v }

func TestOverflowSemantics(t *testing.T) {
	d := mustDocuments(t, parseMapping(t, `version: 1
tables:
  - collection: c
    table: c
    id_column: id
    columns:
      - {field: name, column: name, type: text}
      - {field: price, column: price, type: double precision, source: number}
      - {field: big, column: big, type: double precision, source: number}
      - {field: address.city, column: city, type: text}
      - {field: address.geo.lat, column: lat, type: double precision}
      - {field: meta, column: meta, type: jsonb}
      - {field: small, column: small, type: integer}
    exclude: [secret, address.secret]
`))
	for _, tc := range []struct {
		name     string
		fields   map[string]record.Value
		overflow string
		nulls    []int // columns expected NULL
	}{
		{"all in columns", map[string]record.Value{"name": record.String("a"), "price": record.Int(5), "address": record.Map(map[string]record.Value{"city": record.String("x")})}, "", nil},
		{"explicit nulls", map[string]record.Value{"name": record.Null(), "meta": record.Null()}, `{"name":null}`, []int{0}},
		{"absent", map[string]record.Value{}, "", []int{0, 1, 2, 3, 4, 5, 6}},
		{"conflict", map[string]record.Value{"name": record.Int(3)}, `{"name":3}`, []int{0}},
		{"NUL in text", map[string]record.Value{"name": record.String("a\x00")}, `{"name":{"$stringb64":"YQA="}}`, []int{0}},
		{"integral double keeps type", map[string]record.Value{"price": record.Double(5)}, `{"price":5.0}`, nil},
		{"int too big for double", map[string]record.Value{"big": record.Int(1<<53 + 1)}, `{"big":9007199254740993}`, []int{2}},
		{"out of range for integer", map[string]record.Value{"small": record.Int(1 << 40)}, `{"small":1099511627776}`, []int{6}},
		{"flattened residue", map[string]record.Value{"address": record.Map(map[string]record.Value{"city": record.String("x"), "zip": record.Int(1)})}, `{"address":{"zip":1}}`, nil},
		{"pruned map", map[string]record.Value{"address": record.Map(map[string]record.Value{"geo": record.Map(map[string]record.Value{"lat": record.Double(1.5)})})}, "", nil},
		{"empty map stays", map[string]record.Value{"address": record.Map(map[string]record.Value{"geo": record.Map(nil)})}, `{"address":{"geo":{}}}`, nil},
		{"emptied by exclusion stays", map[string]record.Value{"address": record.Map(map[string]record.Value{"secret": record.Int(1)})}, `{"address":{}}`, nil},
		{"flattened parent not a map", map[string]record.Value{"address": record.String("somewhere")}, `{"address":"somewhere"}`, []int{3, 4}},
		{"excluded and unmapped", map[string]record.Value{"secret": record.String("pw"), "other": record.Bytes([]byte{1})}, `{"other":{"$bytes":"AQ=="}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := checkRoundTrip(t, d, docRec("c/x", tc.fields))
			if string(row.Overflow) != tc.overflow {
				t.Errorf("overflow %s, want %s", row.Overflow, tc.overflow)
			}
			for _, i := range tc.nulls {
				if row.Values[i] != nil {
					t.Errorf("column %s = %#v, want NULL", row.Table.Columns[i].Name, row.Values[i])
				}
			}
			if tc.name == "explicit nulls" && string(row.Values[5].([]byte)) != "null" {
				t.Errorf("jsonb explicit null: %#v", row.Values[5])
			}
			if tc.name == "integral double keeps type" && row.Values[1] != float64(5) {
				t.Errorf("the column still holds the value: %#v", row.Values[1])
			}
		})
	}
}

func TestTransformErrors(t *testing.T) {
	d := mustDocuments(t, parseMapping(t, "version: 1\ntables:\n  - {collection: users, table: users, id_column: id}\n  - {collection: 'users/{}/orders/{}/items', table: items, id_column: id, parent_columns: [u, o]}\n"))
	for _, tc := range []struct {
		rec  record.Record
		want string
	}{
		{docRec("logs/a/entries/b", nil), `no table in the mapping for collection pattern "logs/{}/entries"; re-run infer or add it`},
		{docRec("users", nil), "malformed document path"},
		{docRec("users//x/y", nil), "malformed document path"},
		{docRec("users/a\x00b", nil), "contains a NUL byte"},
		{docRec("users/\xff", nil), "not valid UTF-8"},
		{record.Record{Kind: record.KindUser, Key: "u1"}, "is a user, not a document"},
	} {
		if _, err := d.Transform(tc.rec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Transform(%q): %v, want %q", tc.rec.Key, err, tc.want)
		}
	}
	for path, want := range map[string]string{
		"users/a\x00b": "users", "logs/a": "(no table for logs)", "lo\x00gs/a": "(invalid path)", "\xff/a": "(invalid path)",
	} {
		if got := d.TableLabel(path); got != want {
			t.Errorf("TableLabel(%q) = %q, want %q", path, got, want)
		}
	}
	row := checkRoundTrip(t, d, docRec("users/Ünï code ID {}", nil))
	if row.Key[0] != "Ünï code ID {}" {
		t.Errorf("key %q", row.Key)
	}
}

func TestAncestors(t *testing.T) {
	d := mustDocuments(t, parseMapping(t, `version: 1
tables:
  - {collection: users, table: users, id_column: id}
  - {collection: "users/{}/orders/{}/items", table: items, id_column: id, parent_columns: [u, o]}
  - {collection: "users/{}/orders/{}/items/{}/notes", table: notes, id_column: id, parent_columns: [u, o, i]}
`))
	ph, err := d.Ancestors(docRec("users/u1/orders/o1/items/i1/notes/n1", nil))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(ph[0].Table.Name, ph[0].Key, ph[1].Table.Name, ph[1].Key)
	if len(ph) != 2 || got != "users[u1]items[u1 o1 i1]" {
		t.Errorf("Ancestors: %d %s (orders has no table, so no placeholder)", len(ph), got)
	}
	if ph, err := d.Ancestors(docRec("users/u1", nil)); err != nil || len(ph) != 0 {
		t.Errorf("root document: %v %v", ph, err)
	}
	if _, err := d.Ancestors(docRec("nope/x/y/z", nil)); err == nil {
		t.Error("Ancestors of an unmapped document should fail like Transform")
	}
}

func TestReconstructErrors(t *testing.T) {
	m := parseMapping(t, "version: 1\ntables:\n  - collection: c\n    table: c\n    id_column: id\n    columns:\n      - {field: j, column: j, type: jsonb}\n      - {field: n, column: n, type: numeric}\n")
	d := mustDocuments(t, m)
	tb := m.Tables[0]
	for _, tc := range []struct {
		key    []string
		values []any
		of     []byte
		want   string
	}{
		{[]string{"a", "b"}, []any{nil, nil}, nil, "needs 1 document IDs"},
		{[]string{"a"}, []any{nil}, nil, "got 1 column values"},
		{[]string{"a"}, []any{map[string]any{"k": 1.0}, nil}, nil, "want jsonb as raw JSON text"},
		{[]string{"a"}, []any{nil, 1.5}, nil, "a float would lose the scale"},
		{[]string{"a"}, []any{nil, nil}, []byte(`[1]`), "want an object"},
	} {
		if _, _, err := d.Reconstruct(tb, tc.key, tc.values, tc.of); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Reconstruct(%v, %v): %v, want %q", tc.key, tc.values, err, tc.want)
		}
	}
	if _, err := NewDocuments(&mappings.Mapping{Version: 2, Schema: "public"}); err == nil {
		t.Error("NewDocuments must validate")
	}
}

func TestNumericIntegerColumnRefusesAFraction(t *testing.T) {
	m := &mappings.Mapping{Version: 1, Schema: "public", Tables: []*mappings.Table{{
		Collection: "c", Name: "c", IDColumn: "id",
		Columns: []*mappings.Column{{Field: "n", Name: "n", Type: "numeric", Source: mappings.SourceInteger}},
	}}}
	d, err := NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := new(big.Int).SetString("100", 10)
	if _, f, err := d.Reconstruct(m.Tables[0], []string{"a"}, []any{pgtype.Numeric{Int: whole, Exp: -2, Valid: true}}, nil); err != nil || !record.Equal(f["n"], record.Int(1)) {
		t.Fatalf("1.00 read back as %v, %v; want integer 1", f["n"], err)
	}
	if _, _, err := d.Reconstruct(m.Tables[0], []string{"a"}, []any{pgtype.Numeric{Int: big.NewInt(15), Exp: -1, Valid: true}}, nil); err == nil {
		t.Fatal("1.5 in an integer numeric column was read back without complaint")
	}
}
