package mappings

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Reference is what a column declaring `references:` links to: the table
// of a collection pattern, through key columns of its own.
//
// A column with References set holds a reference field (type text, source
// reference: the path, kept as text so nothing is lost). Besides it, its
// table gets one column per key column of the referenced table (its
// ParentColumns then IDColumn), named RefKeyColumns, holding that document's
// key when the referenced document has a row (not a placeholder) and NULL
// otherwise, with a foreign key to the referenced table.
type Reference struct {
	// Table is the referencing table, Column its reference column.
	Table  *Table
	Column *Column
	// Target is the referenced table.
	Target *Table
	// KeyColumns are the referencing table's columns holding the
	// referenced key, one per Target.KeyColumns().
	KeyColumns []string
}

// RefKeyColumns returns the names of the key columns of a reference column
// c to table target: "<column>_<target key column>" each (cut to 63 bytes
// with a hash suffix when longer).
func RefKeyColumns(c *Column, target *Table) []string {
	var out []string
	for _, k := range target.KeyColumns() {
		out = append(out, truncateName(c.Name+"_"+k))
	}
	return out
}

// truncateName cuts a name to PostgreSQL's 63 bytes, ending in a hash of
// the whole name when it had to.
func truncateName(s string) string {
	if len(s) <= maxIdentifierBytes {
		return s
	}
	suffix := "_" + shortHash(s)
	keep := maxIdentifierBytes - len(suffix)
	for keep > 0 && s[keep]&0xC0 == 0x80 {
		keep-- // not inside a UTF-8 sequence
	}
	return s[:keep] + suffix
}

// References lists the reference columns of the mapping that link to a
// table, in table and column order. A column whose References names a
// pattern without a table is left out (Validate reports it).
func (m *Mapping) References() []Reference {
	var out []Reference
	for _, t := range m.Tables {
		out = append(out, m.TableReferences(t)...)
	}
	return out
}

// TableReferences lists the reference columns of t (see References).
func (m *Mapping) TableReferences(t *Table) []Reference {
	var out []Reference
	for _, c := range t.Columns {
		if c.References == "" {
			continue
		}
		target := m.TableFor(c.References)
		if target == nil {
			continue
		}
		out = append(out, Reference{Table: t, Column: c, Target: target, KeyColumns: RefKeyColumns(c, target)})
	}
	return out
}

// PathRegexp returns a POSIX regular expression (PostgreSQL's and Go's
// syntax alike) matching the document paths of a collection pattern,
// capturing the document IDs in order: "users/{}/orders" gives
// ^users/([^/]+)/orders/([^/]+)$.
func PathRegexp(pattern string) string {
	var b strings.Builder
	b.WriteString("^")
	for i, c := range strings.Split(pattern, "/{}/") {
		if i > 0 {
			b.WriteString("/([^/]+)/")
		}
		b.WriteString(regexp.QuoteMeta(c))
	}
	b.WriteString("/([^/]+)$")
	return b.String()
}

// validateReference checks a column's references: a reference column
// (text, source reference) naming a pattern with a table, whose key column
// names are free in the table.
func (m *Mapping) validateReference(t *Table, c *Column, cw string, claim func(name, what string, line int), p *problems) {
	if c.References == "" {
		return
	}
	if c.Type != "text" || c.ColumnSource() != SourceReference {
		p.addf(c.Line, "%s: references needs a reference column (type: text, source: reference), not %s with source %s", cw, c.Type, c.ColumnSource())
	}
	if c.Transform != nil {
		p.addf(c.Line, "%s: a column with references cannot also have a transform: the foreign key needs the path as it is", cw)
	}
	target := m.TableFor(c.References)
	if target == nil {
		p.addf(c.Line, "%s: references %q: no table in the mapping has that collection pattern", cw, c.References)
		return
	}
	for _, k := range RefKeyColumns(c, target) {
		if err := checkIdentifier(k); err != nil {
			p.addf(c.Line, "%s: key column of the reference: %v", cw, err)
			continue
		}
		claim(k, fmt.Sprintf("a key column of the reference %s", c.Field), c.Line)
	}
}

// refTargets is what inference saw of a field's references: the one
// collection pattern they all point into, or mixed.
type refTargets struct {
	pattern string
	mixed   bool
}

// refPattern is the collection pattern a reference value points into
// ("\x00" when its path is not a document path of this database), or ""
// for any other value.
func refPattern(v record.Value) string {
	if v.Type() != record.TypeReference {
		return ""
	}
	p, _, err := PatternOf(v.StringValue())
	if err != nil {
		return "\x00"
	}
	return p
}

