// Package transformers turns source records into target rows according to
// a mapping (package mappings), and rows back into records for
// verification. Documents does it for documents: one row per
// document in the table of its collection pattern, mapped fields in typed
// columns, and everything else in the lossless overflow column.
package transformers

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Documents transforms document records into rows for a validated mapping.
// It is immutable after NewDocuments and safe for concurrent use.
type Documents struct {
	m         *mappings.Mapping
	byPattern map[string]*compiledTable
	byTable   map[*mappings.Table]*compiledTable
	// colls finds a document's table by walking its path's collection
	// IDs, without building the pattern string.
	colls map[string]*collNode
}

// collNode is one collection ID of the mapping's patterns: the table of
// the pattern that ends there (nil if none) and the subcollections below.
type collNode struct {
	table *compiledTable
	sub   map[string]*collNode
}

type compiledTable struct {
	t    *mappings.Table
	root *node
	cols []compiledColumn
	// ancestors are the tables of the ancestor collection patterns that
	// have one, outermost first, with their depth (number of IDs in their
	// key).
	ancestors []ancestor
	// children are the table's child tables (relations.go).
	children []compiledChild
}

type ancestor struct {
	t     *mappings.Table
	depth int
}

type compiledColumn struct {
	segs  []string
	codec codec
	jsonb bool
}

// node is one step of the field-path trie of a table: a key that is a
// column (col ≥ 0), excluded, or on the way to either.
type node struct {
	children map[string]*node
	col      int
	excluded bool
	// childTable is 1 + the index of the child table the key's array goes
	// to, 0 for none.
	childTable int
}

func (n *node) child(k string) *node {
	c := n.children[k]
	if c == nil {
		c = &node{col: -1}
		if n.children == nil {
			n.children = map[string]*node{}
		}
		n.children[k] = c
	}
	return c
}

// NewDocuments validates m and compiles it. The mapping must not be
// modified afterwards.
func NewDocuments(m *mappings.Mapping) (*Documents, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("invalid mapping:\n%w", err)
	}
	d := &Documents{m: m, byPattern: map[string]*compiledTable{}, byTable: map[*mappings.Table]*compiledTable{}, colls: map[string]*collNode{}}
	for _, t := range m.Tables {
		ct := &compiledTable{t: t, root: &node{col: -1}}
		for i, c := range t.Columns {
			segs, err := mappings.ParseFieldPath(c.Field)
			if err != nil {
				return nil, fmt.Errorf("table %q, column %q: %w", t.Name, c.Name, err)
			}
			cd, err := newCodec(c.Type, c.ColumnSource())
			if err != nil {
				return nil, fmt.Errorf("table %q, column %q: %w", t.Name, c.Name, err)
			}
			ct.cols = append(ct.cols, compiledColumn{segs: segs, codec: cd, jsonb: c.Type == "jsonb"})
			n := ct.root
			for _, s := range segs {
				n = n.child(s)
			}
			n.col = i
		}
		for _, e := range t.Exclude {
			segs, err := mappings.ParseFieldPath(e)
			if err != nil {
				return nil, fmt.Errorf("table %q, exclude %s: %w", t.Name, e, err)
			}
			n := ct.root
			for _, s := range segs {
				n = n.child(s)
			}
			n.excluded = true
		}
		if err := ct.compileChildren(t); err != nil {
			return nil, err
		}
		d.byPattern[t.Collection] = ct
		d.byTable[t] = ct
		level := d.colls
		var n *collNode
		for _, c := range strings.Split(t.Collection, "/{}/") {
			if n = level[c]; n == nil {
				n = &collNode{sub: map[string]*collNode{}}
				level[c] = n
			}
			level = n.sub
		}
		n.table = ct
	}
	for _, ct := range d.byTable {
		colls := strings.Split(ct.t.Collection, "/{}/")
		for depth := 1; depth < len(colls); depth++ {
			if a := d.byPattern[strings.Join(colls[:depth], "/{}/")]; a != nil {
				ct.ancestors = append(ct.ancestors, ancestor{a.t, depth})
			}
		}
	}
	return d, nil
}

// Mapping returns the mapping d was compiled from.
func (d *Documents) Mapping() *mappings.Mapping { return d.m }

// Row is one document as a row of its table.
type Row struct {
	// Table is the table the row belongs to.
	Table *mappings.Table
	// Key holds the parent document IDs then the document ID, one per
	// Table.KeyColumns().
	Key []string
	// Values holds one value per Table.Columns, in order; nil is SQL NULL.
	// Each is of the Go type pgx encodes for the column type (see the
	// package's column type table in docs/mapping.md). An array is a []T
	// when it has no NULL element (pgx encodes it without reflection) and a
	// []*T with nil for NULL otherwise; bytea arrays are always [][]byte
	// with nil for NULL, and vectors []*float64 or []*float32.
	Values []any
	// CreateTime and UpdateTime are the source's; the zero time is NULL.
	CreateTime, UpdateTime time.Time
	// Overflow is the typed JSON object of everything no column holds, or
	// nil (SQL NULL) when there is nothing.
	Overflow []byte
	// Children holds the rows of the table's child tables, one entry per
	// Table.Children (relations.go).
	Children []ChildRows
}

