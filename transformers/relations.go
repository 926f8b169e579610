package transformers

import (
	"fmt"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Child tables (mappings.ChildTable): an array of maps of a document goes
// to rows of a table of its own, one per element, instead of the parent's
// row. An array that is empty, or has an element that is not a map, or a
// value that is not an array, stays in the parent's overflow as it is,
// so nothing is lost and an empty array comes back empty.

// ChildRows are the rows of one child table for one parent document.
type ChildRows struct {
	Child *mappings.ChildTable
	// Rows holds one row per element, in array order (the position is the
	// index); none when the document has no array of maps there.
	Rows []ChildRow
}

// ChildRow is one element of an array of maps as a child table row.
type ChildRow struct {
	// Values holds one value per Child.Columns, as Row.Values.
	Values []any
	// Children holds the rows of the element's child tables, one entry
	// per Child.Children (second depth).
	Children []ChildRows
	// Overflow is the typed JSON object of the element's other fields, or
	// nil.
	Overflow []byte
}

// compiledChild is a child table compiled: the path of its array in the
// parent and its columns over an element.
type compiledChild struct {
	ch   *mappings.ChildTable
	segs []string
	elem *compiledTable
}

// compileChildren compiles t's child tables into ct and marks their paths
// in ct's trie.
func (ct *compiledTable) compileChildren(t *mappings.Table) error {
	return ct.compileChildList(t.Children)
}

// compileChildList compiles child tables into ct (a table, or the element
// of a child table) and marks their paths in ct's trie.
func (ct *compiledTable) compileChildList(children []*mappings.ChildTable) error {
	for i, ch := range children {
		segs, err := mappings.ParseFieldPath(ch.Field)
		if err != nil {
			return fmt.Errorf("child table %q: %w", ch.Name, err)
		}
		elem := &compiledTable{root: &node{col: -1}}
		for j, c := range ch.Columns {
			csegs, err := mappings.ParseFieldPath(c.Field)
			if err != nil {
				return fmt.Errorf("child table %q, column %q: %w", ch.Name, c.Name, err)
			}
			cd, err := newCodec(c.Type, c.ColumnSource())
			if err != nil {
				return fmt.Errorf("child table %q, column %q: %w", ch.Name, c.Name, err)
			}
			elem.cols = append(elem.cols, compiledColumn{segs: csegs, codec: cd, jsonb: c.Type == "jsonb"})
			n := elem.root
			for _, s := range csegs {
				n = n.child(s)
			}
			n.col = j
		}
		if err := elem.compileChildList(ch.Children); err != nil {
			return err
		}
		ct.children = append(ct.children, compiledChild{ch: ch, segs: segs, elem: elem})
		n := ct.root
		for _, s := range segs {
			n = n.child(s)
		}
		n.childTable = i + 1
	}
	return nil
}

// childRows turns an array of maps into child rows; ok is false (the value
// stays in the parent's overflow) for anything else, or an empty array.
func (c *compiledChild) childRows(v record.Value) (rows []ChildRow, ok bool) {
	if v.Type() != record.TypeArray || len(v.ArrayValue()) == 0 {
		return nil, false
	}
	elems := v.ArrayValue()
	for _, e := range elems {
		if e.Type() != record.TypeMap {
			return nil, false
		}
	}
	rows = make([]ChildRow, len(elems))
	for i, e := range elems {
		vals := make([]any, len(c.elem.cols)+len(c.elem.children))
		residue, _ := c.elem.split(e.MapValue(), c.elem.root, vals)
		rows[i].Values, rows[i].Children = c.elem.takeChildren(vals)
		if len(residue) > 0 {
			rows[i].Overflow = record.MarshalJSONFields(nil, residue)
		}
	}
	return rows, true
}

// takeChildren moves the child rows split left after the columns' values
// (one slot per child table) into ChildRows, and cuts values back to the
// columns.
func (ct *compiledTable) takeChildren(values []any) ([]any, []ChildRows) {
	if len(ct.children) == 0 {
		return values, nil
	}
	out := make([]ChildRows, len(ct.children))
	for i, c := range ct.children {
		out[i].Child = c.ch
		out[i].Rows, _ = values[len(ct.cols)+i].([]ChildRow)
	}
	return values[:len(ct.cols):len(ct.cols)], out
}

// ChildRowValues is a child row as read back: values one per column,
// scanned as Reconstruct takes them, and the overflow as raw JSON or nil.
type ChildRowValues struct {
	Values   []any
	Overflow []byte
	// Children are the element's child rows, one list per
	// Child.Children, in position order.
	Children [][]ChildRowValues
}

// ReconstructChildren puts back into fields (a document of table t as
// Reconstruct rebuilt it) the arrays its child tables hold: children has
// one list per t.Children, each the rows in position order. A child table
// without rows leaves fields as they are.
func (d *Documents) ReconstructChildren(t *mappings.Table, fields map[string]record.Value, children [][]ChildRowValues) error {
	ct := d.byTable[t]
	if ct == nil {
		return fmt.Errorf("reconstructing child rows: table %q is not in the mapping", t.Name)
	}
	return rebuildChildren(ct.children, fields, children)
}

// rebuildChildren puts back into fields (a document or an element) the
// arrays of its child tables.
func rebuildChildren(compiled []compiledChild, fields map[string]record.Value, children [][]ChildRowValues) error {
	if len(children) != len(compiled) {
		return fmt.Errorf("reconstructing child rows: got %d child tables, the mapping has %d", len(children), len(compiled))
	}
	for i, rows := range children {
		if len(rows) == 0 {
			continue
		}
		c := compiled[i]
		elems := make([]record.Value, len(rows))
		for j, r := range rows {
			if len(r.Values) != len(c.elem.cols) {
				return fmt.Errorf("reconstructing child table %q: got %d values, it has %d columns", c.ch.Name, len(r.Values), len(c.elem.cols))
			}
			el := map[string]record.Value{}
			for k, x := range r.Values {
				x = deref(x)
				if x == nil {
					continue
				}
				v, err := c.elem.cols[k].codec.decode(x)
				if err != nil {
					return fmt.Errorf("reconstructing child table %q, column %q: %w", c.ch.Name, c.ch.Columns[k].Name, err)
				}
				setPath(el, c.elem.cols[k].segs, v)
			}
			if r.Overflow != nil {
				of, err := record.UnmarshalJSONFields(r.Overflow)
				if err != nil {
					return fmt.Errorf("reconstructing child table %q: column %s: %w", c.ch.Name, mappings.ColOverflow, err)
				}
				merge(el, of)
			}
			if len(c.elem.children) > 0 {
				kids := r.Children
				if kids == nil {
					kids = make([][]ChildRowValues, len(c.elem.children))
				}
				if err := rebuildChildren(c.elem.children, el, kids); err != nil {
					return err
				}
			}
			elems[j] = record.Map(el)
		}
		setPath(fields, c.segs, record.Array(elems...))
	}
	return nil
}
