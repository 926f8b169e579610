package mappings

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

type obs struct {
	path   string
	fields map[string]record.Value
}

func doc(path string, kv ...any) obs {
	f := map[string]record.Value{}
	for i := 0; i < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1].(record.Value)
	}
	return obs{path, f}
}

func infer(t *testing.T, o InferOptions, docs []obs) *Mapping {
	t.Helper()
	in := NewInferrer(o)
	for _, d := range docs {
		in.Observe(d.path, d.fields)
	}
	m := in.Mapping()
	if err := m.Validate(); err != nil {
		t.Fatalf("inferred mapping does not validate: %v", err)
	}
	return m
}

func column(t *testing.T, tb *Table, field string) *Column {
	t.Helper()
	for _, c := range tb.Columns {
		if c.Field == field {
			return c
		}
	}
	t.Fatalf("table %s has no column for field %s", tb.Name, field)
	return nil
}

func TestInferTypes(t *testing.T) {
	ts := record.Timestamp(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	values := map[string]record.Value{
		"s": record.String("x"), "i": record.Int(1), "d": record.Double(1.5), "b": record.Bool(true),
		"t": ts, "y": record.Bytes([]byte{1}), "r": record.Reference("users/a"), "g": record.Geo(1, 2),
		"v": record.Vector([]float64{1, 2}), "m": record.Map(map[string]record.Value{"a": record.Int(1)}),
		"as": record.Array(record.String("a"), record.Null()), "ai": record.Array(record.Int(1)),
		"ad": record.Array(record.Double(1)), "ab": record.Array(record.Bool(true)), "at": record.Array(ts),
		"ay": record.Array(record.Bytes(nil)), "ar": record.Array(record.Reference("a/b")),
		"amix": record.Array(record.Int(1), record.String("a")), "anest": record.Array(record.Map(nil)),
		"aempty": record.Array(), "anull": record.Array(record.Null()), "n": record.Null(),
		"ageo": record.Array(record.Geo(1, 2)),
	}
	want := map[string][2]string{
		"s": {"text", "string"}, "i": {"bigint", "integer"}, "d": {"double precision", "double"},
		"b": {"boolean", "boolean"}, "t": {"timestamptz", "timestamp"}, "y": {"bytea", "bytes"},
		"r": {"text", "reference"}, "g": {"point", "geopoint"}, "v": {"double precision[]", "vector"},
		"m": {"jsonb", "any"}, "as": {"text[]", "string[]"}, "ai": {"bigint[]", "integer[]"},
		"ad": {"double precision[]", "double[]"}, "ab": {"boolean[]", "boolean[]"},
		"at": {"timestamptz[]", "timestamp[]"}, "ay": {"bytea[]", "bytes[]"}, "ar": {"text[]", "reference[]"},
		"amix": {"jsonb", "any"}, "anest": {"jsonb", "any"}, "aempty": {"jsonb", "any"},
		"anull": {"jsonb", "any"}, "n": {"jsonb", "any"}, "ageo": {"jsonb", "any"},
	}
	m := infer(t, InferOptions{}, []obs{{"c/d1", values}})
	tb := m.TableFor("c")
	for f, w := range want {
		c := column(t, tb, f)
		if c.Type != w[0] || c.Source != w[1] {
			t.Errorf("field %s: got %s/%s, want %s/%s", f, c.Type, c.Source, w[0], w[1])
		}
	}
}

func TestInferMixesAndConflicts(t *testing.T) {
	var docs []obs
	for i := range 10 {
		docs = append(docs,
			doc(fmt.Sprintf("c/n%d", i), "num", record.Int(int64(i)), "arr", record.Array(record.Int(1)), "conf", record.Int(1)),
			doc(fmt.Sprintf("c/d%d", i), "num", record.Double(0.5), "arr", record.Array(record.Double(0.5)), "conf", record.Int(2)),
		)
	}
	docs = append(docs,
		doc("c/s1", "conf", record.String("x"), "arr", record.Array()),
		doc("c/s2", "conf", record.Null()),
		doc("c/e1", "onlyEmpty", record.Array(), "arr", record.Array(record.Int(1), record.Double(2))),
	)
	m := infer(t, InferOptions{}, docs)
	tb := m.TableFor("c")
	if c := column(t, tb, "num"); c.Type != "double precision" || c.Source != "number" {
		t.Errorf("int+double: %s/%s", c.Type, c.Source)
	}
	if c := column(t, tb, "arr"); c.Type != "double precision[]" || c.Source != "number[]" {
		t.Errorf("int[]+double[]: %s/%s", c.Type, c.Source)
	}
	c := column(t, tb, "conf")
	if c.Type != "bigint" || c.Seen["integer"] != 20 || c.Seen["string"] != 1 || c.Seen["null"] != 1 {
		t.Errorf("dominant type with evidence: %s %v", c.Type, c.Seen)
	}
	if c := column(t, tb, "onlyEmpty"); c.Type != "jsonb" || c.Seen["[]"] != 1 {
		t.Errorf("only empty arrays: %s %v", c.Type, c.Seen)
	}
}

func TestInferOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	kinds := []record.Value{record.String("s"), record.Int(1), record.Double(2), record.Bool(true), record.Null(), record.Array(), record.Map(nil)}
	var docs []obs
	for i := range 400 {
		f := map[string]record.Value{}
		for j := range 6 {
			if r.IntN(3) > 0 {
				f[fmt.Sprintf("f%d", j)] = kinds[r.IntN(len(kinds))]
			}
		}
		path := fmt.Sprintf("users/u%d", i%17)
		if i%3 == 0 {
			path += fmt.Sprintf("/orders/o%d", i)
		}
		if i%5 == 0 {
			path += "/items/x"
		}
		docs = append(docs, obs{path, f})
	}
	want, err := infer(t, InferOptions{MaxColumns: 4, MaxTrackedFields: 5}, docs).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		r.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
		in := NewInferrer(InferOptions{MaxColumns: 4, MaxTrackedFields: 5})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(docs); i += 4 {
					in.Observe(docs[i].path, docs[i].fields)
				}
			}()
		}
		wg.Wait()
		got, err := in.Mapping().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: shuffled observations changed the mapping:\n%s\nvs\n%s", round, got, want)
		}
	}
}

