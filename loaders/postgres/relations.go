package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// References → foreign keys (docs/mapping.md, "References and child
// tables"). A reference column declaring `references:` keeps its path as
// text; its table also gets the referenced table's key columns
// (mappings.RefKeyColumns), which the loader sets — in the transaction of
// every batch, after the batch's rows — to the key of the referenced
// document when it has a row (not a placeholder) and to NULL otherwise.
// So the foreign key always holds, whenever it is built: a dangling
// reference (the document is absent, or lies in another collection than
// declared) keeps its path and NULL key columns. The foreign key is
// ON DELETE SET NULL: deleting a referenced document turns its references
// into dangling ones instead of failing.
//
// A run that finishes (Finish) links every row again (a referenced
// document loaded after its referrer), records the dangling references in
// danglingTable, and builds the foreign keys it left to its end.

// danglingTable lists, per reference column, the rows whose reference has
// no row to link to; Finish rewrites a column's entries.
const danglingTable = StateSchema + ".dangling_references"

var danglingDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + StateSchema,
	`CREATE TABLE IF NOT EXISTS ` + danglingTable + ` (
		table_schema text   NOT NULL,
		table_name   text   NOT NULL,
		column_name  text   NOT NULL,
		row_key      text[] NOT NULL,
		path         text   NOT NULL,
		reason       text   NOT NULL,
		PRIMARY KEY (table_schema, table_name, column_name, row_key)
	)`,
	`REVOKE ALL ON ` + danglingTable + ` FROM PUBLIC`,
}

// Reasons a reference dangles, as danglingTable records them.
const (
	DanglingAbsent = "the referenced document is absent"
	DanglingOther  = "the reference points into another collection"
)

// refConstraint names the foreign key of a reference column.
func refConstraint(r mappings.Reference) string {
	return constraintName(r.Table.Name, r.Column.Name+"_ref_fkey")
}

// refLookupSQL selects, for the rows of r.Table (with byKey, only those
// whose keys are given as text[] parameters, one per key column), their
// key (p1…), their reference key columns as stored (c1…) and as they
// should be (v1…): the key of the referenced document's row, or NULLs when
// the path is NULL, lies in another collection or has no row (or only a
// placeholder).
func refLookupSQL(m *mappings.Mapping, r mappings.Reference, byKey bool) string {
	var sel, tcols, picks, vs []string
	for i, k := range r.Table.KeyColumns() {
		sel = append(sel, fmt.Sprintf("y.%s AS p%d", pgx.Identifier{k}.Sanitize(), i+1))
	}
	for i, k := range r.KeyColumns {
		sel = append(sel, fmt.Sprintf("y.%s AS c%d", pgx.Identifier{k}.Sanitize(), i+1))
	}
	for i, k := range r.Target.KeyColumns() {
		tcols = append(tcols, "r."+pgx.Identifier{k}.Sanitize())
		picks = append(picks, fmt.Sprintf("m[%d]", i+1))
		vs = append(vs, fmt.Sprintf("v%d", i+1))
		sel = append(sel, fmt.Sprintf("s.v%d", i+1))
	}
	q := fmt.Sprintf("SELECT %s FROM %s AS y LEFT JOIN LATERAL (SELECT %s FROM %s AS r WHERE (%s) = (SELECT %s FROM regexp_match(y.%s, %s) AS m) AND NOT r.%s) AS s(%s) ON true",
		strings.Join(sel, ", "), pgx.Identifier{m.Schema, r.Table.Name}.Sanitize(),
		strings.Join(tcols, ", "), pgx.Identifier{m.Schema, r.Target.Name}.Sanitize(),
		strings.Join(tcols, ", "), strings.Join(picks, ", "),
		pgx.Identifier{r.Column.Name}.Sanitize(), sqlLiteral(mappings.PathRegexp(r.Target.Collection)),
		pgx.Identifier{mappings.ColMissing}.Sanitize(), strings.Join(vs, ", "))
	if byKey {
		q += " WHERE " + keyIn(r.Table, "y")
	}
	return q
}

