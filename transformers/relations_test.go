package transformers

import (
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/mappings/mappingstest"
)

// childRoundTrip transforms a document and rebuilds it from the row and
// its child rows, as verify does.
func childRoundTrip(t *testing.T, d *Documents, fields map[string]record.Value) (Row, map[string]record.Value) {
	t.Helper()
	row, err := d.Transform(record.Record{Kind: record.KindDocument, Key: "orders/o1", Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	_, back, err := d.Reconstruct(row.Table, row.Key, row.Values, row.Overflow)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ReconstructChildren(row.Table, back, asRead(row.Children)); err != nil {
		t.Fatal(err)
	}
	return row, back
}

func TestChildTablesRoundTrip(t *testing.T) {
	m, err := mappings.Parse([]byte(mappingstest.Children), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	item := func(sku string, qty any) record.Value {
		f := map[string]record.Value{"sku": record.String(sku)}
		switch q := qty.(type) {
		case int:
			f["qty"] = record.Int(int64(q))
		case string:
			f["qty"] = record.String(q) // a type the column does not hold
		}
		return record.Map(f)
	}
	for name, tc := range map[string]struct {
		fields map[string]record.Value
		rows   []int // child rows per child table
	}{
		"array of maps": {map[string]record.Value{"total": record.Int(3), "items": record.Array(item("a", 1), item("b", "two"), record.Map(map[string]record.Value{"note": record.Bool(true)})),
			"meta": record.Map(map[string]record.Value{"tags": record.Array(record.Map(map[string]record.Value{"k": record.String("v")})), "x": record.Int(1)})}, []int{3, 1}},
		"empty array":   {map[string]record.Value{"items": record.Array()}, []int{0, 0}},
		"not all maps":  {map[string]record.Value{"items": record.Array(item("a", 1), record.Int(5))}, []int{0, 0}},
		"not an array":  {map[string]record.Value{"items": record.String("none")}, []int{0, 0}},
		"absent":        {map[string]record.Value{"total": record.Int(1)}, []int{0, 0}},
		"only in a map": {map[string]record.Value{"meta": record.Map(map[string]record.Value{"tags": record.Array(record.Map(nil))})}, []int{0, 1}},
	} {
		row, back := childRoundTrip(t, d, tc.fields)
		if len(row.Values) != 1 || len(row.Children) != 2 {
			t.Fatalf("%s: %d values, %d child tables", name, len(row.Values), len(row.Children))
		}
		for i, n := range tc.rows {
			if len(row.Children[i].Rows) != n {
				t.Errorf("%s: child table %d has %d rows, want %d", name, i, len(row.Children[i].Rows), n)
			}
		}
		if !record.Equal(record.Map(back), record.Map(tc.fields)) {
			t.Errorf("%s: rebuilt %v, want %v", name, back, tc.fields)
		}
	}
	// The elements' typed columns and overflow.
	row, _ := childRoundTrip(t, d, map[string]record.Value{"items": record.Array(item("a", 1), item("b", "two"))})
	r := row.Children[0].Rows
	if r[0].Values[0] != "a" || r[0].Values[1] != int64(1) || r[0].Overflow != nil || r[1].Values[1] != nil || string(r[1].Overflow) != `{"qty":"two"}` {
		t.Fatalf("child rows: %+v", r)
	}
}

// asRead turns child rows as transformed into child rows as read back.
func asRead(children []ChildRows) [][]ChildRowValues {
	out := make([][]ChildRowValues, len(children))
	for i, c := range children {
		for _, r := range c.Rows {
			out[i] = append(out[i], ChildRowValues{Values: r.Values, Overflow: r.Overflow, Children: asRead(r.Children)})
		}
	}
	return out
}

func TestChildTablesSecondDepth(t *testing.T) {
	m, err := mappings.Parse([]byte(mappingstest.ChildrenTwoDepths), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDocuments(m)
	if err != nil {
		t.Fatal(err)
	}
	part := func(p int64) record.Value {
		return record.Map(map[string]record.Value{"p": record.Int(p), "q": record.Bool(true)})
	}
	fields := map[string]record.Value{"items": record.Array(
		record.Map(map[string]record.Value{"sku": record.String("a"), "parts": record.Array(part(1), part(2))}),
		record.Map(map[string]record.Value{"sku": record.String("b"), "parts": record.Array()}),
		record.Map(map[string]record.Value{"parts": record.Array(part(3))}),
	)}
	row, back := childRoundTrip(t, d, fields)
	if !record.Equal(record.Map(back), record.Map(fields)) {
		t.Fatalf("rebuilt %v, want %v", back, fields)
	}
	items := row.Children[0].Rows
	if len(items) != 3 || len(items[0].Children[0].Rows) != 2 || len(items[1].Children[0].Rows) != 0 || len(items[2].Children[0].Rows) != 1 {
		t.Fatalf("rows: %+v", items)
	}
	if string(items[1].Overflow) != `{"parts":[]}` || string(items[0].Children[0].Rows[1].Overflow) != `{"q":true}` {
		t.Fatalf("overflows: %s, %s", items[1].Overflow, items[0].Children[0].Rows[1].Overflow)
	}
}