func (r *refTargets) note(pattern string) {
	switch {
	case pattern == "" || r.mixed:
	case r.pattern == "":
		r.pattern = pattern
	case r.pattern != pattern:
		r.mixed = true
	}
}

// suggestReference notes on an inferred reference column the collection
// its references all point into (SuggestReferences), for Marshal to offer
// `references:` in a comment. Inference never declares a foreign key
// itself: that adds columns and a constraint, so the user opts in.
func suggestReference(c *Column, fs *fieldStats) {
	if c.Type == "text" && c.Source == SourceReference && !fs.refs.mixed && fs.refs.pattern != "" && fs.refs.pattern != "\x00" {
		c.SuggestReferences = fs.refs.pattern
	}
}

// dropUnmappedSuggestions removes suggestions of collections without a
// table in m.
func dropUnmappedSuggestions(m *Mapping) {
	for _, t := range m.Tables {
		for _, c := range t.Columns {
			if c.SuggestReferences != "" && m.TableFor(c.SuggestReferences) == nil {
				c.SuggestReferences = ""
			}
		}
	}
}

// suggestionPrefix starts the comment Marshal writes for
// Column.SuggestReferences; Parse reads the suggestion back from it.
const suggestionPrefix = "every reference seen points into "

func suggestionComment(pattern string) string {
	return fmt.Sprintf("# %s%s: add `references: %s` for a foreign key (docs/mapping.md)", suggestionPrefix, pattern, pattern)
}

// parseSuggestion reads a suggestion back from a line comment ("" if none).
func parseSuggestion(comment string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(comment, "#")), suggestionPrefix)
	if !ok {
		return ""
	}
	pattern, _, ok := strings.Cut(rest, ": add `references: ")
	if !ok {
		return ""
	}
	return pattern
}

// ColPosition holds, in a child table, the 0-based position of the element
// in its array (bigint).
const ColPosition = "_position"

// ColParentPosition holds, in a child table of a child table, the position
// of the parent element in its array (bigint).
const ColParentPosition = "_parent_position"

// ChildKeyColumns returns the key columns a child table at depth (1 for a
// table's child, 2 for a child's child) has before ColPosition: the
// document's key columns, then ColParentPosition at depth 2.
func ChildKeyColumns(t *Table, depth int) []string {
	keys := t.KeyColumns()
	if depth > 1 {
		keys = append(keys, ColParentPosition)
	}
	return keys
}

// ChildTable maps an array of maps of a table's documents to rows of a
// table of its own: one row per element, keyed by the parent document's
// key columns (same names as the parent's) and ColPosition, with the
// element's fields in typed Columns (paths relative to the element) and
// everything else in ColOverflow. Only scalar column types are allowed
// (not arrays; use jsonb). Two depths: a child table's elements may have
// child tables of their own (Children), keyed by the document's key
// columns, ColParentPosition (the element's position) and ColPosition;
// theirs may not.
type ChildTable struct {
	// Field is the field path of the array in the parent's documents (or,
	// for a grandchild, in the parent's elements).
	Field string
	// Name is the child table's name in the mapping's schema.
	Name string
	// Columns map fields of each element.
	Columns []*Column
	// Children are the child tables of the elements (second depth).
	Children []*ChildTable
	// Line is the line of the file the child starts at (0 if built in code).
	Line int
}

// validateChildren checks t's child tables: a field path (not inside or
// around a column or exclusion of t), a free table name, and columns as in
// a table, scalar typed, named apart from the key, ColPosition and
// ColOverflow. names is every table name of the mapping so far.
func (m *Mapping) validateChildren(t *Table, names map[string]string, p *problems) []pathEntry {
	return m.validateChildList(t, t.Children, 1, t.Name, names, p)
}