// refDiffers is the condition, on refLookupSQL's columns, that a row's
// reference key columns are not what its path gives.
func refDiffers(r mappings.Reference) string {
	var cs, vs []string
	for i := range r.KeyColumns {
		cs = append(cs, fmt.Sprintf("l.c%d", i+1))
		vs = append(vs, fmt.Sprintf("l.v%d", i+1))
	}
	return fmt.Sprintf("ROW(%s) IS DISTINCT FROM ROW(%s)", strings.Join(cs, ", "), strings.Join(vs, ", "))
}

// refLinkSQL sets r's key columns of rows of r.Table to what their path
// gives, where they differ (refLookupSQL, with the same parameters).
func refLinkSQL(m *mappings.Mapping, r mappings.Reference, byKey bool) string {
	var set, join []string
	for i, k := range r.KeyColumns {
		set = append(set, fmt.Sprintf("%s = l.v%d", pgx.Identifier{k}.Sanitize(), i+1))
	}
	for i, k := range r.Table.KeyColumns() {
		join = append(join, fmt.Sprintf("x.%s = l.p%d", pgx.Identifier{k}.Sanitize(), i+1))
	}
	return fmt.Sprintf("UPDATE %s AS x SET %s FROM (%s) AS l WHERE %s AND %s",
		pgx.Identifier{m.Schema, r.Table.Name}.Sanitize(), strings.Join(set, ", "), refLookupSQL(m, r, byKey),
		strings.Join(join, " AND "), refDiffers(r))
}

// refColumnStatements returns the DDL that gives the mapping's tables the
// key columns of their references and, unless deferKeys, their foreign
// keys (with deferKeys, FinishReferences builds them).
func refColumnStatements(ctx context.Context, db loaders.DB, m *mappings.Mapping, deferKeys bool) ([]Statement, error) {
	var out []Statement
	for _, r := range m.References() {
		name := pgx.Identifier{m.Schema, r.Table.Name}.Sanitize()
		cols, err := existingColumns(ctx, db, m.Schema, r.Table.Name)
		if err != nil {
			return nil, err
		}
		for _, k := range r.KeyColumns {
			if _, ok := cols[k]; ok {
				continue
			}
			out = append(out, Statement{
				What: fmt.Sprintf("add column %s to %s (key of the document %s references in %s)", k, name, r.Column.Name, r.Target.Name),
				SQL:  fmt.Sprintf(`ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s text COLLATE "C"`, name, pgx.Identifier{k}.Sanitize()),
			})
		}
		if deferKeys {
			continue // Finish builds it, after linking every row
		}
		has := false
		if cols != nil {
			if has, err = constraintExists(ctx, db, m.Schema, r.Table.Name, refConstraint(r)); err != nil {
				return nil, err
			}
		}
		if !has {
			out = append(out, refKeyStatement(m, r))
		}
	}
	return out, nil
}

// refKeyStatement creates r's foreign key.
func refKeyStatement(m *mappings.Mapping, r mappings.Reference) Statement {
	name := pgx.Identifier{m.Schema, r.Table.Name}.Sanitize()
	return Statement{
		What: fmt.Sprintf("link %s.%s to %s with a foreign key (%s); dangling references keep their path, with the key NULL",
			name, r.Column.Name, r.Target.Name, strings.Join(r.KeyColumns, ", ")),
		SQL: fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE SET NULL",
			name, pgx.Identifier{refConstraint(r)}.Sanitize(), quoteAll(r.KeyColumns),
			pgx.Identifier{m.Schema, r.Target.Name}.Sanitize(), quoteAll(r.Target.KeyColumns())),
	}
}

