package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// Statement is one DDL statement with a sentence saying what it does, for
// `plan` to show and `migrate` to run.
type Statement struct {
	What string
	SQL  string
}

// SchemaChanges compares the mapping with the target database and returns
// the DDL that makes the target hold every table and column of the mapping,
// in execution order. It only reads the catalog. Differences it will not
// resolve by itself — a column whose type differs from the mapping's — are
// returned together as one error naming each.
func SchemaChanges(ctx context.Context, db loaders.DB, m *mappings.Mapping) ([]Statement, error) {
	return SchemaChangesWith(ctx, db, m, SchemaOptions{})
}

// SchemaOptions are what SchemaChangesWith and ApplySchemaWith add to the
// tables of a mapping besides its columns.
type SchemaOptions struct {
	// SoftDeletes gives every table the column loaders.DeletedAtColumn
	// (timestamptz, NULL for live rows), added in place to existing
	// tables: what soft deletes mark (see Documents.SetSoftDeletes).
	SoftDeletes bool
	// DeferForeignKeys leaves the foreign key of a table that these
	// statements create to the end of the run, as pg_restore does: instead
	// of the constraint, a statement records it in
	// baasmigrate.deferred_foreign_keys, and BuildDeferredForeignKeys
	// builds it once the rows are in. A table whose foreign key is
	// recorded there keeps waiting. Without DeferForeignKeys, recorded
	// foreign keys of the mapping's tables are built now (and their record
	// removed): a plain Prepare leaves no table without its foreign key.
	DeferForeignKeys bool
}

// deferredTable records the foreign keys left to the end of a run (see
// SchemaOptions.DeferForeignKeys), one row per child table: its parent key
// is recorded in the transaction that creates the table and built, and the
// row deleted, in the transaction of BuildDeferredForeignKeys.
const deferredTable = StateSchema + ".deferred_foreign_keys"

// deferredDDL creates deferredTable; every statement is idempotent.
var deferredDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + StateSchema,
	`CREATE TABLE IF NOT EXISTS ` + deferredTable + ` (
		table_schema    text        NOT NULL,
		table_name      text        NOT NULL,
		constraint_name text        NOT NULL,
		deferred_at     timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (table_schema, table_name)
	)`,
	`REVOKE ALL ON ` + deferredTable + ` FROM PUBLIC`,
}

// ensureDeferredTable creates deferredTable when it does not exist, under
// the lock OpenState creates the state schema with.
func ensureDeferredTable(ctx context.Context, tx pgx.Tx) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, deferredTable).Scan(&exists); err != nil {
		return fmt.Errorf("looking up %s: %w", deferredTable, err)
	}
	if exists {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate state schema'))`); err != nil {
		return fmt.Errorf("creating %s: %w", deferredTable, err)
	}
	for _, stmt := range deferredDDL {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("creating %s: %w", deferredTable, err)
		}
	}
	return nil
}