// Placeholder is the key of an ancestor document that gets a row with
// _missing = true unless it exists.
type Placeholder struct {
	Table *mappings.Table
	Key   []string
}

// Transform maps one document record (KindDocument, Key = document path) to
// its row. Values a column cannot hold never fail: they go to the overflow.
// An error means the record cannot be loaded at all (not a document, a
// malformed path, no table for its pattern, a document ID PostgreSQL text
// cannot hold); its message is the reject reason shown to the user.
func (d *Documents) Transform(rec record.Record) (Row, error) {
	ct, ids, err := d.locate(rec)
	if err != nil {
		return Row{}, err
	}
	row := Row{
		Table:      ct.t,
		Key:        ids,
		Values:     make([]any, len(ct.cols)+len(ct.children)),
		CreateTime: rec.CreateTime,
		UpdateTime: rec.UpdateTime,
	}
	residue, _ := ct.split(rec.Fields, ct.root, row.Values)
	row.Values, row.Children = ct.takeChildren(row.Values)
	if len(residue) > 0 {
		row.Overflow = record.MarshalJSONFields(nil, residue)
	}
	return row, nil
}

// TableLabel names, for summaries and reports, the table a document that
// Transform refuses would have gone to: its table, "(no table for
// <pattern>)", or "(invalid path)". The label is always text PostgreSQL
// can store: a path with a collection ID it cannot hold is invalid.
func (d *Documents) TableLabel(path string) string {
	pattern, _, err := mappings.PatternOf(path)
	if err != nil {
		return "(invalid path)"
	}
	if t := d.m.TableFor(pattern); t != nil {
		return t.Name
	}
	return "(no table for " + pattern + ")"
}

// locate finds the table and key of a document record.
func (d *Documents) locate(rec record.Record) (*compiledTable, []string, error) {
	if rec.Kind != record.KindDocument {
		return nil, nil, fmt.Errorf("record %q is a %s, not a document", rec.Key, rec.Kind)
	}
	ct, ids := d.lookup(rec.Key)
	if ct == nil {
		// Not the path of a mapped collection: PatternOf says why.
		pattern, pids, err := mappings.PatternOf(rec.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("malformed document path: %w", err)
		}
		if ct = d.byPattern[pattern]; ct == nil {
			return nil, nil, fmt.Errorf("no table in the mapping for collection pattern %q; re-run infer or add it", pattern)
		}
		ids = pids
	}
	for _, id := range ids {
		if err := checkKey(id); err != nil {
			return nil, nil, err
		}
	}
	return ct, ids, nil
}

// lookup walks a document path through the mapping's collection IDs. It
// returns the table and document IDs PatternOf and byPattern would give
// when path is a document path of a mapped pattern, and nil otherwise (the
// segments it matches are collection IDs of a validated mapping, and the
// IDs between them are non-empty).
func (d *Documents) lookup(path string) (*compiledTable, []string) {
	slashes := strings.Count(path, "/")
	if slashes%2 == 0 {
		return nil, nil // an odd number of segments
	}
	ids := make([]string, 0, (slashes+1)/2)
	level, rest := d.colls, path
	for {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil, nil
		}
		n := level[rest[:i]]
		if n == nil {
			return nil, nil
		}
		rest = rest[i+1:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			if rest == "" || n.table == nil {
				return nil, nil
			}
			return n.table, append(ids, rest)
		}
		if j == 0 {
			return nil, nil
		}
		ids = append(ids, rest[:j])
		level, rest = n.sub, rest[j+1:]
	}
}

func checkKey(id string) error {
	switch {
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("document ID %q contains a NUL byte, which a PostgreSQL text key cannot hold", id)
	case !utf8.ValidString(id):
		return fmt.Errorf("document ID %q is not valid UTF-8, which a PostgreSQL text key cannot hold", id)
	}
	return nil
}

// split sends the values of fields (a map at trie node n) to their columns
// and returns what is left for the overflow. recreated reports whether the
// columns alone bring back the map on reconstruction (some column below
// got a non-NULL value), which is what allows an emptied map to be pruned.
func (ct *compiledTable) split(fields map[string]record.Value, n *node, values []any) (residue map[string]record.Value, recreated bool) {
	for k, v := range fields {
		c := n.children[k]
		switch {
		case c == nil:
			residue = put(residue, k, v)
		case c.excluded:
		case c.childTable > 0:
			if rows, ok := ct.children[c.childTable-1].childRows(v); ok {
				values[len(ct.cols)+c.childTable-1] = rows
				recreated = true
			} else {
				residue = put(residue, k, v)
			}
		case c.col >= 0:
			x, exact := ct.cols[c.col].store(v)
			values[c.col] = x
			if x != nil {
				recreated = true
			}
			if !exact {
				residue = put(residue, k, v)
			}
		case v.Type() != record.TypeMap:
			residue = put(residue, k, v) // a flattened field that is not a map here
		default:
			sub, subRecreated := ct.split(v.MapValue(), c, values)
			switch {
			case len(sub) > 0:
				residue = put(residue, k, record.Map(sub))
				recreated = recreated || subRecreated
			case subRecreated:
				recreated = true // columns bring the map back; prune it
			default:
				// Empty in the source, or emptied only by exclusions.
				residue = put(residue, k, record.Map(nil))
			}
		}
	}
	return residue, recreated
}