func constraintExists(ctx context.Context, db loaders.DB, schema, table, name string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = $2 AND c.conname = $3)`,
		schema, table, name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking up the constraint %s of %s.%s: %w", name, schema, table, err)
	}
	return ok, nil
}

// refLink is a reference and the statement linking it for rows given by
// key (refLinkSQL with byKey).
type refLink struct {
	ref mappings.Reference
	sql string
}

// refLinks builds the per-batch link statements of m's reference columns,
// per table (tables without references have none).
func refLinks(m *mappings.Mapping) map[*mappings.Table][]refLink {
	out := map[*mappings.Table][]refLink{}
	for _, r := range m.References() {
		out[r.Table] = append(out[r.Table], refLink{ref: r, sql: refLinkSQL(m, r, true)})
	}
	return out
}

// linkReferences sets the reference key columns of the rows a batch wrote
// (keys per table, each a row of key values), after all of them, so a
// reference to a document of the same batch links.
func (d *Documents) linkReferences(ctx context.Context, tx pgx.Tx, keys map[*mappings.Table][][]any) error {
	// Every link goes in one round trip, in order: this runs for every
	// batch.
	b := &pgx.Batch{}
	var queued []refLink
	for _, t := range d.order {
		links := d.links[t]
		if len(links) == 0 || len(keys[t]) == 0 {
			continue
		}
		n := len(t.KeyColumns())
		args := make([]any, n)
		for i := range args {
			col := make([]string, len(keys[t]))
			for j, row := range keys[t] {
				col[j] = row[i].(string)
			}
			args[i] = col
		}
		for _, l := range links {
			b.Queue(l.sql, args...)
			queued = append(queued, l)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, b)
	for _, l := range queued {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("linking the references of %s.%s to %s: %w", l.ref.Table.Name, l.ref.Column.Name, l.ref.Target.Name, err)
		}
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("linking the references of %d reference columns: %w", len(queued), err)
	}
	return nil
}

// FinishReferences links every reference of m's tables again, records the
// dangling ones in baasmigrate.dangling_references (replacing what an
// earlier run recorded for those columns), and builds the foreign keys
// that do not exist yet, in one transaction. It returns the number of
// dangling references per "table.column". Idempotent.
func FinishReferences(ctx context.Context, db loaders.DB, m *mappings.Mapping) (map[string]int64, error) {
	refs := m.References()
	if len(refs) == 0 {
		return nil, nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("linking references after the load: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
		return nil, fmt.Errorf("linking references after the load: %w", err)
	}
	for _, s := range danglingDDL {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("creating %s: %w", danglingTable, err)
		}
	}
	counts := map[string]int64{}
	for _, r := range refs {
		name := pgx.Identifier{m.Schema, r.Table.Name}.Sanitize()
		if _, err := tx.Exec(ctx, refLinkSQL(m, r, false)); err != nil {
			return nil, fmt.Errorf("linking the references of %s.%s to %s: %w", r.Table.Name, r.Column.Name, r.Target.Name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+danglingTable+` WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`,
			m.Schema, r.Table.Name, r.Column.Name); err != nil {
			return nil, fmt.Errorf("clearing the dangling references of %s.%s: %w", r.Table.Name, r.Column.Name, err)
		}
		var keyCols []string
		for _, k := range r.Table.KeyColumns() {
			keyCols = append(keyCols, "x."+pgx.Identifier{k}.Sanitize())
		}
		col := "x." + pgx.Identifier{r.Column.Name}.Sanitize()
		tag, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (table_schema, table_name, column_name, row_key, path, reason)
			SELECT $1, $2, $3, ARRAY[%s], %s, CASE WHEN %s ~ $4 THEN $5 ELSE $6 END
			FROM %s AS x WHERE %s IS NOT NULL AND x.%s IS NULL`, danglingTable,
			strings.Join(keyCols, ", "), col, col, name, col, pgx.Identifier{r.KeyColumns[0]}.Sanitize()),
			m.Schema, r.Table.Name, r.Column.Name, mappings.PathRegexp(r.Target.Collection), DanglingAbsent, DanglingOther)
		if err != nil {
			return nil, fmt.Errorf("recording the dangling references of %s.%s: %w", r.Table.Name, r.Column.Name, err)
		}
		counts[r.Table.Name+"."+r.Column.Name] = tag.RowsAffected()
		has, err := constraintExists(ctx, tx, m.Schema, r.Table.Name, refConstraint(r))
		if err != nil {
			return nil, err
		}
		if !has {
			s := refKeyStatement(m, r)
			if _, err := tx.Exec(ctx, s.SQL); err != nil {
				return nil, fmt.Errorf("building the foreign key of %s.%s after the load: %w", r.Table.Name, r.Column.Name, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("linking references after the load: %w", err)
	}
	return counts, nil
}

// DanglingReference is one reference recorded as dangling.
type DanglingReference struct {
	Table, Column string
	Key           []string
	Path, Reason  string
}

// DanglingReferences reads what the last finished run recorded for m's
// reference columns (none when nothing was recorded).
func DanglingReferences(ctx context.Context, db loaders.DB, m *mappings.Mapping) ([]DanglingReference, error) {
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, danglingTable).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking up %s: %w", danglingTable, err)
	}
	if !exists {
		return nil, nil
	}
	var out []DanglingReference
	for _, r := range m.References() {
		rows, err := db.Query(ctx, `SELECT row_key, path, reason FROM `+danglingTable+`
			WHERE table_schema = $1 AND table_name = $2 AND column_name = $3 ORDER BY row_key`, m.Schema, r.Table.Name, r.Column.Name)
		if err != nil {
			return nil, fmt.Errorf("reading the dangling references of %s.%s: %w", r.Table.Name, r.Column.Name, err)
		}
		for rows.Next() {
			dr := DanglingReference{Table: r.Table.Name, Column: r.Column.Name}
			if err := rows.Scan(&dr.Key, &dr.Path, &dr.Reason); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading the dangling references of %s.%s: %w", r.Table.Name, r.Column.Name, err)
			}
			out = append(out, dr)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading the dangling references of %s.%s: %w", r.Table.Name, r.Column.Name, err)
		}
	}
	return out, nil
}