// deferredKeys returns the child tables of schema whose foreign key is
// recorded as deferred (none when deferredTable does not exist).
func deferredKeys(ctx context.Context, db loaders.DB, schema string) (map[string]bool, error) {
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, deferredTable).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking up %s: %w", deferredTable, err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := db.Query(ctx, `SELECT table_name FROM `+deferredTable+` WHERE table_schema = $1`, schema)
	if err != nil {
		return nil, fmt.Errorf("reading the deferred foreign keys of schema %s: %w", schema, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the deferred foreign keys of schema %s: %w", schema, err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// sqlLiteral quotes s as an SQL string constant, whatever
// standard_conforming_strings says.
func sqlLiteral(s string) string {
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + "'"
}

// deferStatement records t's foreign key as deferred.
func deferStatement(m *mappings.Mapping, t, parent *mappings.Table) Statement {
	return Statement{
		What: fmt.Sprintf("link %s to its parent table %s once the run's rows are in (recorded now, built when the run ends)",
			pgx.Identifier{m.Schema, t.Name}.Sanitize(), parent.Name),
		SQL: fmt.Sprintf("INSERT INTO %s (table_schema, table_name, constraint_name) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
			deferredTable, sqlLiteral(m.Schema), sqlLiteral(t.Name), sqlLiteral(constraintName(t.Name, "parent_fkey"))),
	}
}

// undeferStatement removes the record of t's deferred foreign key.
func undeferStatement(m *mappings.Mapping, t *mappings.Table) Statement {
	return Statement{
		What: fmt.Sprintf("forget that the foreign key of %s was left to the end of a run", pgx.Identifier{m.Schema, t.Name}.Sanitize()),
		SQL: fmt.Sprintf("DELETE FROM %s WHERE table_schema = %s AND table_name = %s",
			deferredTable, sqlLiteral(m.Schema), sqlLiteral(t.Name)),
	}
}

// SchemaChangesWith is SchemaChanges with the additions of opts.
func SchemaChangesWith(ctx context.Context, db loaders.DB, m *mappings.Mapping, opts SchemaOptions) ([]Statement, error) {
	var out []Statement
	var conflicts []string
	var exists bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, m.Schema).Scan(&exists); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if !exists {
		out = append(out, Statement{
			What: fmt.Sprintf("create schema %s", m.Schema),
			SQL:  "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{m.Schema}.Sanitize(),
		})
	}
	deferred, err := deferredKeys(ctx, db, m.Schema)
	if err != nil {
		return nil, err
	}
	for _, t := range tablesByDepth(m) {
		cols, err := existingColumns(ctx, db, m.Schema, t.Name)
		if err != nil {
			return nil, err
		}
		name := pgx.Identifier{m.Schema, t.Name}
		if cols == nil {
			out = append(out, Statement{
				What: fmt.Sprintf("create table %s for collection %s", name.Sanitize(), t.Collection),
				SQL:  createTableSQL(m, t, opts.SoftDeletes),
			})
		} else {
			if _, ok := cols[loaders.DeletedAtColumn]; opts.SoftDeletes && !ok {
				out = append(out, Statement{
					What: fmt.Sprintf("add column %s to %s (deletion time, for soft deletes)", loaders.DeletedAtColumn, name.Sanitize()),
					SQL: fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s timestamptz", name.Sanitize(),
						pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()),
				})
			}
			for _, c := range documentColumns(t) {
				have, ok := cols[c.name]
				if !ok {
					out = append(out, Statement{
						What: fmt.Sprintf("add column %s to %s", c.name, name.Sanitize()),
						SQL:  fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", name.Sanitize(), pgx.Identifier{c.name}.Sanitize(), c.ddlType),
					})
					continue
				}
				want, err := canonicalType(ctx, db, c.ddlType)
				if err != nil {
					return nil, err
				}
				if have != want {
					conflicts = append(conflicts, fmt.Sprintf("%s.%s is %s in the database but %s in the mapping", name.Sanitize(), pgx.Identifier{c.name}.Sanitize(), have, want))
				}
			}
		}
		if parent := m.Parent(t); parent != nil {
			if cols == nil && opts.DeferForeignKeys {
				out = append(out, deferStatement(m, t, parent))
				continue
			}
			stmts, missing, err := parentKeyChanges(ctx, db, m, t, parent, cols != nil)
			if err != nil {
				return nil, err
			}
			if deferred[t.Name] {
				if missing && opts.DeferForeignKeys {
					continue // built when the run that deferred it ends
				}
				stmts = append(stmts, undeferStatement(m, t))
			}
			out = append(out, stmts...)
		}
	}
	if len(conflicts) > 0 {
		return out, fmt.Errorf("the target's tables disagree with the mapping; change the mapping or ALTER the columns yourself:\n  %s",
			strings.Join(conflicts, "\n  "))
	}
	return out, nil
}

