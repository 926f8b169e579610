package diff

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// ReferenceCheck is what plan and verify say about one reference column
// that declares `references:` (docs/mapping.md, "References and child
// tables").
type ReferenceCheck struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	// Target is the referenced table; ForeignKey the constraint's columns.
	Target     string   `json:"target"`
	ForeignKey []string `json:"foreign_key"`
	// Dangling counts the compared source documents whose reference points
	// to no compared document of the target's collection (absent, or in
	// another collection); migrate keeps their path and leaves the key
	// NULL. Samples lists a few "document → path".
	Dangling int64    `json:"dangling"`
	Samples  []string `json:"dangling_samples,omitempty"`
	// KeyMismatches counts target rows whose key columns differ from what
	// their path gives (verify only; a difference).
	KeyMismatches int64 `json:"key_mismatches"`
}

// refTracker collects, while documents are routed, the references of the
// reference columns and the paths of the documents they may point to.
type refTracker struct {
	mu      sync.Mutex
	refs    []mappings.Reference
	present map[string]bool           // document paths of referenced tables
	from    map[int]map[string]string // ref index → referring document → path it references
}

func newRefTracker(m *mappings.Mapping) *refTracker {
	refs := m.References()
	if len(refs) == 0 {
		return nil
	}
	return &refTracker{refs: refs, present: map[string]bool{}, from: map[int]map[string]string{}}
}

// observe notes a routed document: its path if a reference may point to
// its table, and its references.
func (r *refTracker) observe(path string, row transformers.Row) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ref := range r.refs {
		if ref.Target == row.Table {
			r.present[path] = true
		}
		if ref.Table != row.Table {
			continue
		}
		for j, c := range row.Table.Columns {
			if c != ref.Column {
				continue
			}
			p, ok := row.Values[j].(string)
			if !ok {
				continue // no reference, or not one the column holds
			}
			if r.from[i] == nil {
				r.from[i] = map[string]string{}
			}
			r.from[i][path] = p
		}
	}
}

// checks returns one ReferenceCheck per reference column, dangling counts
// from what was observed.
func (r *refTracker) checks() []ReferenceCheck {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ReferenceCheck
	for i, ref := range r.refs {
		c := ReferenceCheck{Table: ref.Table.Name, Column: ref.Column.Name, Target: ref.Target.Name, ForeignKey: ref.KeyColumns}
		docs := make([]string, 0, len(r.from[i]))
		for doc := range r.from[i] {
			docs = append(docs, doc)
		}
		sort.Strings(docs)
		for _, doc := range docs {
			p := r.from[i][doc]
			if r.present[p] && inPattern(p, ref.Target.Collection) {
				continue
			}
			c.Dangling++
			if len(c.Samples) < 10 {
				c.Samples = append(c.Samples, doc+" → "+p)
			}
		}
		out = append(out, c)
	}
	return out
}

func inPattern(path, pattern string) bool {
	p, _, err := mappings.PatternOf(path)
	return err == nil && p == pattern
}

// References returns what the comparison found about the mapping's
// reference columns; with verify, also the target rows whose reference
// key columns disagree with their path (postgres.ReferenceMismatches).
func (d *Documents) References(ctx context.Context, db loaders.DB, verify bool) ([]ReferenceCheck, error) {
	out := d.refs.checks()
	if !verify || len(out) == 0 {
		return out, nil
	}
	mm, err := postgres.ReferenceMismatches(ctx, db, d.m)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].KeyMismatches = mm[out[i].Table+"."+out[i].Column]
	}
	return out, nil
}

// referenceLines renders reference checks for the text report.
func referenceLines(checks []ReferenceCheck, verify bool) []string {
	var out []string
	for _, c := range checks {
		line := fmt.Sprintf("reference %s.%s → %s (foreign key %s): %d dangling", c.Table, c.Column, c.Target, strings.Join(c.ForeignKey, ", "), c.Dangling)
		if len(c.Samples) > 0 {
			line += " (" + strings.Join(c.Samples, "; ") + ")"
		}
		if verify {
			switch {
			case c.KeyMismatches < 0:
				line += "; the key columns are missing in the target"
			case c.KeyMismatches > 0:
				line += fmt.Sprintf("; %d rows' key columns differ from their path", c.KeyMismatches)
			}
		}
		out = append(out, line)
	}
	return out
}

// reconstructChildren puts back into fields the arrays of row's child
// tables, as verify reads them back from the target.
func reconstructChildren(tr *transformers.Documents, row transformers.Row, fields map[string]record.Value) error {
	if len(row.Children) == 0 {
		return nil
	}
	return tr.ReconstructChildren(row.Table, fields, childValues(row.Children))
}

// childValues turns child rows as transformed into child rows as read.
func childValues(children []transformers.ChildRows) [][]transformers.ChildRowValues {
	out := make([][]transformers.ChildRowValues, len(children))
	for i, c := range children {
		for _, r := range c.Rows {
			out[i] = append(out[i], transformers.ChildRowValues{Values: r.Values, Overflow: r.Overflow, Children: childValues(r.Children)})
		}
	}
	return out
}