// ReferenceMismatches counts, per "table.column", the rows whose reference
// key columns differ from what their path gives (the referenced row's key,
// or NULL when it has none): what verify reports. Tables that do not exist
// are skipped.
func ReferenceMismatches(ctx context.Context, db loaders.DB, m *mappings.Mapping) (map[string]int64, error) {
	out := map[string]int64{}
	for _, r := range m.References() {
		cols, err := existingColumns(ctx, db, m.Schema, r.Table.Name)
		if err != nil {
			return nil, err
		}
		if cols == nil {
			continue
		}
		if _, ok := cols[r.KeyColumns[0]]; !ok {
			out[r.Table.Name+"."+r.Column.Name] = -1 // the key columns are missing
			continue
		}
		if t, _ := existingColumns(ctx, db, m.Schema, r.Target.Name); t == nil {
			continue
		}
		var n int64
		if err := db.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM (%s) AS l WHERE %s", refLookupSQL(m, r, false), refDiffers(r))).Scan(&n); err != nil {
			return nil, fmt.Errorf("comparing the reference keys of %s.%s with their paths: %w", r.Table.Name, r.Column.Name, err)
		}
		if n > 0 {
			out[r.Table.Name+"."+r.Column.Name] = n
		}
	}
	return out, nil
}

// Warnings reports the dangling references the last finish recorded, per
// column, with a few of their paths (loaders.Reporter).
func (d *Documents) Warnings(ctx context.Context, db loaders.DB) ([]string, error) {
	list, err := DanglingReferences(ctx, db, d.mapping)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return danglingWarnings(list), nil
}

func danglingWarnings(list []DanglingReference) []string {
	type agg struct {
		n       int
		samples []string
	}
	var order []string
	by := map[string]*agg{}
	for _, dr := range list {
		k := dr.Table + "." + dr.Column
		a := by[k]
		if a == nil {
			a = &agg{}
			by[k] = a
			order = append(order, k)
		}
		a.n++
		if len(a.samples) < 5 {
			a.samples = append(a.samples, fmt.Sprintf("%s → %s (%s)", strings.Join(dr.Key, "/"), dr.Path, dr.Reason))
		}
	}
	var out []string
	for _, k := range order {
		a := by[k]
		out = append(out, fmt.Sprintf("%d dangling references in %s (kept as text, key columns NULL; all in %s): %s",
			a.n, k, danglingTable, strings.Join(a.samples, "; ")))
	}
	return out
}

var _ loaders.Reporter = (*Documents)(nil)

// Child tables (mappings.ChildTable): created after their parent table,
// keyed by the parent's key columns and _position, with a foreign key to
// the parent (ON DELETE CASCADE, DEFERRABLE INITIALLY DEFERRED). Every
// batch replaces the child rows of the documents it writes, in its own
// transaction: a resumed or repeated batch leaves exactly one row per
// element.