// parentKeyChanges returns the DDL that makes t's foreign key reference
// its parent table as the mapping says: none when it does, its creation
// when t has none (or does not exist yet, exists false), and when it
// references another table or other columns — the parent table was renamed
// in the mapping — the statements that move it: drop it, give the new
// parent table a placeholder row (_missing) for every parent t's existing
// rows reference, so that they keep theirs, and create it anew. missing
// says t has no foreign key to its parent yet (the statements create it).
func parentKeyChanges(ctx context.Context, db loaders.DB, m *mappings.Mapping, t, parent *mappings.Table, exists bool) (stmts []Statement, missing bool, err error) {
	name := pgx.Identifier{m.Schema, t.Name}
	parentName := pgx.Identifier{m.Schema, parent.Name}
	fk := constraintName(t.Name, "parent_fkey")
	add := Statement{
		What: fmt.Sprintf("link %s to its parent table %s", name.Sanitize(), parent.Name),
		SQL: fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
			name.Sanitize(), pgx.Identifier{fk}.Sanitize(), quoteAll(t.ParentColumns),
			parentName.Sanitize(), quoteAll(parent.KeyColumns())),
	}
	if !exists {
		return []Statement{add}, true, nil
	}
	var refSchema, refTable string
	var cols, refCols []string
	err = db.QueryRow(ctx, `SELECT nf.nspname, cf.relname,
			array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
				JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
			array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
				JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_constraint c JOIN pg_class cf ON cf.oid = c.confrelid JOIN pg_namespace nf ON nf.oid = cf.relnamespace
		WHERE c.conrelid = $1::regclass AND c.conname = $2 AND c.contype = 'f'`, name.Sanitize(), fk).
		Scan(&refSchema, &refTable, &cols, &refCols)
	if errors.Is(err, pgx.ErrNoRows) {
		return []Statement{add}, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the foreign key of %s: %w", name.Sanitize(), err)
	}
	if refSchema == m.Schema && refTable == parent.Name && slices.Equal(cols, t.ParentColumns) && slices.Equal(refCols, parent.KeyColumns()) {
		return nil, false, nil
	}
	old := pgx.Identifier{refSchema, refTable}
	var notNull []string
	for _, c := range t.ParentColumns {
		notNull = append(notNull, pgx.Identifier{c}.Sanitize()+" IS NOT NULL")
	}
	return []Statement{
		{
			What: fmt.Sprintf("move the foreign key of %s from %s (%s) to its parent table in the mapping, %s (%s): drop it",
				name.Sanitize(), old.Sanitize(), strings.Join(refCols, ", "), parentName.Sanitize(), strings.Join(parent.KeyColumns(), ", ")),
			SQL: fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", name.Sanitize(), pgx.Identifier{fk}.Sanitize()),
		},
		{
			What: fmt.Sprintf("give %s a placeholder row (%s) for each parent the rows of %s reference, unless it has one",
				parentName.Sanitize(), mappings.ColMissing, name.Sanitize()),
			SQL: fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT DISTINCT %s, true FROM %s WHERE %s ON CONFLICT DO NOTHING",
				parentName.Sanitize(), quoteAll(parent.KeyColumns()), pgx.Identifier{mappings.ColMissing}.Sanitize(),
				quoteAll(t.ParentColumns), name.Sanitize(), strings.Join(notNull, " AND ")),
		},
		add,
	}, false, nil
}

// ApplySchema runs the DDL of SchemaChanges in one transaction, after
// claiming the mapping's tables for o (see ClaimTables): when another
// source owns one of them it changes nothing and says so.
func ApplySchema(ctx context.Context, db loaders.DB, m *mappings.Mapping, o Owner) error {
	return ApplySchemaWith(ctx, db, m, o, SchemaOptions{})
}

