package mappings

import (
	"fmt"
	"strings"
)

// maxTableColumns is PostgreSQL's limit on the number of columns of a table.
const maxTableColumns = 1600

// Validate checks the whole mapping and returns every problem at once as a
// *ValidationError (nil when there is none). Each message starts
// "FILE:LINE: " and names the table or column concerned. It checks the
// format version and schema; per table the collection pattern, the table,
// id and parent column names (valid identifiers, one parent column per {}),
// that no two tables share a pattern or a name; per column the field path
// syntax, the name (unique in its table, distinct from key and meta
// columns), the type (canonical spelling of a supported type) and source;
// and that columns and exclusions do not overlap: no field is mapped or
// excluded twice, and no path lies inside another mapped or excluded path.
// Field transforms are checked too: their parameters, and that the
// column's type fits the transform (a mask on a jsonb column is an error
// naming the field); dropped fields take part in the overlap checks.
func (m *Mapping) Validate() error {
	p := &problems{file: displayFile(m.File)}
	m.validate(p)
	return p.err()
}

type pathEntry struct {
	segs []string
	text string
	line int
	what string // "column \"x\"" or "exclusion"
}

func (m *Mapping) validate(p *problems) {
	if m.Version != CurrentVersion {
		p.addf(1, "version %d is not supported; this baasmigrate reads version %d", m.Version, CurrentVersion)
	}
	switch err := checkIdentifier(m.Schema); {
	case err != nil:
		p.addf(1, "schema: %v", err)
	case m.Schema == StateSchema:
		p.addf(1, "schema %q is where baasmigrate keeps its own state; choose another", m.Schema)
	case strings.HasPrefix(m.Schema, "pg_"):
		p.addf(1, "schema %q: names starting with pg_ are reserved by PostgreSQL", m.Schema)
	}
	byPattern := map[string]*Table{}
	byName := map[string]*Table{}
	for i, t := range m.Tables {
		if t == nil {
			p.addf(0, "tables[%d] is nil", i)
			continue
		}
		m.validateTable(t, p)
		if t.Collection != "" {
			if o, dup := byPattern[t.Collection]; dup {
				p.addf(t.Line, "table %q: collection pattern %q is already mapped by table %q (line %d)", t.Name, t.Collection, o.Name, o.Line)
			} else {
				byPattern[t.Collection] = t
			}
		}
		if t.Name != "" {
			if o, dup := byName[t.Name]; dup {
				p.addf(t.Line, "table %q (collection %q): the name is already used by the table for %q (line %d)", t.Name, t.Collection, o.Collection, o.Line)
			} else {
				byName[t.Name] = t
			}
		}
	}
}

