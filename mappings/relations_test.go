package mappings

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings/mappingstest"
)

func TestReferencesParseAndRoundTrip(t *testing.T) {
	m, err := Parse([]byte(mappingstest.References), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	refs := m.References()
	if len(refs) != 2 {
		t.Fatalf("references: %d, want 2", len(refs))
	}
	if refs[0].Target.Name != "users" || !reflect.DeepEqual(refs[0].KeyColumns, []string{"author_id"}) {
		t.Errorf("author: %s %v", refs[0].Target.Name, refs[0].KeyColumns)
	}
	if refs[1].Target.Name != "users_orders" || !reflect.DeepEqual(refs[1].KeyColumns, []string{"order_ref_users_id", "order_ref_id"}) {
		t.Errorf("order: %s %v", refs[1].Target.Name, refs[1].KeyColumns)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "again.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if back.Tables[0].Columns[0].References != "users" || back.Tables[0].Columns[1].References != "users/{}/orders" {
		t.Fatalf("references lost in the round trip:\n%s", out)
	}
}

func TestReferencesValidation(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{`references: users}`, ""},
		{`references: groups}`, `m.yaml:8: table "posts" (collection "posts"), column "author" (field author): references "groups": no table in the mapping has that collection pattern`},
		{`references: users}
      - {field: authorId, column: author_id, type: text}`, `m.yaml:9: table "posts" (collection "posts"): the column for field authorId is named "author_id", which is already the name of a key column of the reference author`},
	} {
		y := strings.Replace(`version: 1
schema: public
tables:
  - collection: posts
    table: posts
    columns:
      - {field: author, column: author, type: text, source: reference, EDIT
  - collection: users
    table: users
`, "EDIT", tc.edit, 1)
		y = strings.ReplaceAll(y, "    table: posts\n", "    table: posts\n    id_column: id\n")
		y = strings.ReplaceAll(y, "    table: users\n", "    table: users\n    id_column: id\n")
		_, err := Parse([]byte(y), "m.yaml")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.edit, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v\nwant %s", tc.edit, err, tc.want)
		}
	}
	// Only a reference column can declare a foreign key.
	y := strings.Replace(mappingstest.References, "type: text, source: reference, references: users", "type: text, references: users", 1)
	if _, err := Parse([]byte(y), "m.yaml"); err == nil || !strings.Contains(err.Error(), "references needs a reference column (type: text, source: reference), not text with source string") {
		t.Fatalf("a string column with references: %v", err)
	}
}