// ApplySchemaWith is ApplySchema with the additions of opts
// (SchemaChangesWith).
func ApplySchemaWith(ctx context.Context, db loaders.DB, m *mappings.Mapping, o Owner, opts SchemaOptions) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	defer tx.Rollback(ctx)
	// Two processes preparing the same target serialise here.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	if err := ClaimTables(ctx, tx, o, MappingTables(m)); err != nil {
		return err
	}
	if opts.DeferForeignKeys {
		if err := ensureDeferredTable(ctx, tx); err != nil {
			return err
		}
	}
	stmts, err := SchemaChangesWith(ctx, tx, m, opts)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s.SQL); err != nil {
			return fmt.Errorf("%s: %w", s.What, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	return nil
}

// MappingTables lists the tables of m, schema-qualified, for ClaimTables
// and CheckTableOwners.
func MappingTables(m *mappings.Mapping) []pgx.Identifier {
	out := make([]pgx.Identifier, len(m.Tables))
	for i, t := range m.Tables {
		out[i] = pgx.Identifier{m.Schema, t.Name}
	}
	return out
}

// column is one column of a document table.
type column struct {
	name, ddlType string
	key           bool
}

// documentColumns lists a document table's columns in row order: key
// columns, mapped columns, then the meta columns.
func documentColumns(t *mappings.Table) []column {
	var cols []column
	for _, k := range t.KeyColumns() {
		// Byte-order collation, the order of most IDs; a source's own order
		// of IDs is applied when reading (documentSelect).
		cols = append(cols, column{name: k, ddlType: `text COLLATE "C"`, key: true})
	}
	for _, c := range t.Columns {
		cols = append(cols, column{name: c.Name, ddlType: c.Type})
	}
	return append(cols,
		column{name: mappings.ColCreateTime, ddlType: "timestamptz"},
		column{name: mappings.ColUpdateTime, ddlType: "timestamptz"},
		column{name: mappings.ColOverflow, ddlType: "jsonb"},
		column{name: mappings.ColMissing, ddlType: "boolean"},
	)
}

func createTableSQL(m *mappings.Mapping, t *mappings.Table, softDeletes bool) string {
	var defs []string
	for _, c := range documentColumns(t) {
		d := pgx.Identifier{c.name}.Sanitize() + " " + c.ddlType
		switch {
		case c.key:
			d += " NOT NULL"
		case c.name == mappings.ColMissing:
			d += " NOT NULL DEFAULT false"
		}
		defs = append(defs, d)
	}
	if softDeletes {
		defs = append(defs, pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()+" timestamptz")
	}
	defs = append(defs, fmt.Sprintf("CONSTRAINT %s PRIMARY KEY (%s)",
		pgx.Identifier{pkeyName(m, t)}.Sanitize(), quoteAll(t.KeyColumns())))
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)", pgx.Identifier{m.Schema, t.Name}.Sanitize(), strings.Join(defs, ",\n  "))
}

// pkeyName names t's primary key, whose index shares the namespace of
// tables: "<table>_pkey", unless the mapping has a table of that name (a
// collection "pkey" under t's), then with a hash that no table has.
func pkeyName(m *mappings.Mapping, t *mappings.Table) string {
	taken := map[string]bool{}
	for _, o := range m.Tables {
		taken[o.Name] = true
	}
	name := constraintName(t.Name, "pkey")
	for i := 0; taken[name]; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", t.Name, i)))
		name = constraintName(t.Name, "pkey_"+hex.EncodeToString(h[:])[:6])
	}
	return name
}