func put(m map[string]record.Value, k string, v record.Value) map[string]record.Value {
	if m == nil {
		m = map[string]record.Value{}
	}
	m[k] = v
	return m
}

// store returns the column value for a present field value v (nil for SQL
// NULL) and whether the column alone gives v back; when it does not, v
// also goes to the overflow, which wins on reconstruction.
func (c *compiledColumn) store(v record.Value) (x any, exact bool) {
	if v.IsNull() && !c.jsonb {
		return nil, false // explicit null: NULL column plus field: null in the overflow
	}
	x, exact, ok := c.codec.encode(v)
	if !ok {
		return nil, false
	}
	return x, exact
}

// Ancestors returns the key of every ancestor document of rec whose
// collection pattern has a table, outermost first, so the loader can insert
// placeholder rows (_missing = true, ON CONFLICT DO NOTHING) before rec's
// row. It fails like Transform on a record that is not a loadable document.
func (d *Documents) Ancestors(rec record.Record) ([]Placeholder, error) {
	ct, ids, err := d.locate(rec)
	if err != nil {
		return nil, err
	}
	return ct.placeholders(ids), nil
}

// RowAncestors is Ancestors for a document already transformed into row:
// it parses nothing again.
func (d *Documents) RowAncestors(row Row) []Placeholder {
	return d.byTable[row.Table].placeholders(row.Key)
}

func (ct *compiledTable) placeholders(ids []string) []Placeholder {
	out := make([]Placeholder, 0, len(ct.ancestors))
	for _, a := range ct.ancestors {
		out = append(out, Placeholder{Table: a.t, Key: ids[:a.depth:a.depth]})
	}
	return out
}

// Reconstruct is the inverse of Transform: from a row of table t as read
// back (key as in Row.Key; values one per t.Columns, nil for NULL, scanned
// into the Go types of Row.Values, with jsonb as raw JSON text, arrays as
// []*T, []T or []any, numeric as pgtype.Numeric or string; overflow as raw
// JSON text or nil) it rebuilds the document's path and fields. For every
// document, Reconstruct of its Transform gives back exactly its fields,
// less the excluded ones.
func (d *Documents) Reconstruct(t *mappings.Table, key []string, values []any, overflow []byte) (path string, fields map[string]record.Value, err error) {
	ct := d.byTable[t]
	if ct == nil && t != nil {
		ct = d.byPattern[t.Collection]
	}
	if ct == nil {
		return "", nil, errors.New("reconstructing a row: the table is not in the mapping")
	}
	if path, err = mappings.DocumentPath(ct.t.Collection, key); err != nil {
		return "", nil, fmt.Errorf("reconstructing a row of %q: %w", ct.t.Name, err)
	}
	if len(values) != len(ct.cols) {
		return "", nil, fmt.Errorf("reconstructing %s: got %d column values, table %q has %d columns", path, len(values), ct.t.Name, len(ct.cols))
	}
	fields = map[string]record.Value{}
	for i, x := range values {
		x = deref(x)
		if x == nil {
			continue
		}
		v, err := ct.cols[i].codec.decode(x)
		if err != nil {
			return "", nil, fmt.Errorf("reconstructing %s: column %q: %w", path, ct.t.Columns[i].Name, err)
		}
		setPath(fields, ct.cols[i].segs, v)
	}
	if overflow != nil {
		of, err := record.UnmarshalJSONFields(overflow)
		if err != nil {
			return "", nil, fmt.Errorf("reconstructing %s: column %s: %w", path, mappings.ColOverflow, err)
		}
		merge(fields, of)
	}
	return path, fields, nil
}

// setPath stores v at segs in m, creating maps on the way. Maps met on the
// way were created by Reconstruct itself, so changing them is safe.
func setPath(m map[string]record.Value, segs []string, v record.Value) {
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s]
		if !ok || next.Type() != record.TypeMap {
			next = record.Map(map[string]record.Value{})
			m[s] = next
		}
		m = next.MapValue()
	}
	m[segs[len(segs)-1]] = v
}

// merge lays the overflow over the fields rebuilt from columns: maps on
// both sides merge key by key, anything else from the overflow wins.
func merge(dst, src map[string]record.Value) {
	for k, sv := range src {
		if dv, ok := dst[k]; ok && dv.Type() == record.TypeMap && sv.Type() == record.TypeMap {
			merge(dv.MapValue(), sv.MapValue())
			continue
		}
		dst[k] = sv
	}
}
