package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

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
	for _, t := range tablesByDepth(m) {
		cols, err := existingColumns(ctx, db, m.Schema, t.Name)
		if err != nil {
			return nil, err
		}
		name := pgx.Identifier{m.Schema, t.Name}
		if cols == nil {
			out = append(out, Statement{
				What: fmt.Sprintf("create table %s for collection %s", name.Sanitize(), t.Collection),
				SQL:  createTableSQL(m, t),
			})
		} else {
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
			fk := constraintName(t.Name, "parent_fkey")
			has := false
			if cols != nil {
				if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint
					WHERE conrelid = $1::regclass AND conname = $2)`, name.Sanitize(), fk).Scan(&has); err != nil {
					return nil, fmt.Errorf("reading constraints of %s: %w", name.Sanitize(), err)
				}
			}
			if !has {
				out = append(out, Statement{
					What: fmt.Sprintf("link %s to its parent table %s", name.Sanitize(), parent.Name),
					SQL: fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
						name.Sanitize(), pgx.Identifier{fk}.Sanitize(), quoteAll(t.ParentColumns),
						pgx.Identifier{m.Schema, parent.Name}.Sanitize(), quoteAll(parent.KeyColumns())),
				})
			}
		}
	}
	if len(conflicts) > 0 {
		return out, fmt.Errorf("the target's tables disagree with the mapping; change the mapping or ALTER the columns yourself:\n  %s",
			strings.Join(conflicts, "\n  "))
	}
	return out, nil
}

// ApplySchema runs the DDL of SchemaChanges in one transaction.
func ApplySchema(ctx context.Context, db loaders.DB, m *mappings.Mapping) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	defer tx.Rollback(ctx)
	// Two processes preparing the same target serialise here.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	stmts, err := SchemaChanges(ctx, tx, m)
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
		// Byte-order collation: string IDs compare as Firestore compares them
		// (numeric IDs, __id<n>__, are ordered by documentSelect).
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

func createTableSQL(m *mappings.Mapping, t *mappings.Table) string {
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
