package diff

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

// Documents adapts documents and the tables of a mapping.
type Documents struct {
	m       *mappings.Mapping
	order   record.KeyOrder
	tr      *transformers.Documents
	byName  map[string]*mappings.Table
	streams map[string][]string // root collection → tables under it
	cursors int
	refs    *refTracker // nil without reference columns
	// fields are the mapping's field transforms, applied to each source
	// document before it is compared; tokens looks tokenized values up.
	fields    *pii.Set
	tokens    pii.Tokenizer
	tokensCtx context.Context
	lookup    bool // the source delivers no key order (LookUpByKey)
}

var (
	_ Adapter      = (*Documents)(nil)
	_ KeyComparer  = (*Documents)(nil)
	_ TargetLookup = (*Documents)(nil)
	_ KeyLookup    = (*Documents)(nil)
	_ KeyRouter    = (*Documents)(nil)
)

// NewDocuments prepares comparing documents through mapping m. order is
// the source's order of document IDs (extractors.KeyOrderOf; nil for
// record.ByteOrder): the source delivers each table's documents in it, key
// segment by key segment, and the table is read in it. With roots, only the
// tables under those root collections are compared (the source was read
// with --collections).
func NewDocuments(m *mappings.Mapping, order record.KeyOrder, roots ...string) (*Documents, error) {
	tr, err := transformers.NewDocuments(m)
	if err != nil {
		return nil, err
	}
	if order == nil {
		order = record.ByteOrder
	}
	fields, err := pii.Compile(m, nil)
	if err != nil {
		return nil, err
	}
	d := &Documents{m: m, order: order, tr: tr, byName: map[string]*mappings.Table{}, streams: map[string][]string{}, fields: fields, refs: newRefTracker(m)}
	for _, t := range m.Tables {
		root, _, _ := strings.Cut(t.Collection, "/")
		if len(roots) > 0 && !slices.Contains(roots, root) {
			continue
		}
		d.byName[t.Name] = t
		d.streams[root] = append(d.streams[root], t.Name)
	}
	return d, nil
}

// LookUpByKey makes the comparison look target rows up by key, batch by
// batch, for a source whose records come in no key order
// (extractors.Unordered), instead of merging.
func (d *Documents) LookUpByKey() { d.lookup = true }

// Ordered reports whether the source's records come in key order: true
// unless LookUpByKey was called (see KeyLookup).
func (d *Documents) Ordered(string) bool { return !d.lookup }

// Kind is "document".
func (d *Documents) Kind() string { return string(record.KindDocument) }