// childColumns lists the columns, in row order, of a child table at depth
// (1 or 2) under table t: its key columns (mappings.ChildKeyColumns),
// _position, the mapped columns, _overflow.
func childColumns(t *mappings.Table, ch *mappings.ChildTable, depth int) []column {
	var cols []column
	for _, k := range mappings.ChildKeyColumns(t, depth) {
		typ := `text COLLATE "C"`
		if k == mappings.ColParentPosition {
			typ = "bigint"
		}
		cols = append(cols, column{name: k, ddlType: typ, key: true})
	}
	cols = append(cols, column{name: mappings.ColPosition, ddlType: "bigint", key: true})
	for _, c := range ch.Columns {
		cols = append(cols, column{name: c.Name, ddlType: c.Type})
	}
	return append(cols, column{name: mappings.ColOverflow, ddlType: "jsonb"})
}

// childTableStatements returns the DDL that creates the mapping's child
// tables, or adds the columns they miss.
func childTableStatements(ctx context.Context, db loaders.DB, m *mappings.Mapping) ([]Statement, error) {
	var out []Statement
	for _, t := range tablesByDepth(m) {
		for _, ch := range t.Children {
			stmts, err := childTableDDL(ctx, db, m, t, ch, 1, t.Name, t.KeyColumns())
			if err != nil {
				return nil, err
			}
			out = append(out, stmts...)
			for _, g := range ch.Children {
				stmts, err := childTableDDL(ctx, db, m, t, g, 2, ch.Name, append(t.KeyColumns(), mappings.ColPosition))
				if err != nil {
					return nil, err
				}
				out = append(out, stmts...)
			}
		}
	}
	return out, nil
}