func TestInferAncestorsAndKeys(t *testing.T) {
	m := infer(t, InferOptions{}, []obs{
		doc("users/u1/orders/o1/items/i1", "qty", record.Int(1)),
		doc("folders/a/folders/b/files/c"),
		doc("bad/path/odd"),
	})
	var patterns []string
	for _, tb := range m.Tables {
		patterns = append(patterns, tb.Collection)
	}
	want := "folders folders/{}/folders folders/{}/folders/{}/files users users/{}/orders users/{}/orders/{}/items"
	if got := strings.Join(patterns, " "); got != want {
		t.Fatalf("tables: %s\nwant %s", got, want)
	}
	items := m.TableFor("users/{}/orders/{}/items")
	if items.Name != "users_orders_items" || strings.Join(items.ParentColumns, ",") != "users_id,orders_id" || items.IDColumn != "id" || items.Documents != 1 {
		t.Errorf("items table: %+v", items)
	}
	if u := m.TableFor("users"); u.Documents != 0 || len(u.Columns) != 0 || u.ParentColumns != nil {
		t.Errorf("missing parent table: %+v", u)
	}
	if m.Parent(items) != m.TableFor("users/{}/orders") || m.Parent(m.TableFor("users")) != nil {
		t.Error("Parent")
	}
	files := m.TableFor("folders/{}/folders/{}/files")
	if files.ParentColumns[0] != "folders_id" || !strings.HasPrefix(files.ParentColumns[1], "folders_id_") {
		t.Errorf("repeated collection IDs: %v", files.ParentColumns)
	}
}

func TestInferNameCollisions(t *testing.T) {
	var fields []any
	for _, n := range []string{"userId", "user_id", "UserID", "id", "_create_time", "名前", "住所", `"; DROP TABLE x; --`} {
		fields = append(fields, n, record.Int(1))
	}
	long := strings.Repeat("x", 70)
	for i := range 100 {
		fields = append(fields, fmt.Sprintf("%s%d", long, i), record.Int(1))
	}
	m := infer(t, InferOptions{ReservedTables: []string{"users"}}, []obs{
		doc("user_orders/a", fields...),
		doc("user/u/orders/o"),
		doc("users/u"),
		doc("名前/x"),
	})
	if m.TableFor("user_orders").Name != "user_orders" || !strings.HasPrefix(m.TableFor("user/{}/orders").Name, "user_orders_") {
		t.Errorf("table collision: %q %q", m.TableFor("user_orders").Name, m.TableFor("user/{}/orders").Name)
	}
	if n := m.TableFor("users").Name; n == "users" {
		t.Errorf("reserved table name given out")
	}
	if n := m.TableFor("名前").Name; !identRE.MatchString(n) {
		t.Errorf("unicode table name %q", n)
	}
	if c := column(t, m.TableFor("user_orders"), "`\"; DROP TABLE x; --`"); c.Name != "drop_table_x" {
		t.Errorf("hostile name: %q", c.Name)
	}
}

