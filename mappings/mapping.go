// Package mappings holds the mapping format: the reviewable, committable
// YAML file that says how a source's documents become PostgreSQL rows (one
// table per collection path pattern, which fields become which typed
// columns, what is excluded), its validation, and the schema inference that
// writes a first mapping from a scan of the documents.
//
// docs/mapping.md describes the format for users; the rules it states are
// implemented here and in package transformers.
package mappings

// The meta columns every table has besides its key and mapped columns.
const (
	// ColCreateTime holds the source's create time (timestamptz).
	ColCreateTime = "_create_time"
	// ColUpdateTime holds the source's update time (timestamptz).
	ColUpdateTime = "_update_time"
	// ColOverflow holds, as a typed JSON object (jsonb), every field and
	// value no column captures; NULL when there is none.
	ColOverflow = "_overflow"
	// ColMissing is true for placeholder rows of documents that exist only
	// as the parent of subcollection documents (boolean).
	ColMissing = "_missing"
)

// MetaColumns lists the meta columns in the order the loader creates them.
var MetaColumns = []string{ColCreateTime, ColUpdateTime, ColOverflow, ColMissing}

// CurrentVersion is the mapping format version this package reads and writes.
const CurrentVersion = 1

// DefaultSchema is the PostgreSQL schema tables go to when a mapping names
// none.
const DefaultSchema = "public"

// StateSchema is the schema baasmigrate keeps its own state in; mappings
// may not use it.
const StateSchema = "baasmigrate"

// Mapping says how the documents of one source database become rows.
type Mapping struct {
	// Version is the format version, CurrentVersion.
	Version int
	// Schema is the target PostgreSQL schema, DefaultSchema by default.
	Schema string
	// Tables holds one table per collection pattern. Inference writes them
	// sorted by Collection, which puts every table after its parent.
	Tables []*Table
	// File is the file the mapping was parsed from ("" when built in
	// code); validation messages start with it. Not part of the YAML.
	File string
}

// Table maps the documents of one collection pattern to one table.
type Table struct {
	// Collection is the collection pattern, e.g. "users/{}/orders".
	Collection string
	// Name is the table name in Schema.
	Name string
	// IDColumn is the column holding the document ID.
	IDColumn string
	// ParentColumns hold the IDs of the ancestor documents, one per "{}" in
	// Collection, outermost first. The primary key is ParentColumns then
	// IDColumn.
	ParentColumns []string
	// Columns are the mapped columns, in table order.
	Columns []*Column
	// Exclude lists field paths deliberately not migrated.
	Exclude []string
	// Drop lists fields removed before anything else sees the document:
	// unlike Exclude, a rejected document's stored record lacks them too.
	// YAML: columns entries {field: PATH, transform: drop}, written after
	// the columns.
	Drop []DropField
	// Documents is informational: how many documents inference saw (0 when
	// the pattern was seen only as the parent of subcollection documents).
	Documents int64
	// Line is the line of the file the table starts at (0 if built in code).
	Line int

	excludeLines []int // line of each Exclude entry, when parsed
}

// Column maps one field path to one typed column.
type Column struct {
	// Field is the source field path (see ParseFieldPath).
	Field string
	// Name is the column name.
	Name string
	// Type is the PostgreSQL type as written in DDL, in the canonical
	// spelling of SupportedTypes, e.g. "text", "double precision",
	// "bigint[]".
	Type string
	// Source says which source values the column holds and so what they
	// become when read back (AllowedSources(Type)); "" means the type's
	// default. Other values of the field go to the overflow column.
	Source string
	// Seen is inference evidence: source type name → number of documents
	// with such a value. Informational only.
	Seen map[string]int64
	// Transform, when set, replaces the field's value before it is stored,
	// compared or kept anywhere (see Transform); nil keeps it as it is.
	Transform *Transform
	// Note is inference's remark on the column (why its name differs from
	// the field's), written as a comment after its name. Informational.
	Note string
	// Line is the line of the file the column starts at (0 if built in code).
	Line int
}

// TableFor returns the table for a collection pattern, or nil.
func (m *Mapping) TableFor(pattern string) *Table {
	for _, t := range m.Tables {
		if t.Collection == pattern {
			return t
		}
	}
	return nil
}

// Parent returns the table of the collection pattern holding the parent
// documents of t's documents, or nil when t is a root collection or the
// parent pattern has no table.
func (m *Mapping) Parent(t *Table) *Table {
	p := parentPattern(t.Collection)
	if p == "" {
		return nil
	}
	return m.TableFor(p)
}

// KeyColumns returns t's primary key columns: ParentColumns then IDColumn.
func (t *Table) KeyColumns() []string {
	return append(append([]string(nil), t.ParentColumns...), t.IDColumn)
}