// childTableDDL creates one child table at depth, whose foreign key
// (its key columns before _position) references parentKey of parent.
func childTableDDL(ctx context.Context, db loaders.DB, m *mappings.Mapping, t *mappings.Table, ch *mappings.ChildTable, depth int, parent string, parentKey []string) ([]Statement, error) {
	name := pgx.Identifier{m.Schema, ch.Name}.Sanitize()
	have, err := existingColumns(ctx, db, m.Schema, ch.Name)
	if err != nil {
		return nil, err
	}
	cols := childColumns(t, ch, depth)
	if have != nil {
		var out []Statement
		for _, c := range cols {
			if _, ok := have[c.name]; !ok {
				out = append(out, Statement{
					What: fmt.Sprintf("add column %s to %s", c.name, name),
					SQL:  fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", name, pgx.Identifier{c.name}.Sanitize(), c.ddlType),
				})
			}
		}
		return out, nil
	}
	var defs []string
	for _, c := range cols {
		d := pgx.Identifier{c.name}.Sanitize() + " " + c.ddlType
		if c.key {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	keys := mappings.ChildKeyColumns(t, depth)
	defs = append(defs,
		fmt.Sprintf("CONSTRAINT %s PRIMARY KEY (%s)", pgx.Identifier{constraintName(ch.Name, "pkey")}.Sanitize(), quoteAll(append(keys, mappings.ColPosition))),
		fmt.Sprintf("CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
			pgx.Identifier{constraintName(ch.Name, "parent_fkey")}.Sanitize(), quoteAll(keys),
			pgx.Identifier{m.Schema, parent}.Sanitize(), quoteAll(parentKey)))
	return []Statement{{
		What: fmt.Sprintf("create child table %s for the array %s of %s (one row per element)", name, ch.Field, parent),
		SQL:  fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)", name, strings.Join(defs, ",\n  ")),
	}}, nil
}

// parentChildren are the child rows of the documents of one table a batch
// writes.
type parentChildren struct {
	keys [][]string
	rows [][]transformers.ChildRows
}

// writeChildren replaces the child rows of the documents a batch wrote:
// deletes those their keys have (second depth first), then copies the
// new ones in (first depth first). The documents of the tables in
// inserted were inserted by this batch (the direct path: their keys had
// no row), so they have no child rows to delete — a child row never
// outlives its parent row (the foreign key cascades).
func (d *Documents) writeChildren(ctx context.Context, tx pgx.Tx, kids map[*mappings.Table]*parentChildren, inserted map[*mappings.Table]bool) error {
	for _, t := range d.order {
		pc := kids[t]
		if pc == nil || len(pc.keys) == 0 {
			continue
		}
		var args []any // the keys, one text[] per key column, to delete by
		if !inserted[t] {
			args = make([]any, len(t.KeyColumns()))
			for i := range args {
				col := make([]string, len(pc.keys))
				for j, k := range pc.keys {
					col[j] = k[i]
				}
				args[i] = col
			}
		}
		for ci, ch := range t.Children {
			for _, g := range append(slices.Clone(ch.Children), ch) {
				if args == nil {
					break // inserted: nothing to delete
				}
				name := pgx.Identifier{d.mapping.Schema, g.Name}
				if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s AS x WHERE %s", name.Sanitize(), keyIn(t, "x")), args...); err != nil {
					return fmt.Errorf("replacing the rows of child table %s: %w", g.Name, err)
				}
			}
			var rows [][]any
			grand := make([][][]any, len(ch.Children))
			for j, key := range pc.keys {
				for pos, r := range pc.rows[j][ci].Rows {
					rows = append(rows, childRowValues(key, nil, pos, r))
					for gi, gc := range r.Children {
						for gpos, gr := range gc.Rows {
							grand[gi] = append(grand[gi], childRowValues(key, []any{int64(pos)}, gpos, gr))
						}
					}
				}
			}
			if err := d.copyChildRows(ctx, tx, t, ch, 1, rows); err != nil {
				return err
			}
			for gi, g := range ch.Children {
				if err := d.copyChildRows(ctx, tx, t, g, 2, grand[gi]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// childRowValues lays a child row out in childColumns order.
func childRowValues(key []string, parentPos []any, pos int, r transformers.ChildRow) []any {
	vals := make([]any, 0, len(key)+len(parentPos)+len(r.Values)+2)
	for _, k := range key {
		vals = append(vals, k)
	}
	vals = append(vals, parentPos...)
	vals = append(vals, int64(pos))
	vals = append(vals, r.Values...)
	if r.Overflow == nil {
		return append(vals, nil)
	}
	return append(vals, r.Overflow)
}

func (d *Documents) copyChildRows(ctx context.Context, tx pgx.Tx, t *mappings.Table, ch *mappings.ChildTable, depth int, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	var names []string
	for _, c := range childColumns(t, ch, depth) {
		names = append(names, c.name)
	}
	if _, err := copyRows(ctx, tx, pgx.Identifier{d.mapping.Schema, ch.Name}, names, rows); err != nil {
		return fmt.Errorf("writing %d rows of child table %s: %w", len(rows), ch.Name, err)
	}
	return nil
}

// childSelects is the select list that reads, with a document row of t
// (the table's name qualifies its columns), the rows of its child tables:
// per child table, each column then the overflow as an array in position
// order (jsonb as text), then per child table of its elements the parent
// positions, each column and the overflow, in (parent position, position)
// order.
func childSelects(schema string, t *mappings.Table) []string {
	var out []string
	parent := pgx.Identifier{schema, t.Name}.Sanitize()
	var conds []string
	for _, k := range t.KeyColumns() {
		q := pgx.Identifier{k}.Sanitize()
		conds = append(conds, fmt.Sprintf("c.%s = %s.%s", q, parent, q))
	}
	agg := func(ch *mappings.ChildTable, expr, order string) string {
		return fmt.Sprintf("(SELECT array_agg(%s ORDER BY %s) FROM %s AS c WHERE %s)", expr, order,
			pgx.Identifier{schema, ch.Name}.Sanitize(), strings.Join(conds, " AND "))
	}
	exprs := func(ch *mappings.ChildTable, depth int) []string {
		var out []string
		for _, c := range childColumns(t, ch, depth)[len(mappings.ChildKeyColumns(t, depth))+1:] {
			expr := "c." + pgx.Identifier{c.name}.Sanitize()
			if c.ddlType == "jsonb" {
				expr += "::text"
			}
			out = append(out, expr)
		}
		return out
	}
	pos := "c." + pgx.Identifier{mappings.ColPosition}.Sanitize()
	ppos := "c." + pgx.Identifier{mappings.ColParentPosition}.Sanitize()
	for _, ch := range t.Children {
		for _, e := range exprs(ch, 1) {
			out = append(out, agg(ch, e, pos))
		}
		for _, g := range ch.Children {
			out = append(out, agg(g, ppos, ppos+", "+pos))
			for _, e := range exprs(g, 2) {
				out = append(out, agg(g, e, ppos+", "+pos))
			}
		}
	}
	return out
}

// childArrays reads one child table's arrays (columns then overflow) from
// vals into rows, in position order.
func childArrays(ch *mappings.ChildTable, arrays []any) []transformers.ChildRowValues {
	var count int
	for _, a := range arrays {
		if l, ok := a.([]any); ok && len(l) > count {
			count = len(l)
		}
	}
	rows := make([]transformers.ChildRowValues, count)
	for r := range rows {
		rows[r].Values = make([]any, len(ch.Columns))
		for c, col := range ch.Columns {
			l, _ := arrays[c].([]any)
			if r < len(l) {
				x := l[r]
				if s, ok := x.(string); ok && col.Type == "jsonb" {
					x = []byte(s)
				}
				rows[r].Values[c] = x
			}
		}
		if l, _ := arrays[len(ch.Columns)].([]any); r < len(l) {
			if s, ok := l[r].(string); ok {
				rows[r].Overflow = []byte(s)
			}
		}
	}
	return rows
}

// decodeChildren puts back into a rebuilt document of t the arrays of its
// child tables from the values childSelects read.
func decodeChildren(tr *transformers.Documents, t *mappings.Table, vals []any, fields map[string]record.Value) error {
	if len(t.Children) == 0 {
		return nil
	}
	take := func(n int) ([]any, error) {
		if n > len(vals) {
			return nil, fmt.Errorf("reading the child rows of %s: %d arrays short", t.Name, n-len(vals))
		}
		out := vals[:n]
		vals = vals[n:]
		return out, nil
	}
	var kids [][]transformers.ChildRowValues
	for _, ch := range t.Children {
		arrays, err := take(len(ch.Columns) + 1)
		if err != nil {
			return err
		}
		rows := childArrays(ch, arrays)
		for r := range rows {
			rows[r].Children = make([][]transformers.ChildRowValues, len(ch.Children))
		}
		for gi, g := range ch.Children {
			arrays, err := take(len(g.Columns) + 2)
			if err != nil {
				return err
			}
			parents, _ := arrays[0].([]any)
			grows := childArrays(g, arrays[1:])
			for i, gr := range grows {
				if i >= len(parents) {
					break
				}
				p, ok := parents[i].(int64)
				if !ok || p < 0 || int(p) >= len(rows) {
					return fmt.Errorf("reading child table %s: a row's %s %v has no element in %s", g.Name, mappings.ColParentPosition, parents[i], ch.Name)
				}
				rows[p].Children[gi] = append(rows[p].Children[gi], gr)
			}
		}
		kids = append(kids, rows)
	}
	return tr.ReconstructChildren(t, fields, kids)
}

// childrenOf gathers the child rows of the documents a batch stored (not
// those it rejected), per table.
func childrenOf(idx map[*mappings.Table][]int, rows map[int]transformers.Row, rejects map[int]string) map[*mappings.Table]*parentChildren {
	out := map[*mappings.Table]*parentChildren{}
	for t, list := range idx {
		pc := &parentChildren{}
		for _, i := range list {
			if _, rejected := rejects[i]; rejected {
				continue
			}
			pc.keys = append(pc.keys, rows[i].Key)
			pc.rows = append(pc.rows, rows[i].Children)
		}
		out[t] = pc
	}
	return out
}

// relationsOnDelete returns the statements that empty, for the documents
// of t whose keys are the text[] parameters (one per key column) and that
// a hard delete turned into placeholders, what the placeholder must not
// keep: their child rows, and their reference key columns. (Rows deleted
// outright lose their child rows by the foreign key's cascade.)
func relationsOnDelete(m *mappings.Mapping, t *mappings.Table) []string {
	var out []string
	for _, ch := range t.Children {
		out = append(out, fmt.Sprintf("DELETE FROM %s AS x WHERE %s", pgx.Identifier{m.Schema, ch.Name}.Sanitize(), keyIn(t, "x")))
	}
	for _, r := range m.TableReferences(t) {
		var set []string
		for _, k := range r.KeyColumns {
			set = append(set, pgx.Identifier{k}.Sanitize()+" = NULL")
		}
		out = append(out, fmt.Sprintf("UPDATE %s AS x SET %s WHERE %s AND x.%s", pgx.Identifier{m.Schema, t.Name}.Sanitize(),
			strings.Join(set, ", "), keyIn(t, "x"), pgx.Identifier{mappings.ColMissing}.Sanitize()))
	}
	return out
}