// Tables lists the mapping's tables.
func (d *Documents) Tables() []string {
	out := make([]string, 0, len(d.byName))
	for name := range d.byName {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// CompareKeys orders two keys of a table (the ancestor document IDs, then
// the document's own) ID by ID in the source's order of IDs, the shorter
// first when one is a prefix of the other. The source delivers documents
// in that order and postgres.OpenDocumentCursor reads rows in it.
func (d *Documents) CompareKeys(a, b []string) int {
	return slices.CompareFunc(a, b, d.order.Compare)
}

// StreamTables lists the tables of the collections under a root collection.
func (d *Documents) StreamTables(stream string) []string { return d.streams[stream] }

// SetTokens makes Route look tokenized values up with tok (a lookup-only
// pii.Vault.Reader), under ctx. Without it a tokenized value makes its
// document a reject of the comparison.
func (d *Documents) SetTokens(ctx context.Context, tok pii.Tokenizer) {
	d.tokensCtx, d.tokens = ctx, tok
}

// Route transforms a document as migrate would — field transforms first,
// so what is compared is the transformed value, never the clear one — and
// takes the row back to fields, so that what is compared is exactly what
// the target should hold.
func (d *Documents) Route(rec record.Record) Routed {
	if !d.fields.Empty() {
		ctx := d.tokensCtx
		if ctx == nil {
			ctx = context.Background()
		}
		out, errs := d.fields.Apply(ctx, []record.Record{rec}, d.tokens)
		if errs != nil && errs[0] != nil {
			return Routed{Table: d.tr.TableLabel(rec.Key), Reject: errs[0].Error()}
		}
		rec = out[0]
	}
	row, err := d.tr.Transform(rec)
	if err != nil {
		return Routed{Table: d.tr.TableLabel(rec.Key), Reject: err.Error()}
	}
	d.refs.observe(rec.Key, row)
	_, fields, err := d.tr.Reconstruct(row.Table, row.Key, row.Values, row.Overflow)
	if err != nil {
		return Routed{Table: row.Table.Name, Reject: fmt.Sprintf("the mapping cannot represent this document: %v", err)}
	}
	if err := reconstructChildren(d.tr, row, fields); err != nil {
		return Routed{Table: row.Table.Name, Reject: fmt.Sprintf("the mapping cannot represent this document: %v", err)}
	}
	r := Routed{Table: row.Table.Name, Item: Item{Key: row.Key, Label: rec.Key, Fields: withTimes(fields, rec.CreateTime, rec.UpdateTime)}}
	if len(row.Overflow) > 0 {
		if of, err := record.UnmarshalJSONFields(row.Overflow); err == nil {
			r.Overflow = record.SortedKeys(of)
		}
	}
	return r
}

// Open opens a cursor over a table, or returns nil when it does not exist.
func (d *Documents) Open(ctx context.Context, tx pgx.Tx, table string) (TargetCursor, error) {
	t, err := d.existing(ctx, tx, table)
	if t == nil {
		return nil, err
	}
	d.cursors++
	cur, err := postgres.OpenDocumentCursor(ctx, tx, fmt.Sprintf("diff_%d", d.cursors), d.m, d.tr, t, d.order)
	if err != nil {
		return nil, err
	}
	return documentCursor{cur}, nil
}

// existing returns the compared table named table, or nil when there is
// none or the target does not have it yet.
func (d *Documents) existing(ctx context.Context, tx pgx.Tx, table string) (*mappings.Table, error) {
	t := d.byName[table]
	if t == nil {
		return nil, nil
	}
	ok, err := postgres.TableExists(ctx, tx, d.m.Schema, t.Name)
	if err != nil || !ok {
		return nil, err
	}
	return t, nil
}

type documentCursor struct{ c *postgres.DocumentCursor }

func (c documentCursor) Next(ctx context.Context) (Item, bool, error) {
	row, ok, err := c.c.Next(ctx)
	if err != nil || !ok {
		return Item{}, ok, err
	}
	return documentItem(row), true, nil
}

// documentItem is the compared item of a row read back.
func documentItem(row postgres.DocumentRow) Item {
	return Item{Key: row.Key, Label: row.Path, Fields: withTimes(row.Fields, row.CreateTime, row.UpdateTime), Placeholder: row.Missing, Problem: row.Problem}
}

// Lookup reads the rows of keys in table (see TargetLookup).
func (d *Documents) Lookup(ctx context.Context, tx pgx.Tx, table string, keys [][]string) (map[string]Item, error) {
	out := map[string]Item{}
	if len(keys) == 0 {
		return out, nil
	}
	t, err := d.existing(ctx, tx, table)
	if t == nil {
		return out, err
	}
	err = postgres.LookupDocuments(ctx, tx, d.m, d.tr, t, keys, func(row postgres.DocumentRow) error {
		out[KeyString(row.Key)] = documentItem(row)
		return nil
	})
	return out, err
}

// Count returns the number of documents in table (see TargetLookup).
func (d *Documents) Count(ctx context.Context, tx pgx.Tx, table string) (int64, error) {
	t := d.byName[table]
	if t == nil {
		return 0, nil
	}
	return postgres.CountDocuments(ctx, tx, d.m, t)
}

// RouteKey places a document path: the table of its collection pattern
// (among the compared ones) and its key, the ancestor IDs then its own.
func (d *Documents) RouteKey(path string) (string, []string, bool) {
	pattern, ids, err := mappings.PatternOf(path)
	if err != nil {
		return "", nil, false
	}
	t := d.m.TableFor(pattern)
	if t == nil || d.byName[t.Name] != t {
		return "", nil, false
	}
	for _, id := range ids {
		if record.TextProblem(id) != "" {
			return "", nil, false
		}
	}
	return t.Name, ids, true
}

// Names of the document times in compared content. Field names of the
// form __x__ are reserved by document sources (docs/sources.md), so no
// field can collide with them.
const (
	createTimeField = "__create_time__"
	updateTimeField = "__update_time__"
)

// withTimes adds the documents' create and update times to the compared
// content.
func withTimes(fields map[string]record.Value, create, update time.Time) map[string]record.Value {
	out := make(map[string]record.Value, len(fields)+2)
	for k, v := range fields {
		out[k] = v
	}
	if !create.IsZero() {
		out[createTimeField] = record.Timestamp(create)
	}
	if !update.IsZero() {
		out[updateTimeField] = record.Timestamp(update)
	}
	return out
}