// validateChildList checks the child tables at depth under owner (the
// table's name, or the parent child table's).
func (m *Mapping) validateChildList(t *Table, children []*ChildTable, depth int, owner string, names map[string]string, p *problems) []pathEntry {
	var paths []pathEntry
	for i, ch := range children {
		if ch == nil {
			p.addf(t.Line, "table %q: children[%d] is nil", owner, i)
			continue
		}
		where := fmt.Sprintf("child table %q (field %s of table %q)", ch.Name, ch.Field, owner)
		if segs, err := ParseFieldPath(ch.Field); err != nil {
			p.addf(ch.Line, "%s: field: %v", where, err)
		} else {
			paths = append(paths, pathEntry{segs: segs, text: FormatFieldPath(segs), line: ch.Line, what: fmt.Sprintf("child table %q", ch.Name)})
		}
		if err := checkIdentifier(ch.Name); err != nil {
			p.addf(ch.Line, "%s: table: %v", where, err)
		} else if prev, dup := names[ch.Name]; dup {
			p.addf(ch.Line, "%s: the name is already used by %s", where, prev)
		} else {
			names[ch.Name] = fmt.Sprintf("the child table of %s.%s", owner, ch.Field)
		}
		keys := ChildKeyColumns(t, depth)
		cols := map[string]bool{ColPosition: true, ColOverflow: true}
		for _, k := range keys {
			cols[k] = true
		}
		var elems []pathEntry
		for j, c := range ch.Columns {
			if c == nil {
				p.addf(ch.Line, "%s: columns[%d] is nil", where, j)
				continue
			}
			cw := fmt.Sprintf("%s, column %q (field %s)", where, c.Name, c.Field)
			if segs, err := ParseFieldPath(c.Field); err != nil {
				p.addf(c.Line, "%s: field: %v", cw, err)
			} else {
				elems = append(elems, pathEntry{segs: segs, text: FormatFieldPath(segs), line: c.Line, what: fmt.Sprintf("column %q", c.Name)})
			}
			if err := checkIdentifier(c.Name); err != nil {
				p.addf(c.Line, "%s: column: %v", cw, err)
			} else if cols[c.Name] {
				p.addf(c.Line, "%s: the name %q is taken (key columns %s, %s, %s)", cw, c.Name, strings.Join(keys, ", "), ColPosition, ColOverflow)
			} else {
				cols[c.Name] = true
			}
			switch canon, err := canonicalType(c.Type); {
			case c.Type == "":
				p.addf(c.Line, "%s: type is missing", cw)
			case err != nil:
				p.addf(c.Line, "%s: %v", cw, err)
			case canon != c.Type:
				p.addf(c.Line, "%s: write type %q as %q", cw, c.Type, canon)
			case strings.HasSuffix(canon, "[]"):
				p.addf(c.Line, "%s: a child table's columns hold scalars; use jsonb for %s", cw, canon)
			case c.Source != "" && !contains(typeSources[canon], c.Source):
				p.addf(c.Line, "%s: a %s column cannot hold source %q; allowed: %s", cw, canon, c.Source, strings.Join(typeSources[canon], ", "))
			}
			if c.References != "" || c.Transform != nil {
				p.addf(c.Line, "%s: a child table's columns cannot have references or transforms", cw)
			}
		}
		if len(ch.Children) > 0 && depth >= 2 {
			p.addf(ch.Line, "%s: child tables go two depths at most; leave this array of maps in a jsonb column", where)
		} else {
			elems = append(elems, m.validateChildList(t, ch.Children, depth+1, ch.Name, names, p)...)
		}
		checkOverlaps(elems, where, p)
	}
	return paths
}

// childNames returns every table name of the mapping, and the child
// tables' of the tables before t, for validateChildren.
func (m *Mapping) childNames(t *Table) map[string]string {
	names := map[string]string{}
	for _, o := range m.Tables {
		if o != nil && o.Name != "" {
			names[o.Name] = fmt.Sprintf("the table for %q", o.Collection)
		}
	}
	for _, o := range m.Tables {
		if o == t {
			break
		}
		for _, ch := range o.Children {
			if ch != nil {
				names[ch.Name] = fmt.Sprintf("the child table of %s.%s", o.Name, ch.Field)
				for _, g := range ch.Children {
					if g != nil {
						names[g.Name] = fmt.Sprintf("the child table of %s.%s", ch.Name, g.Field)
					}
				}
			}
		}
	}
	return names
}

var childKeys = []string{"field", "table", "columns", "children"}

// decodeChildren reads a table's children: list (nil node: none).
func decodeChildren(n *yaml.Node, p *problems) []*ChildTable {
	var out []*ChildTable
	for _, e := range listItems(n, "children", "child tables", p) {
		ch := &ChildTable{Line: e.Line}
		out = append(out, ch)
		f := fieldsOf(e, "a child table", childKeys, p)
		if f == nil {
			continue
		}
		ch.Field = str(f["field"], "field", p)
		ch.Name = str(f["table"], "table", p)
		ch.Children = decodeChildren(f["children"], p)
		for _, ce := range listItems(f["columns"], "columns", "columns", p) {
			c := &Column{Line: ce.Line}
			decodeColumn(ce, c, p)
			ch.Columns = append(ch.Columns, c)
		}
	}
	return out
}

