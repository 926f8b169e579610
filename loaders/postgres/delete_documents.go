package postgres

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// keySet is a set of row keys of one table, by their IDs joined with NUL
// (which no ID holds), so that sorting the joined keys sorts the keys
// column by column in byte order, the order of the key columns' "C"
// collation.
type keySet map[string][]string

func (s keySet) add(key []string) { s[strings.Join(key, "\x00")] = key }

// columns returns the keys sorted, as one text array per key column, for
// unnest.
func (s keySet) columns(n int) []any {
	sorted := make([]string, 0, len(s))
	for k := range s {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	cols := make([][]string, n)
	for _, k := range sorted {
		for i, id := range s[k] {
			cols[i] = append(cols[i], id)
		}
	}
	args := make([]any, n)
	for i := range cols {
		args[i] = cols[i]
	}
	return args
}

// keyIn is the condition "the row's key is one of the unnested arrays
// $1..$n" for table t's key columns, qualified with alias.
func keyIn(t *mappings.Table, alias string) string {
	cols := make([]string, len(t.KeyColumns()))
	params := make([]string, len(cols))
	for i, c := range t.KeyColumns() {
		cols[i] = alias + "." + pgx.Identifier{c}.Sanitize()
		params[i] = fmt.Sprintf("$%d::text[]", i+1)
	}
	return fmt.Sprintf("(%s) IN (SELECT * FROM unnest(%s))", strings.Join(cols, ", "), strings.Join(params, ", "))
}

// descendants lists the tables whose documents are under documents of t,
// at any depth (a subcollection's table, or a deeper one's when the
// collections between have no table).
func (d *Documents) descendants(t *mappings.Table) []*mappings.Table {
	var out []*mappings.Table
	for _, c := range d.order {
		if strings.HasPrefix(c.Collection, t.Collection+"/{}/") {
			out = append(out, c)
		}
	}
	return out
}

// hasChildren is the condition "a row of t (aliased alias) has a row under
// it in a descendant table": its key is a prefix of theirs.
func (d *Documents) hasChildren(t *mappings.Table, alias string) string {
	var ors []string
	n := len(t.KeyColumns())
	for _, c := range d.descendants(t) {
		var eq []string
		for i, k := range c.KeyColumns()[:n] {
			eq = append(eq, fmt.Sprintf("c.%s = %s.%s", pgx.Identifier{k}.Sanitize(), alias, pgx.Identifier{t.KeyColumns()[i]}.Sanitize()))
		}
		ors = append(ors, fmt.Sprintf("EXISTS (SELECT 1 FROM %s c WHERE %s)",
			pgx.Identifier{d.mapping.Schema, c.Name}.Sanitize(), strings.Join(eq, " AND ")))
	}
	if len(ors) == 0 {
		return "false"
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// Delete removes the documents at the paths keys (see loaders.Deleter).
//
// Hard (soft false): a document with rows under it in a table of a
// subcollection becomes a placeholder — every field column, both times and
// the overflow NULL, _missing true — exactly the row Write gives a parent
// that exists only through its subcollections; any other is deleted. Then
// every placeholder above a deleted row that has no row under it any more
// is deleted too, up to the root. Documents are handled deepest table
// first, so a batch deleting a parent and all its children deletes both.
//
// Soft: the row keeps its fields and gets loaders.DeletedAtColumn set to
// at (a row already marked keeps its first time); nothing else changes —
// a parent with children is marked, not emptied, and placeholders stay,
// as the rows under them do. Readers treat a marked row as absent (as
// they treat placeholders), and Write of the document clears the mark.
// Soft deletes need the column: SetSoftDeletes(true) before Prepare.
//
// A path that is no document path, or whose collection has no table, is
// rejected with the reason; it never fails the batch. Rows are locked
// table by table, parents first, in key order, as Write takes them, so
// that concurrent batches do not deadlock.
func (d *Documents) Delete(ctx context.Context, tx pgx.Tx, keys []string, at time.Time, soft bool) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(keys))}
	if err := d.detectMarked(ctx, tx); err != nil {
		return out, err
	}
	explicit := map[*mappings.Table]keySet{}
	ancestors := map[*mappings.Table]keySet{}
	add := func(sets map[*mappings.Table]keySet, t *mappings.Table, key []string) {
		if sets[t] == nil {
			sets[t] = keySet{}
		}
		sets[t].add(key)
	}
	for i, k := range keys {
		row, err := d.tr.Transform(record.Record{Kind: record.KindDocument, Key: k})
		if err != nil {
			out.Tables[i] = d.tr.TableLabel(k)
			out.Reject(i, "cannot delete the document: "+err.Error())
			continue
		}
		out.Tables[i] = row.Table.Name
		if soft && !d.marked[row.Table] {
			return out, fmt.Errorf("soft-deleting documents of %s: the table has no %s column; call SetSoftDeletes(true) before Prepare",
				pgx.Identifier{d.mapping.Schema, row.Table.Name}.Sanitize(), loaders.DeletedAtColumn)
		}
		add(explicit, row.Table, row.Key)
		if !soft {
			for _, a := range d.tr.RowAncestors(row) {
				add(ancestors, a.Table, a.Key)
			}
		}
	}
	// Lock every row this may change, parents first, in key order: the
	// rows of the keys, and the placeholders above them (not the
	// documents above them, which no delete removes, so that writes under
	// them go on).
	for _, t := range d.order {
		set := keySet{}
		for k, v := range ancestors[t] {
			set[k] = v
		}
		for k, v := range explicit[t] {
			set[k] = v
		}
		if len(set) == 0 {
			continue
		}
		n := len(t.KeyColumns())
		args := set.columns(n)
		var own []bool
		for i := range args[0].([]string) {
			key := make([]string, n)
			for j := range key {
				key[j] = args[j].([]string)[i]
			}
			_, ok := explicit[t][strings.Join(key, "\x00")]
			own = append(own, ok)
		}
		var on, ucols, by []string
		for i, k := range t.KeyColumns() {
			by = append(by, "t."+pgx.Identifier{k}.Sanitize())
			on = append(on, fmt.Sprintf("t.%s = u.k%d", pgx.Identifier{k}.Sanitize(), i))
			ucols = append(ucols, fmt.Sprintf("k%d", i))
		}
		params := make([]string, n)
		for i := range params {
			params[i] = fmt.Sprintf("$%d::text[]", i+1)
		}
		sql := fmt.Sprintf("SELECT 1 FROM %s t JOIN unnest(%s, $%d::bool[]) AS u(%s, own) ON %s WHERE u.own OR t.%s ORDER BY %s FOR UPDATE OF t",
			d.defs[t].Name.Sanitize(), strings.Join(params, ", "), n+1, strings.Join(ucols, ", "), strings.Join(on, " AND "),
			pgx.Identifier{mappings.ColMissing}.Sanitize(), strings.Join(by, ", "))
		if _, err := tx.Exec(ctx, sql, append(args, own)...); err != nil {
			return out, fmt.Errorf("locking %d rows of %s to delete: %w", len(set), t.Name, err)
		}
	}
	order := slices.Clone(d.order)
	slices.Reverse(order) // children first
	for _, t := range order {
		name := d.defs[t].Name.Sanitize()
		n := len(t.KeyColumns())
		exec := func(what, sql string, set keySet, args ...any) error {
			tag, err := tx.Exec(ctx, sql, append(set.columns(n), args...)...)
			if err != nil {
				return fmt.Errorf("%s %d documents of %s: %w", what, len(set), t.Name, err)
			}
			if tag.RowsAffected() > 0 {
				out.AddChanged(t.Name, tag.RowsAffected())
			}
			return nil
		}
		mark := pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()
		missing := pgx.Identifier{mappings.ColMissing}.Sanitize()
		if set := explicit[t]; len(set) > 0 {
			if soft {
				sql := fmt.Sprintf("UPDATE %s t SET %s = $%d::timestamptz WHERE %s AND t.%s IS NULL AND NOT t.%s",
					name, mark, n+1, keyIn(t, "t"), mark, missing)
				if err := exec("marking deleted", sql, set, at); err != nil {
					return out, err
				}
				continue
			}
			var empty []string
			for _, c := range t.Columns {
				empty = append(empty, pgx.Identifier{c.Name}.Sanitize()+" = NULL")
			}
			for _, c := range []string{mappings.ColCreateTime, mappings.ColUpdateTime, mappings.ColOverflow} {
				empty = append(empty, pgx.Identifier{c}.Sanitize()+" = NULL")
			}
			if d.marked[t] {
				empty = append(empty, mark+" = NULL")
			}
			empty = append(empty, missing+" = true")
			sql := fmt.Sprintf("UPDATE %s t SET %s WHERE %s AND NOT t.%s AND %s",
				name, strings.Join(empty, ", "), keyIn(t, "t"), missing, d.hasChildren(t, "t"))
			if err := exec("emptying (into placeholders)", sql, set); err != nil {
				return out, err
			}
			for _, q := range relationsOnDelete(d.mapping, t) {
				if _, err := tx.Exec(ctx, q, set.columns(n)...); err != nil {
					return out, fmt.Errorf("emptying the child rows and reference keys of %d deleted documents of %s: %w", len(set), t.Name, err)
				}
			}
			sql = fmt.Sprintf("DELETE FROM %s t WHERE %s AND NOT %s", name, keyIn(t, "t"), d.hasChildren(t, "t"))
			if err := exec("deleting", sql, set); err != nil {
				return out, err
			}
		}
		if set := ancestors[t]; len(set) > 0 {
			sql := fmt.Sprintf("DELETE FROM %s t WHERE %s AND t.%s AND NOT %s", name, keyIn(t, "t"), missing, d.hasChildren(t, "t"))
			if err := exec("deleting placeholders left without children among", sql, set); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
