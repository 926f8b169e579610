package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// Documents loads document records into the tables of a mapping.
type Documents struct {
	mapping *mappings.Mapping
	tr      *transformers.Documents
	defs    map[*mappings.Table]*tableDef
	// placeholderSQL inserts missing-parent rows per table.
	placeholderSQL map[*mappings.Table]string
	order          []*mappings.Table // parents before children
	owner          Owner
}

var _ loaders.Sink = (*Documents)(nil)

// NewDocuments prepares loading into the tables of m (validated).
func NewDocuments(m *mappings.Mapping) (*Documents, error) {
	tr, err := transformers.NewDocuments(m)
	if err != nil {
		return nil, err
	}
	d := &Documents{mapping: m, tr: tr, defs: map[*mappings.Table]*tableDef{}, placeholderSQL: map[*mappings.Table]string{}, order: tablesByDepth(m)}
	for _, t := range m.Tables {
		var names, types, keyTypes []string
		for _, c := range documentColumns(t) {
			names = append(names, c.name)
			types = append(types, c.ddlType)
			if c.key {
				keyTypes = append(keyTypes, "text[]")
			}
		}
		name := pgx.Identifier{m.Schema, t.Name}
		d.defs[t] = newTableDef(name, names, types, t.KeyColumns())
		params := make([]string, len(keyTypes))
		for i := range keyTypes {
			params[i] = fmt.Sprintf("$%d::text[]", i+1)
		}
		d.placeholderSQL[t] = fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT *, true FROM unnest(%s) ON CONFLICT DO NOTHING",
			name.Sanitize(), quoteAll(t.KeyColumns()), pgx.Identifier{mappings.ColMissing}.Sanitize(), strings.Join(params, ", "))
	}
	return d, nil
}

// SetOwner makes Prepare claim the mapping's tables for o, refusing
// tables another source owns (see ClaimTables).
func (d *Documents) SetOwner(o Owner) { d.owner = o }

// Prepare claims the mapping's tables and creates its schema, tables,
// columns and foreign keys.
func (d *Documents) Prepare(ctx context.Context, db loaders.DB) error {
	return ApplySchema(ctx, db, d.mapping, d.owner)
}

// Write upserts the documents of one batch, table by table, parents first.
// Every ancestor of a document gets a placeholder row (_missing = true)
// unless it already has a row, so documents under parents that exist only
// through their subcollections load too, and foreign keys hold whatever
// order partitions commit in.
func (d *Documents) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(recs))}
	type pending struct {
		rows [][]any
		idx  []int
	}
	rows := map[*mappings.Table]*pending{}
	holders := map[*mappings.Table]map[string][]string{}
	for i, rec := range recs {
		row, err := d.tr.Transform(rec)
		if err != nil {
			out.Tables[i] = d.tr.TableLabel(rec.Key)
			out.Reject(i, err.Error())
			continue
		}
		out.Tables[i] = row.Table.Name
		for _, a := range d.tr.RowAncestors(row) {
			if holders[a.Table] == nil {
				holders[a.Table] = map[string][]string{}
			}
			holders[a.Table][strings.Join(a.Key, "\x00")] = a.Key
		}
		p := rows[row.Table]
		if p == nil {
			p = &pending{}
			rows[row.Table] = p
		}
		p.rows = append(p.rows, rowValues(row))
		p.idx = append(p.idx, i)
	}
	for _, t := range d.order {
		if p := rows[t]; p != nil {
			changed, rejects, err := d.defs[t].upsert(ctx, tx, p.rows)
			if err != nil {
				return out, err
			}
			out.AddChanged(t.Name, changed)
			for j, reason := range rejects {
				out.Reject(p.idx[j], reason)
			}
		}
		if keys := holders[t]; len(keys) > 0 {
			if err := d.insertPlaceholders(ctx, tx, t, keys); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// insertPlaceholders inserts missing-parent rows for keys that have no row,
// in key order so concurrent batches take row locks in the same order.
func (d *Documents) insertPlaceholders(ctx context.Context, tx pgx.Tx, t *mappings.Table, keys map[string][]string) error {
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	cols := make([][]string, len(t.KeyColumns()))
	for _, k := range sorted {
		for i, id := range keys[k] {
			cols[i] = append(cols[i], id)
		}
	}
	args := make([]any, len(cols))
	for i := range cols {
		args[i] = cols[i]
	}
	if _, err := tx.Exec(ctx, d.placeholderSQL[t], args...); err != nil {
		return fmt.Errorf("inserting %d missing-parent rows into %s: %w", len(keys), t.Name, err)
	}
	return nil
}

// rowValues lays a transformed row out in documentColumns order.
func rowValues(r transformers.Row) []any {
	vals := make([]any, 0, len(r.Key)+len(r.Values)+4)
	for _, k := range r.Key {
		vals = append(vals, k)
	}
	vals = append(vals, r.Values...)
	vals = append(vals, nullTime(r.CreateTime), nullTime(r.UpdateTime))
	if r.Overflow == nil {
		vals = append(vals, nil)
	} else {
		vals = append(vals, r.Overflow)
	}
	return append(vals, false)
}