func (m *Mapping) validateTable(t *Table, p *problems) {
	where := fmt.Sprintf("table %q (collection %q)", t.Name, t.Collection)
	colls, err := patternCollections(t.Collection)
	if err != nil {
		p.addf(t.Line, "%s: %v", where, err)
	}
	if err := checkIdentifier(t.Name); err != nil {
		p.addf(t.Line, "%s: table: %v", where, err)
	}
	// names: every column name of the table → what claimed it first.
	names := map[string]string{}
	claim := func(name, what string, line int) {
		if name == "" {
			return
		}
		if prev, dup := names[name]; dup {
			p.addf(line, "%s: %s is named %q, which is already the name of %s", where, what, name, prev)
			return
		}
		names[name] = what
	}
	for _, mc := range MetaColumns {
		names[mc] = "the meta column " + mc
	}
	if err == nil && len(t.ParentColumns) != len(colls)-1 {
		p.addf(t.Line, "%s: parent_columns has %d names but the pattern has %d document ID placeholders {}; list one column per ancestor document, outermost first", where, len(t.ParentColumns), len(colls)-1)
	}
	for i, pc := range t.ParentColumns {
		if err := checkIdentifier(pc); err != nil {
			p.addf(t.Line, "%s: parent_columns[%d]: %v", where, i, err)
		}
		claim(pc, fmt.Sprintf("parent column %d", i+1), t.Line)
	}
	if err := checkIdentifier(t.IDColumn); err != nil {
		p.addf(t.Line, "%s: id_column: %v", where, err)
	}
	claim(t.IDColumn, "the id column", t.Line)
	if n := len(t.Columns) + len(t.ParentColumns) + 1 + len(MetaColumns); n > maxTableColumns {
		p.addf(t.Line, "%s: %d columns in all, more than PostgreSQL's %d; map fewer fields (the rest go to %s)", where, n, maxTableColumns, ColOverflow)
	}
	var paths []pathEntry
	for i, c := range t.Columns {
		if c == nil {
			p.addf(t.Line, "%s: columns[%d] is nil", where, i)
			continue
		}
		cw := fmt.Sprintf("%s, column %q (field %s)", where, c.Name, c.Field)
		segs, ferr := ParseFieldPath(c.Field)
		if ferr != nil {
			p.addf(c.Line, "%s: field: %v", cw, ferr)
		} else {
			paths = append(paths, pathEntry{segs: segs, text: FormatFieldPath(segs), line: c.Line, what: fmt.Sprintf("column %q", c.Name)})
		}
		if err := checkIdentifier(c.Name); err != nil {
			p.addf(c.Line, "%s: column: %v", cw, err)
		} else {
			claim(c.Name, fmt.Sprintf("the column for field %s", c.Field), c.Line)
		}
		switch canon, terr := canonicalType(c.Type); {
		case c.Type == "":
			p.addf(c.Line, "%s: type is missing; use one of: %s", cw, strings.Join(SupportedTypes(), ", "))
		case terr != nil:
			p.addf(c.Line, "%s: %v", cw, terr)
		case canon != c.Type:
			p.addf(c.Line, "%s: write type %q as %q", cw, c.Type, canon)
		case c.Source != "" && !contains(typeSources[canon], c.Source):
			p.addf(c.Line, "%s: a %s column cannot hold source %q; allowed: %s", cw, canon, c.Source, strings.Join(typeSources[canon], ", "))
		}
		if c.Transform != nil {
			validateTransform(c, cw, p)
		}
		for k, n := range c.Seen {
			if n < 0 {
				p.addf(c.Line, "%s: seen count for %q is negative", cw, k)
			}
		}
	}
	for i, e := range t.Exclude {
		line := t.Line
		if i < len(t.excludeLines) {
			line = t.excludeLines[i]
		}
		segs, err := ParseFieldPath(e)
		if err != nil {
			p.addf(line, "%s: exclude[%d]: %v", where, i, err)
			continue
		}
		paths = append(paths, pathEntry{segs: segs, text: FormatFieldPath(segs), line: line, what: "an exclusion"})
	}
	for i, d := range t.Drop {
		segs, err := ParseFieldPath(d.Field)
		if err != nil {
			p.addf(d.Line, "%s: dropped field %d: %v", where, i+1, err)
			continue
		}
		paths = append(paths, pathEntry{segs: segs, text: FormatFieldPath(segs), line: d.Line, what: "a dropped field"})
	}
	checkOverlaps(paths, where, p)
}

// checkOverlaps reports every pair of mapped or excluded paths where one is
// equal to or inside the other.
func checkOverlaps(paths []pathEntry, where string, p *problems) {
	for i := range paths {
		for j := 0; j < i; j++ {
			a, b := paths[j], paths[i]
			switch {
			case a.text == b.text:
				p.addf(b.line, "%s: field %s is used by %s and again by %s (line %d); a field can be mapped or excluded only once", where, b.text, b.what, a.what, a.line)
			case isPrefix(a.segs, b.segs):
				p.addf(b.line, "%s: field %s (%s) lies inside field %s (%s, line %d); %s", where, b.text, b.what, a.text, a.what, a.line, overlapHint(a))
			case isPrefix(b.segs, a.segs):
				p.addf(b.line, "%s: field %s (%s) contains field %s (%s, line %d); %s", where, b.text, b.what, a.text, a.what, a.line, overlapHint(b))
			}
		}
	}
}

func overlapHint(outer pathEntry) string {
	if outer.what == "an exclusion" || outer.what == "a dropped field" {
		return "an excluded field is dropped whole, so nothing inside it can be mapped or excluded again"
	}
	return "a column holds its field's whole value; map either the whole field or the fields inside it (flattening), not both"
}

// isPrefix reports whether a is a proper prefix of b.
func isPrefix(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