func TestInferMaxColumns(t *testing.T) {
	f := map[string]record.Value{}
	for i := range 10 {
		f[fmt.Sprintf("f%d", i)] = record.Int(1)
	}
	docs := []obs{{"c/a", f}, doc("c/b", "f9", record.Int(2), "f8", record.Int(2))}
	m := infer(t, InferOptions{MaxColumns: 3}, docs)
	var got []string
	for _, c := range m.TableFor("c").Columns {
		got = append(got, c.Field)
	}
	if strings.Join(got, ",") != "f0,f8,f9" {
		t.Errorf("MaxColumns kept %v, want the most frequent (f8, f9) then by name (f0)", got)
	}
}

func TestInferBoundedTracking(t *testing.T) {
	in := NewInferrer(InferOptions{MaxColumns: 2, MaxTrackedFields: 10})
	for i := range 5000 {
		in.Observe(fmt.Sprintf("c/d%d", i), map[string]record.Value{fmt.Sprintf("dyn%d", i): record.Int(1), "common": record.String("x")})
	}
	ts := in.tables["c"]
	if len(ts.fields) > 10 {
		t.Fatalf("tracked %d fields, cap is 10", len(ts.fields))
	}
	if c := in.Mapping().TableFor("c").Columns; len(c) != 2 {
		t.Errorf("got %d columns, want MaxColumns = 2", len(c))
	}
}

// TestInferNamesFieldsLikeKeyColumnsReadably: a field named like the
// document ID's column ("id") or a parent's ("usersId" → users_id) gets a
// readable column name, not a hash, and the mapping says why in a comment
// that survives a round trip.
func TestInferNamesFieldsLikeKeyColumnsReadably(t *testing.T) {
	m := infer(t, InferOptions{}, []obs{
		doc("users/a", "id", record.Int(7), "name", record.String("a")),
		doc("users/a/orders/o", "id", record.String("x"), "usersId", record.String("a")),
	})
	users, orders := m.TableFor("users"), m.TableFor("users/{}/orders")
	if c := column(t, users, "id"); c.Name != "id_field" || !strings.Contains(c.Note, "document ID has column id") {
		t.Errorf("users.id → column %q, note %q; want id_field with a note", c.Name, c.Note)
	}
	if c := column(t, orders, "id"); c.Name != "id_field" {
		t.Errorf("orders.id → column %q; want id_field", c.Name)
	}
	if c := column(t, orders, "usersId"); c.Name != "users_id_field" || !strings.Contains(c.Note, "parent document ID has column users_id") {
		t.Errorf("orders.usersId → column %q, note %q; want users_id_field with a note", c.Name, c.Note)
	}
	if c := column(t, users, "name"); c.Note != "" {
		t.Errorf("an unrenamed column has a note: %q", c.Note)
	}
	text, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "column: id_field # renamed: the document ID has column id") {
		t.Errorf("the mapping does not explain the rename:\n%s", text)
	}
	back, err := Parse(text, "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c := column(t, back.TableFor("users"), "id"); c.Note != column(t, users, "id").Note {
		t.Errorf("the note did not round-trip: %q", c.Note)
	}
}

func rec(path string, kv ...any) record.Record {
	d := doc(path, kv...)
	return record.Record{Kind: record.KindDocument, Key: d.path, Fields: d.fields}
}