func TestPathRegexp(t *testing.T) {
	re := regexp.MustCompile(PathRegexp("a.b/{}/c+d"))
	for path, want := range map[string][]string{
		"a.b/x/c+d/y":   {"x", "y"},
		"a.b/x/c+d":     nil,
		"axb/x/c+d/y":   nil,
		"a.b/x/c+d/y/z": nil,
		"a.b/x/other/y": nil,
		"a.b/名前/c+d/é":  {"名前", "é"},
	} {
		got := re.FindStringSubmatch(path)
		if want == nil {
			if got != nil {
				t.Errorf("%s matched: %v", path, got)
			}
			continue
		}
		if !reflect.DeepEqual(got[1:], want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

func TestInferSuggestsReferences(t *testing.T) {
	in := NewInferrer(InferOptions{})
	in.Observe("users/u1", map[string]record.Value{"n": record.Int(1)})
	in.Observe("groups/g1", map[string]record.Value{"n": record.Int(1)})
	in.Observe("posts/p1", map[string]record.Value{"author": record.Reference("users/u1"), "any": record.Reference("users/u1"), "far": record.Reference("elsewhere/x")})
	in.Observe("posts/p2", map[string]record.Value{"author": record.Reference("users/ghost"), "any": record.Reference("groups/g1"), "far": record.Reference("elsewhere/y")})
	m := in.Mapping()
	got := map[string]string{}
	for _, c := range m.TableFor("posts").Columns {
		got[c.Field] = c.SuggestReferences
	}
	// author: one collection with a table; any: two; far: no table.
	if want := map[string]string{"author": "users", "any": "", "far": ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("suggestions: %v, want %v", got, want)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "source: reference # every reference seen points into users: add `references: users` for a foreign key") {
		t.Fatalf("no suggestion in the YAML:\n%s", out)
	}
	back, err := Parse(out, "inferred.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Tables {
		for j := range m.Tables[i].Columns {
			back.Tables[i].Columns[j].Line = 0
			if !reflect.DeepEqual(back.Tables[i].Columns[j], m.Tables[i].Columns[j]) {
				t.Errorf("column %+v came back as %+v", m.Tables[i].Columns[j], back.Tables[i].Columns[j])
			}
		}
	}
	for _, c := range back.TableFor("posts").Columns {
		if c.References != "" {
			t.Fatalf("inference declared a foreign key on %s by itself", c.Field)
		}
	}
}

func TestReferencesRefuseTransforms(t *testing.T) {
	y := strings.Replace(mappingstest.References, "references: users}", "references: users, transform: hash, hash: {key_env: K}}", 1)
	if _, err := Parse([]byte(y), "m.yaml"); err == nil || !strings.Contains(err.Error(), "a column with references cannot also have a transform") {
		t.Fatalf("references with a transform: %v", err)
	}
}

func TestInferChildTables(t *testing.T) {
	obs := func(in *Inferrer) {
		item := func(sku string, tags ...record.Value) record.Value {
			return record.Map(map[string]record.Value{"sku": record.String(sku), "qty": record.Int(1), "tags": record.Array(tags...)})
		}
		in.Observe("orders/o1", map[string]record.Value{"items": record.Array(item("a", record.String("x")), item("b"))})
		in.Observe("orders/o2", map[string]record.Value{"items": record.Array()})
		in.Observe("orders/o3", map[string]record.Value{"items": record.Null(), "mixed": record.Array(item("a"), record.Int(1))})
		in.Observe("orders/o4", map[string]record.Value{"mixed": record.Array(item("b"))})
	}
	off := NewInferrer(InferOptions{})
	obs(off)
	if ch := off.Mapping().TableFor("orders").Children; len(ch) != 0 {
		t.Fatalf("child tables without ChildTables: %+v", ch)
	}
	on := NewInferrer(InferOptions{ChildTables: true})
	obs(on)
	m := on.Mapping()
	ot := m.TableFor("orders")
	if len(ot.Children) != 1 || ot.Children[0].Field != "items" || ot.Children[0].Name != "orders_items" {
		t.Fatalf("children: %+v", ot.Children)
	}
	got := map[string]string{}
	for _, c := range ot.Children[0].Columns {
		got[c.Field] = c.Type
	}
	if want := map[string]string{"qty": "bigint", "sku": "text", "tags": "jsonb"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("element columns: %v, want %v", got, want)
	}
	var cols []string
	for _, c := range ot.Columns {
		cols = append(cols, c.Field)
	}
	if strings.Join(cols, ",") != "mixed" {
		t.Fatalf("columns: %v; want only mixed (items is a child table)", cols)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "m.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(back.TableFor("orders").Children) != 1 || len(back.TableFor("orders").Children[0].Columns) != 3 {
		t.Fatalf("children lost in the round trip:\n%s", out)
	}
}

func TestChildTableValidation(t *testing.T) {
	// The shared child mapping with its first child table's field, name
	// and first column's name and type as the cases set them.
	base := strings.NewReplacer(
		"      - field: items\n        table: orders_items\n", "      - field: FIELD\n        table: TABLE\n",
		"{field: sku, column: sku, type: text}", "{field: sku, column: COLUMN, type: TYPE}",
	).Replace(mappingstest.Children)
	if strings.Count(base, "FIELD")+strings.Count(base, "COLUMN") != 2 {
		t.Fatalf("the shared child mapping changed shape:\n%s", base)
	}
	for _, tc := range []struct{ field, table, column, typ, want string }{
		{"items", "orders_items", "sku", "text", ""},
		{"total", "orders_items", "sku", "text", "is used by child table \"orders_items\" and again by column \"total\""},
		{"items", "orders", "sku", "text", "the name is already used by the table for \"orders\""},
		{"items", "orders_items", "_position", "text", "the name \"_position\" is taken"},
		{"items", "orders_items", "id", "text", "the name \"id\" is taken"},
		{"items", "orders_items", "sku", "'text[]'", "a child table's columns hold scalars"},
	} {
		y := strings.NewReplacer("FIELD", tc.field, "TABLE", tc.table, "COLUMN", tc.column, "TYPE", tc.typ).Replace(base)
		_, err := Parse([]byte(y), "m.yaml")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want %s", tc, err, tc.want)
		}
	}
}

func TestChildTablesTwoDepthsAtMost(t *testing.T) {
	y := `version: 1
schema: public
tables:
  - collection: orders
    table: orders
    id_column: id
    children:
      - field: items
        table: items
        columns:
          - {field: sku, column: sku, type: text}
        children:
          - field: parts
            table: parts
            columns:
              - {field: _parent_position, column: _parent_position, type: bigint}
            children:
              - {field: screws, table: screws}
`
	_, err := Parse([]byte(y), "m.yaml")
	if err == nil || !strings.Contains(err.Error(), `child table "parts" (field parts of table "items"): child tables go two depths at most`) ||
		!strings.Contains(err.Error(), `the name "_parent_position" is taken`) {
		t.Fatalf("three depths: %v", err)
	}
	ok := strings.Replace(strings.Replace(y, "            children:\n              - {field: screws, table: screws}\n", "", 1), "column: _parent_position", "column: pp", 1)
	m, err := Parse([]byte(ok), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "again.yaml")
	if err != nil || len(back.Tables[0].Children[0].Children) != 1 || back.Tables[0].Children[0].Children[0].Name != "parts" {
		t.Fatalf("second depth lost in the round trip: %v\n%s", err, out)
	}
}