func childrenNode(children []*ChildTable) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, ch := range children {
		n := &yaml.Node{Kind: yaml.MappingNode}
		addScalar(n, "field", ch.Field, "!!str")
		addScalar(n, "table", ch.Name, "!!str")
		if len(ch.Columns) > 0 {
			cols := &yaml.Node{Kind: yaml.SequenceNode}
			for _, c := range ch.Columns {
				cols.Content = append(cols.Content, columnNode(c))
			}
			n.Content = append(n.Content, strNode("columns"), cols)
		}
		if len(ch.Children) > 0 {
			n.Content = append(n.Content, strNode("children"), childrenNode(ch.Children))
		}
		list.Content = append(list.Content, n)
	}
	return list
}

// elemStats are the statistics of the elements of a field's arrays of
// maps: how many values were such arrays, and the elements' fields.
type elemStats struct {
	arrays int64
	fields *tableStats
}

// elementObservations returns the fields of each element of v when v is a
// non-empty array of maps and the inferrer maps those to child tables;
// nil otherwise.
func (in *Inferrer) elementObservations(v record.Value) [][]observation {
	if !in.opts.ChildTables || v.Type() != record.TypeArray || len(v.ArrayValue()) == 0 {
		return nil
	}
	for _, e := range v.ArrayValue() {
		if e.Type() != record.TypeMap {
			return nil
		}
	}
	out := make([][]observation, 0, len(v.ArrayValue()))
	for _, e := range v.ArrayValue() {
		var obs []observation
		for name, x := range e.MapValue() {
			if !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
				continue
			}
			obs = append(obs, observation{key: fieldKey{h: hash64(name), name: name}, kind: classify(x)})
		}
		out = append(out, obs)
	}
	return out
}

func (fs *fieldStats) noteElements(elems [][]observation, limit int) {
	if elems == nil {
		return
	}
	if fs.elems == nil {
		fs.elems = &elemStats{fields: &tableStats{fields: map[string]*fieldStats{}}}
	}
	fs.elems.arrays++
	for _, obs := range elems {
		fs.elems.fields.docs++
		for _, o := range obs {
			efs := fs.elems.fields.field(o.key, limit)
			if efs == nil {
				continue
			}
			efs.present++
			efs.seen[o.kind]++
		}
	}
}

// childCandidate reports whether every value of the field that is neither
// null nor an empty array was a non-empty array of maps.
func (fs *fieldStats) childCandidate() bool {
	return fs.elems != nil && fs.elems.arrays > 0 && fs.elems.arrays == fs.present-fs.seen[kNull]-fs.seen[kEmptyArray]
}

// inferChild builds the child table of an array-of-maps field of t: one
// scalar column per element field (arrays become jsonb), typed by the
// rules of columns. Its name is set by nameChildTables.
func inferChild(t *Table, fs *fieldStats) *ChildTable {
	ch := &ChildTable{Field: FormatFieldPath([]string{fs.key.name})}
	taken := map[string]bool{ColPosition: true, ColOverflow: true}
	for _, k := range t.KeyColumns() {
		taken[k] = true
	}
	fields := make([]*fieldStats, 0, len(fs.elems.fields.fields))
	for _, e := range fs.elems.fields.fields {
		fields = append(fields, e)
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].key.name < fields[j].key.name })
	reqs := make([]nameRequest, len(fields))
	for i, e := range fields {
		cand := SanitizeName(e.key.name, "f")
		if taken[cand] {
			cand = withSuffix(cand, "field")
		}
		reqs[i] = nameRequest{original: e.key.name, candidate: cand}
	}
	names := assignNames(reqs, taken)
	for i, e := range fields {
		typ, src := e.decide()
		if strings.HasSuffix(typ, "[]") || src == SourceVector {
			typ, src = "jsonb", SourceAny
		}
		c := &Column{Field: FormatFieldPath([]string{e.key.name}), Name: names[i], Type: typ, Source: src, Seen: map[string]int64{}}
		for k, n := range e.seen {
			if n > 0 {
				c.Seen[kindNames[k]] = n
			}
		}
		ch.Columns = append(ch.Columns, c)
	}
	return ch
}

// nameChildTables names the inferred child tables "<table>_<field>",
// apart from every table and each other.
func nameChildTables(m *Mapping) {
	taken := map[string]bool{}
	for _, t := range m.Tables {
		taken[t.Name] = true
	}
	for _, t := range m.Tables {
		for _, ch := range t.Children {
			segs, _ := ParseFieldPath(ch.Field)
			name := t.Name + "_" + SanitizeName(segs[len(segs)-1], "f")
			if len(name) > maxIdentifierBytes || taken[name] {
				name = withSuffix(name, shortHash(t.Collection+"\x00"+ch.Field))
			}
			taken[name] = true
			ch.Name = name
		}
	}
}