// TestEvolveAddsColumnsAndTables: a field no column covers gets a typed
// column after the existing ones (not a key or meta name), a covered,
// excluded or flattened field does not, an unseen collection gets a
// table, and m itself is unchanged; nothing new gives nil.
func TestEvolveAddsColumnsAndTables(t *testing.T) {
	m := infer(t, InferOptions{}, []obs{
		doc("users/a", "name", record.String("Ann"), "addr", record.Map(map[string]record.Value{"city": record.String("X")}), "secret", record.String("s")),
	})
	users := m.TableFor("users")
	users.Exclude = []string{"secret"}
	users.Columns = slices.DeleteFunc(users.Columns, func(c *Column) bool { return c.Field == "secret" })
	column(t, users, "addr").Field = "addr.city" // flattened
	column(t, users, "addr.city").Type, column(t, users, "addr.city").Source = "text", SourceString
	before, _ := m.Marshal()

	if ev, err := Evolve(m, []record.Record{rec("users/b", "name", record.String("Bob"), "secret", record.Int(1), "addr", record.Map(nil))}, EvolveOptions{Columns: true}); err != nil || ev != nil {
		t.Fatalf("nothing new: got %+v, %v; want nil", ev, err)
	}
	ev, err := Evolve(m, []record.Record{
		rec("users/c", "age", record.Int(3), "id", record.String("dup"), "_overflow", record.Bool(true)),
		rec("users/d", "age", record.Double(1.5)),
		rec("users/d/orders/1", "total", record.Int(5)),
	}, EvolveOptions{Columns: true})
	if err != nil || ev == nil {
		t.Fatalf("Evolve: %+v, %v", ev, err)
	}
	if after, _ := m.Marshal(); !bytes.Equal(before, after) {
		t.Fatal("Evolve changed the mapping it was given")
	}
	got := ev.Mapping.TableFor("users")
	var cols []string
	for _, c := range got.Columns {
		cols = append(cols, c.Name+":"+c.Type)
	}
	want := "addr:text,name:text,overflow:boolean,age:double precision,id_field:text"
	if strings.Join(cols, ",") != want {
		t.Fatalf("columns %s, want %s", strings.Join(cols, ","), want)
	}
	if ev.Mapping.TableFor("users/{}/orders") == nil || strings.Join(ev.Tables, ",") != "users/{}/orders" {
		t.Fatalf("tables added %v", ev.Tables)
	}
	if strings.Join(ev.Columns, ",") != "users.age,users.id_field,users.overflow" {
		t.Fatalf("columns added %v", ev.Columns)
	}
	// The grown mapping round-trips through YAML unchanged, as a run's
	// stored mapping must.
	text, _ := ev.Mapping.Marshal()
	back, err := Parse(text, "grown")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Marshal(); !bytes.Equal(text, again) {
		t.Fatalf("the grown mapping does not round-trip:\n%s\n---\n%s", text, again)
	}
}

// TestEvolveOptions: without Columns only tables grow; NoTables leaves
// collections alone; MaxColumns caps a table, keeping the most frequent.
func TestEvolveOptions(t *testing.T) {
	m := infer(t, InferOptions{}, []obs{doc("users/a", "name", record.String("Ann"))})
	recs := []record.Record{
		rec("users/b", "x", record.Int(1), "y", record.Int(1)),
		rec("users/c", "y", record.Int(2)),
		rec("things/t", "z", record.Int(1)),
	}
	ev, err := Evolve(m, recs, EvolveOptions{})
	if err != nil || ev == nil || len(ev.Columns) != 0 || strings.Join(ev.Tables, ",") != "things" {
		t.Fatalf("overflow mode: %+v, %v; want only the table things", ev, err)
	}
	if ev, err := Evolve(m, recs[:2], EvolveOptions{NoTables: true}); err != nil || ev != nil {
		t.Fatalf("overflow mode without new tables: %+v, %v; want nil", ev, err)
	}
	ev, err = Evolve(m, recs[:2], EvolveOptions{Columns: true, MaxColumns: 2})
	if err != nil || ev == nil || strings.Join(ev.Columns, ",") != "users.y" {
		t.Fatalf("capped at 2 columns: %+v, %v; want only the more frequent y", ev, err)
	}
}

// TestInferDecimals: exact decimals (DynamoDB's N) make a numeric column
// of source decimal, holding the integers of the same field too; arrays
// with decimals go to jsonb, which keeps them exactly.
func TestInferDecimals(t *testing.T) {
	var docs []obs
	for i := range 6 {
		docs = append(docs, doc(fmt.Sprintf("t/i%d", i), "price", record.Int(int64(i)), "only", record.Decimal("0.5"),
			"ns", record.Array(record.Int(1), record.Decimal("1.5"))))
	}
	docs = append(docs, doc("t/d", "price", record.Decimal("9.99")))
	tb := infer(t, InferOptions{}, docs).TableFor("t")
	for _, f := range []string{"price", "only"} {
		if c := column(t, tb, f); c.Type != "numeric" || c.Source != SourceDecimal {
			t.Errorf("%s: %s/%s, want numeric/decimal", f, c.Type, c.Source)
		}
	}
	if c := column(t, tb, "ns"); c.Type != "jsonb" {
		t.Errorf("array with decimals: %s/%s, want jsonb", c.Type, c.Source)
	}
	if c := column(t, tb, "price"); c.Seen["decimal"] != 1 || c.Seen["integer"] != 6 {
		t.Errorf("evidence: %v", c.Seen)
	}
}