// constraintName builds "<table>_<suffix>" within PostgreSQL's 63 bytes.
func constraintName(table, suffix string) string {
	name := table + "_" + suffix
	if len(name) <= 63 {
		return name
	}
	h := sha256.Sum256([]byte(table))
	keep := 63 - len(suffix) - 10
	for keep > 0 && !isRuneStart(table[keep]) {
		keep--
	}
	return table[:keep] + "_" + hex.EncodeToString(h[:])[:8] + "_" + suffix
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// tablesByDepth orders tables parents first, then by name.
func tablesByDepth(m *mappings.Mapping) []*mappings.Table {
	ts := append([]*mappings.Table(nil), m.Tables...)
	sort.SliceStable(ts, func(i, j int) bool {
		if a, b := len(ts[i].ParentColumns), len(ts[j].ParentColumns); a != b {
			return a < b
		}
		return ts[i].Name < ts[j].Name
	})
	return ts
}

// existingColumns returns the columns of schema.table with their types as
// PostgreSQL prints them, or nil when the table does not exist.
func existingColumns(ctx context.Context, db loaders.DB, schema, table string) (map[string]string, error) {
	rows, err := db.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	var cols map[string]string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("reading the columns of %s.%s: %w", schema, table, err)
		}
		if cols == nil {
			cols = map[string]string{}
		}
		cols[name] = typ
	}
	return cols, rows.Err()
}

// canonicalType asks PostgreSQL how it spells a type ("timestamptz" →
// "timestamp with time zone"), ignoring a collation clause.
func canonicalType(ctx context.Context, db loaders.DB, ddlType string) (string, error) {
	typ, _, _ := strings.Cut(ddlType, " COLLATE ")
	var out string
	if err := db.QueryRow(ctx, `SELECT format_type($1::regtype, NULL)`, typ).Scan(&out); err != nil {
		return "", fmt.Errorf("looking up type %q: %w", typ, err)
	}
	return out, nil
}

// BuildDeferredForeignKeys builds the foreign keys of m's tables that a
// Prepare with SchemaOptions.DeferForeignKeys left to the end of the run,
// and removes their records, in one transaction: each is built exactly
// once, by whichever process gets there, and a process killed meanwhile
// leaves them all to be built again. It returns the tables whose key it
// built. It is idempotent: with nothing recorded it changes nothing.
//
// Building a key checks every row of the table against its parent table.
// The loader gives every row a parent row (a placeholder when the source
// has none), so a row without one was written or deleted by someone else
// during the run: that is an error naming the table and PostgreSQL's
// detail (the key that has no parent), nothing is built, and the next
// call tries again.
func BuildDeferredForeignKeys(ctx context.Context, db loaders.DB, m *mappings.Mapping) ([]string, error) {
	pending, err := deferredKeys(ctx, db, m.Schema)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("building the deferred foreign keys: %w", err)
	}
	defer tx.Rollback(ctx)
	// Serialise with Prepare and growing batches, then read the records
	// again: another process may have built them meanwhile.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
		return nil, fmt.Errorf("building the deferred foreign keys: %w", err)
	}
	if pending, err = deferredKeys(ctx, tx, m.Schema); err != nil {
		return nil, err
	}
	var built []string
	for _, t := range tablesByDepth(m) {
		parent := m.Parent(t)
		if parent == nil || !pending[t.Name] {
			continue
		}
		name := pgx.Identifier{m.Schema, t.Name}.Sanitize()
		stmts, _, err := parentKeyChanges(ctx, tx, m, t, parent, true)
		if err != nil {
			return nil, err
		}
		for _, s := range append(stmts, undeferStatement(m, t)) {
			if _, err := tx.Exec(ctx, s.SQL); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23503" {
					return nil, failure.Mark(fmt.Errorf("building the foreign key of %s to its parent table %s after the load: "+
						"a row has no parent row (%s), though the load gives every row one, so a row was written or deleted "+
						"outside this run. No foreign key was built and the run stays unfinished: fix or delete that row, "+
						"then run migrate again to finish it: %w", name, parent.Name, pgErr.Detail, err), failure.Permanent)
				}
				return nil, fmt.Errorf("building the foreign key of %s after the load: %s: %w", name, s.What, err)
			}
		}
		built = append(built, t.Name)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("building the deferred foreign keys: %w", err)
	}
	return built, nil
}
