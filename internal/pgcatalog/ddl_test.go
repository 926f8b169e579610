package pgcatalog

import (
	"fmt"
	"reflect"
	"testing"
)

// TestKeysAndIndexesIsTheTablesPartOfAfter: a table's KeysAndIndexes are
// exactly After's keys and indexes of that table, in After's order, and
// After still lists every table's keys, then indexes, then foreign keys.
func TestKeysAndIndexesIsTheTablesPartOfAfter(t *testing.T) {
	c := &Catalog{}
	for i := range 3 {
		c.Tables = append(c.Tables, &Table{Schema: "public", Name: fmt.Sprintf("t%d", i),
			Keys:        [][2]string{{fmt.Sprintf("t%d_pkey", i), "PRIMARY KEY (id)"}, {fmt.Sprintf("t%d_u", i), "UNIQUE (a)"}},
			Indexes:     []string{fmt.Sprintf("CREATE INDEX t%d_b ON public.t%d USING btree (b)", i, i)},
			ForeignKeys: [][2]string{{fmt.Sprintf("t%d_fk", i), "FOREIGN KEY (p) REFERENCES public.t0(id)"}}})
	}
	after := c.After()
	var kinds []string
	for _, o := range after {
		kinds = append(kinds, o.Kind+" "+o.Name)
	}
	want := []string{"constraint t0", "constraint t0", "constraint t1", "constraint t1", "constraint t2", "constraint t2",
		"index t0", "index t1", "index t2", "foreign-key t0", "foreign-key t1", "foreign-key t2"}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("After lists %v, want %v", kinds, want)
	}
	for _, tb := range c.Tables {
		var filtered []Object
		for _, o := range after {
			if o.Table == tb && o.Kind != "foreign-key" {
				filtered = append(filtered, o)
			}
		}
		if got := tb.KeysAndIndexes(); !reflect.DeepEqual(got, filtered) {
			t.Errorf("%s: KeysAndIndexes %+v, want %+v", tb.Name, got, filtered)
		}
	}
}

// TestCopyFormatComputedOnce: the copy format a loaded table keeps is what
// the table's columns give, for a binary and a text table.
func TestCopyFormatComputedOnce(t *testing.T) {
	for _, tb := range []*Table{
		{Schema: "public", Name: "bin", Columns: []Column{{Name: "id", Type: "bigint", TypeSchema: "pg_catalog", TypeKind: "b"}}},
		{Schema: "public", Name: "text", Columns: []Column{{Name: "tags", Type: "public.mood[]", TypeSchema: "pg_catalog", TypeKind: "b", ElemSchema: "public", ElemKind: "e"}}},
	} {
		bin, in := tb.Binary(), tb.CopyIn()
		tb.copy = &copyFormat{binary: tb.binary(), in: tb.copyIn()}
		if tb.Binary() != bin || tb.CopyIn() != in {
			t.Errorf("%s: kept %v %q, computed %v %q", tb.Name, tb.Binary(), tb.CopyIn(), bin, in)
		}
		if wantBin := tb.Name == "bin"; bin != wantBin {
			t.Errorf("%s: Binary %v", tb.Name, bin)
		}
	}
}

// TestKeyPositions: the key's columns are numbered among the copied ones
// (a generated column before them does not count), in the key's order.
func TestKeyPositions(t *testing.T) {
	tb := &Table{Key: []string{"b", "a"}, Columns: []Column{{Name: "g", Generated: "s"}, {Name: "a"}, {Name: "x"}, {Name: "b"}}}
	if got := tb.KeyPositions(); !reflect.DeepEqual(got, []int{2, 0}) {
		t.Errorf("KeyPositions %v, want [2 0]", got)
	}
	if got := (&Table{Columns: []Column{{Name: "a"}}}).KeyPositions(); len(got) != 0 {
		t.Errorf("keyless KeyPositions %v", got)
	}
}
