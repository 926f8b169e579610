package mappings

import (
	"fmt"
	"regexp"
	"strings"

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
