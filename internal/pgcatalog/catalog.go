// Package pgcatalog reads the definition of a PostgreSQL database's schemas
// from its catalog (pg_catalog queries, not pg_dump) and turns it into the
// DDL that reproduces them in another database: enums, domains, sequences,
// tables with their columns, defaults, generated and identity columns and
// check constraints, then, after the rows load, primary, unique and
// exclusion constraints, indexes and foreign keys.
//
// Objects that cannot work outside the source platform (row-level security
// policies, functions and triggers, which on Supabase call auth.* or
// storage.*; defaults and constraints calling functions that are not
// built in; foreign keys to tables outside the copied schemas; types the
// target lacks) are never silently copied or dropped: they are Notes,
// which `plan` lists with what to do.
//
// It is neutral: extractors (which read a source's catalog) and sinks
// (which run the DDL on the target) both use it.
package pgcatalog

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier is what Load needs of a connection.
type Querier interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Catalog is the definition of the copied schemas.
type Catalog struct {
	Schemas   []string
	Enums     []Enum
	Domains   []Domain
	Sequences []Sequence
	Tables    []*Table
	// Notes are the objects not copied, and why.
	Notes []Note
	// byName indexes Tables by QName (built by Load; Find scans Tables
	// of a catalog assembled otherwise).
	byName map[string]*Table
}

// Note is an object not reproduced on the target.
type Note struct {
	// What says what the object is, why it is not copied and what to do.
	What string
	// SQL is its definition at the source (to adapt and run by hand).
	SQL string
	// Platform is set when the object refers to the source platform's own
	// schemas (auth.*, storage.*) and cannot work elsewhere as it is.
	Platform bool
	// Extension names the extension a note about one is about.
	Extension string
}

// Describe is how plan lists the note: "not copied: " and What, with the
// platform named when the object refers to its schemas.
func (n Note) Describe() string {
	if n.Platform {
		return "not copied (Supabase only): " + n.What
	}
	return "not copied: " + n.What
}

// Enum is an enum type.
type Enum struct {
	Schema, Name string
	Labels       []string
}

// Domain is a domain type.
type Domain struct {
	Schema, Name string
	// Base is the qualified base type (format_type).
	Base        string
	NotNull     bool
	Default     string
	Constraints []string // pg_get_constraintdef
	Collation   string   // qualified, "" for the default
}

// Sequence is a sequence not owned by an identity column.
type Sequence struct {
	Schema, Name string
	Type         string
	Start, Inc   int64
	Min, Max     int64
	Cache        int64
	Cycle        bool
	// OwnedBy is the column that owns it (serial): schema, table, column.
	OwnedBy []string
}

// Ident is the sequence's quoted name.
func (s Sequence) Ident() string { return pgx.Identifier{s.Schema, s.Name}.Sanitize() }

// Column is a column of a table.
type Column struct {
	Name string
	// Type is the qualified type (format_type with search_path=pg_catalog).
	Type      string
	NotNull   bool
	Default   string // "" when none (or not reproduced: see Catalog.Notes)
	Generated string // the expression of a stored generated column
	Identity  string // "a" (ALWAYS), "d" (BY DEFAULT) or ""
	// IdentitySeq is the identity sequence's options.
	IdentitySeq string
	Collation   string // qualified COLLATE name, "" for the type's own
	// TypeSchema, TypeKind ('b','e','d','c','r','m'...) and ElemKind
	// describe the type: where it lives and what it is; ElemKind is the
	// element's kind for arrays ("" otherwise).
	TypeSchema, TypeKind, ElemSchema, ElemKind string
}

// Table is one table of the copied schemas.
type Table struct {
	Schema, Name string
	Columns      []Column
	// Key lists the primary key's columns (empty: the table has none).
	Key []string
	// Checks are the check constraints, created with the table: name and
	// pg_get_constraintdef.
	Checks [][2]string
	// Keys are the primary key, unique and exclusion constraints, created
	// after the rows (as pg_restore does: one index build instead of an
	// insertion per row), before the indexes and foreign keys.
	Keys [][2]string
	// ForeignKeys are created after the rows: name and definition.
	ForeignKeys [][2]string
	// Indexes are pg_get_indexdef of the indexes that back no constraint,
	// created after the rows.
	Indexes []string
	// RowSecurity is set when the source enables row-level security.
	RowSecurity bool
	// copy is the table's copy format, computed once by Load (nil for a
	// table built otherwise, whose Binary and CopyIn compute it on each
	// call): Binary and CopyIn run for every batch of rows.
	copy *copyFormat
}

// copyFormat is what Binary and CopyIn return for a table.
type copyFormat struct {
	binary bool
	in     string
}

// Ident is the table's quoted, qualified name.
func (t *Table) Ident() pgx.Identifier { return pgx.Identifier{t.Schema, t.Name} }

// QName is the table's quoted, qualified name as a string: its stream
// name and target table name in reports.
func (t *Table) QName() string { return t.Ident().Sanitize() }

// Copied lists the columns the copy writes: all but generated ones.
func (t *Table) Copied() []Column {
	var out []Column
	for _, c := range t.Columns {
		if c.Generated == "" {
			out = append(out, c)
		}
	}
	return out
}

// KeyPositions lists the positions of the primary key's columns among the
// copied ones (Copied), in the key's order.
func (t *Table) KeyPositions() []int {
	cols := t.Copied()
	out := make([]int, 0, len(t.Key))
	for _, k := range t.Key {
		for i, c := range cols {
			if c.Name == k {
				out = append(out, i)
			}
		}
	}
	return out
}

// KeyTypes returns the types of the key's columns.
func (t *Table) KeyTypes() []string {
	out := make([]string, len(t.Key))
	for i, k := range t.Key {
		for _, c := range t.Columns {
			if c.Name == k {
				out[i] = c.Type
			}
		}
	}
	return out
}

// Binary reports whether the table's rows can move in PostgreSQL's binary
// COPY format: every copied column's type is built in (pg_catalog), an
// enum, or a domain, and no array's element is a type of the copied
// schemas (binary arrays carry their element type's OID, which differs
// between databases). Other tables move in COPY's text format. A table of a
// loaded catalog computed it once, at Load.
func (t *Table) Binary() bool {
	if t.copy != nil {
		return t.copy.binary
	}
	return t.binary()
}

func (t *Table) binary() bool {
	for _, c := range t.Copied() {
		if c.TypeSchema != "pg_catalog" && c.TypeKind != "e" && c.TypeKind != "d" {
			return false
		}
		if c.ElemKind != "" && c.ElemSchema != "pg_catalog" {
			return false
		}
	}
	return true
}

// Find returns the table with the quoted, qualified name qname.
func (c *Catalog) Find(qname string) *Table {
	if c.byName != nil {
		return c.byName[qname]
	}
	for _, t := range c.Tables {
		if t.QName() == qname {
			return t
		}
	}
	return nil
}

// platformRef matches a reference to Supabase's own schemas.
var platformRef = regexp.MustCompile(`(^|[^A-Za-z0-9_$"])"?(auth|storage)"?\s*\.`)

// RefersToPlatform reports whether SQL text names auth.* or storage.*.
func RefersToPlatform(sql string) bool { return platformRef.MatchString(sql) }

// Load reads the definition of schemas through q, in one repeatable-read
// transaction with search_path = pg_catalog, so that every name in types,
// defaults and definitions comes qualified.
func Load(ctx context.Context, q Querier, schemas []string) (*Catalog, error) {
	tx, err := q.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the source catalog: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
		return nil, fmt.Errorf("reading the source catalog: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = pg_catalog`); err != nil {
		return nil, fmt.Errorf("reading the source catalog: %w", err)
	}
	c := &Catalog{Schemas: schemas}
	var found []string
	if err := collect(ctx, tx, `SELECT nspname FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname`, []any{schemas}, func(r pgx.Rows) error {
		var s string
		found = append(found, s)
		return r.Scan(&found[len(found)-1])
	}); err != nil {
		return nil, fmt.Errorf("reading the source's schemas: %w", err)
	}
	for _, s := range schemas {
		if !slices.Contains(found, s) {
			return nil, fmt.Errorf("--schemas: the source has no schema %q", s)
		}
	}
	steps := []struct {
		what string
		fn   func(context.Context, pgx.Tx) error
	}{
		{"enums", c.loadEnums}, {"domains", c.loadDomains}, {"sequences", c.loadSequences},
		{"tables", c.loadTables}, {"columns", c.loadColumns}, {"constraints", c.loadConstraints},
		{"indexes", c.loadIndexes}, {"policies", c.loadPolicies}, {"functions", c.loadFunctions},
		{"triggers", c.loadTriggers}, {"other objects", c.loadOthers},
	}
	for _, s := range steps {
		if err := s.fn(ctx, tx); err != nil {
			return nil, fmt.Errorf("reading the source's %s: %w", s.what, err)
		}
	}
	c.byName = make(map[string]*Table, len(c.Tables))
	for _, t := range c.Tables {
		c.byName[t.QName()] = t
		t.copy = &copyFormat{binary: t.binary(), in: t.copyIn()}
	}
	return c, nil
}

func collect(ctx context.Context, tx pgx.Tx, sql string, args []any, fn func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// callsFunctions lists (SQL, NULL for none) the functions outside
// pg_catalog the object (classid, objid) depends on.
const callsFunctions = `(SELECT string_agg(DISTINCT quote_ident(pn.nspname) || '.' || quote_ident(fp.proname), ', ')
	FROM pg_depend dep JOIN pg_proc fp ON fp.oid = dep.refobjid JOIN pg_namespace pn ON pn.oid = fp.pronamespace
	WHERE dep.classid = %s AND dep.objid = %s AND dep.refclassid = 'pg_proc'::regclass AND pn.nspname <> 'pg_catalog')`

func (c *Catalog) loadEnums(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
		WHERE n.nspname = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
		GROUP BY t.oid, n.nspname, t.typname ORDER BY t.oid`, []any{c.Schemas}, func(r pgx.Rows) error {
		var e Enum
		if err := r.Scan(&e.Schema, &e.Name, &e.Labels); err != nil {
			return err
		}
		c.Enums = append(c.Enums, e)
		return nil
	})
}

func (c *Catalog) loadDomains(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, coalesce(t.typdefault, ''),
			ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c' ORDER BY k.conname),
			CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_type bt ON bt.oid = t.typbasetype
		LEFT JOIN pg_collation co ON co.oid = t.typcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
		WHERE t.typtype = 'd' AND n.nspname = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
		ORDER BY t.oid`, []any{c.Schemas}, func(r pgx.Rows) error {
		var d Domain
		if err := r.Scan(&d.Schema, &d.Name, &d.Base, &d.NotNull, &d.Default, &d.Constraints, &d.Collation); err != nil {
			return err
		}
		c.Domains = append(c.Domains, d)
		return nil
	})
}

func (c *Catalog) loadSequences(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, s.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle,
			coalesce((SELECT ARRAY[tn.nspname::text, tc.relname::text, a.attname::text] FROM pg_depend d
				JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
				JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
				WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype = 'a' AND d.refclassid = 'pg_class'::regclass AND tn.nspname = ANY($1)), '{}')
		FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace JOIN pg_sequence q ON q.seqrelid = s.oid
		WHERE s.relkind = 'S' AND n.nspname = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = s.oid AND d.deptype IN ('i', 'e'))
		ORDER BY n.nspname, s.relname`, []any{c.Schemas}, func(r pgx.Rows) error {
		var s Sequence
		if err := r.Scan(&s.Schema, &s.Name, &s.Type, &s.Start, &s.Inc, &s.Min, &s.Max, &s.Cache, &s.Cycle, &s.OwnedBy); err != nil {
			return err
		}
		c.Sequences = append(c.Sequences, s)
		return nil
	})
}

func (c *Catalog) loadTables(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, t.relname, t.relkind::text, t.relispartition, t.relrowsecurity
		FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE t.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
		ORDER BY n.nspname, t.relname`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, name, kind string
		var part, rls bool
		if err := r.Scan(&schema, &name, &kind, &part, &rls); err != nil {
			return err
		}
		q := pgx.Identifier{schema, name}.Sanitize()
		switch {
		case kind == "r" && !part:
			c.Tables = append(c.Tables, &Table{Schema: schema, Name: name, RowSecurity: rls})
		case kind == "v" || kind == "m":
			c.Notes = append(c.Notes, Note{What: fmt.Sprintf("view %s is not copied: create it on the target from its definition once the tables are there", q)})
		default:
			c.Notes = append(c.Notes, Note{What: fmt.Sprintf("%s is a partitioned or foreign table (or a partition): not copied; create it and copy its rows by hand", q)})
		}
		return nil
	})
}

func (c *Catalog) table(schema, name string) *Table {
	for _, t := range c.Tables {
		if t.Schema == schema && t.Name == name {
			return t
		}
	}
	return nil
}

func (c *Catalog) loadColumns(ctx context.Context, tx pgx.Tx) error {
	err := collect(ctx, tx, `SELECT n.nspname, t.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
			coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attgenerated::text, a.attidentity::text,
			CASE WHEN a.attcollation <> ty.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END,
			tn.nspname, ty.typtype::text, coalesce(en.nspname, ''), coalesce(et.typtype::text, ''),
			coalesce(`+fmt.Sprintf(callsFunctions, "'pg_attrdef'::regclass", "d.oid")+`, ''),
			coalesce((SELECT format('START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s', q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache,
				CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END) FROM pg_sequence q
				WHERE a.attidentity <> '' AND q.seqrelid = pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(t.relname), a.attname)::regclass), '')
		FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		JOIN pg_type ty ON ty.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = ty.typnamespace
		LEFT JOIN pg_type et ON et.oid = ty.typelem AND ty.typcategory = 'A' LEFT JOIN pg_namespace en ON en.oid = et.typnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
		WHERE t.relkind = 'r' AND n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY n.nspname, t.relname, a.attnum`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, name, calls string
		var col Column
		if err := r.Scan(&schema, &name, &col.Name, &col.Type, &col.NotNull, &col.Default, &col.Generated, &col.Identity, &col.Collation,
			&col.TypeSchema, &col.TypeKind, &col.ElemSchema, &col.ElemKind, &calls, &col.IdentitySeq); err != nil {
			return err
		}
		t := c.table(schema, name)
		if t == nil {
			return nil
		}
		if col.Generated != "" {
			col.Generated, col.Default = col.Default, ""
		}
		if calls != "" && !c.ownsFunctions(calls) {
			q := t.QName() + "." + pgx.Identifier{col.Name}.Sanitize()
			expr := col.Default
			if col.Generated != "" {
				expr = col.Generated
			}
			if col.Generated != "" {
				c.Notes = append(c.Notes, Note{Platform: RefersToPlatform(expr),
					What: fmt.Sprintf("generated column %s calls %s: created as a plain column holding the source's values; make it generated again once the function exists", q, calls),
					SQL:  "GENERATED ALWAYS AS (" + expr + ") STORED"})
				col.Generated = ""
			} else {
				c.Notes = append(c.Notes, Note{Platform: RefersToPlatform(expr),
					What: fmt.Sprintf("default of %s calls %s: not set on the target; set a default that works there (the rows keep the source's values)", q, calls),
					SQL:  fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t.QName(), pgx.Identifier{col.Name}.Sanitize(), expr)})
				col.Default = ""
			}
		}
		t.Columns = append(t.Columns, col)
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range c.Tables {
		for _, col := range t.Columns {
			if col.ElemKind == "c" || col.TypeKind == "c" && col.TypeSchema != "pg_catalog" {
				c.Notes = append(c.Notes, Note{What: fmt.Sprintf("column %s.%s has the composite type %s: composite types are not copied; create the type on the target before migrating",
					t.QName(), pgx.Identifier{col.Name}.Sanitize(), col.Type)})
			}
		}
	}
	return nil
}

// ownsFunctions is always false: functions are reported, never copied, so
// an expression calling any function outside pg_catalog would not work on
// the target as created.
func (c *Catalog) ownsFunctions(string) bool { return false }

func (c *Catalog) loadConstraints(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, t.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid),
			coalesce(`+fmt.Sprintf(callsFunctions, "'pg_constraint'::regclass", "k.oid")+`, ''),
			coalesce(rn.nspname, ''), coalesce(rt.relname, ''),
			coalesce(ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), '{}')
		FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		LEFT JOIN pg_class rt ON rt.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rt.relnamespace
		WHERE t.relkind = 'r' AND n.nspname = ANY($1) AND k.contype IN ('p', 'u', 'c', 'f', 'x')
		ORDER BY n.nspname, t.relname, k.contype = 'p' DESC, k.conname`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, name, con, typ, def, calls, refSchema, refTable string
		var cols []string
		if err := r.Scan(&schema, &name, &con, &typ, &def, &calls, &refSchema, &refTable, &cols); err != nil {
			return err
		}
		t := c.table(schema, name)
		if t == nil {
			return nil
		}
		stmt := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", t.QName(), pgx.Identifier{con}.Sanitize(), def)
		switch {
		case calls != "":
			c.Notes = append(c.Notes, Note{Platform: RefersToPlatform(def),
				What: fmt.Sprintf("constraint %s on %s calls %s: not created; add it once the function exists on the target", pgx.Identifier{con}.Sanitize(), t.QName(), calls),
				SQL:  stmt})
		case typ == "f" && !slices.Contains(c.Schemas, refSchema):
			what := fmt.Sprintf("foreign key %s on %s references %s, outside the copied schemas: not created", pgx.Identifier{con}.Sanitize(), t.QName(), pgx.Identifier{refSchema, refTable}.Sanitize())
			if refSchema == "auth" || refSchema == "storage" {
				what += "; Supabase's users and files move as the users and files kinds, into their own tables: point it at them (or drop it)"
			}
			c.Notes = append(c.Notes, Note{Platform: refSchema == "auth" || refSchema == "storage", What: what, SQL: stmt})
		case typ == "f":
			t.ForeignKeys = append(t.ForeignKeys, [2]string{con, def})
		case typ == "c":
			t.Checks = append(t.Checks, [2]string{con, def})
		default:
			if typ == "p" {
				t.Key = cols
			}
			t.Keys = append(t.Keys, [2]string{con, def})
		}
		return nil
	})
}

func (c *Catalog) loadIndexes(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, t.relname, pg_get_indexdef(i.indexrelid),
			coalesce(`+fmt.Sprintf(callsFunctions, "'pg_class'::regclass", "i.indexrelid")+`, '')
		FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE t.relkind = 'r' AND n.nspname = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
		ORDER BY n.nspname, t.relname, ic.relname`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, name, def, calls string
		if err := r.Scan(&schema, &name, &def, &calls); err != nil {
			return err
		}
		t := c.table(schema, name)
		if t == nil {
			return nil
		}
		if calls != "" {
			c.Notes = append(c.Notes, Note{Platform: RefersToPlatform(def),
				What: fmt.Sprintf("an index on %s calls %s: not created; create it once the function exists on the target", t.QName(), calls), SQL: def})
			return nil
		}
		t.Indexes = append(t.Indexes, def)
		return nil
	})
}

func (c *Catalog) loadPolicies(ctx context.Context, tx pgx.Tx) error {
	for _, t := range c.Tables {
		if t.RowSecurity {
			c.Notes = append(c.Notes, Note{
				What: fmt.Sprintf("row-level security is enabled on %s at the source and not on the target: enable it once its policies are adapted", t.QName()),
				SQL:  fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", t.QName())})
		}
	}
	return collect(ctx, tx, `SELECT n.nspname, t.relname, p.polname, p.polpermissive,
			CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
			ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END FROM unnest(p.polroles) r),
			coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
		FROM pg_policy p JOIN pg_class t ON t.oid = p.polrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = ANY($1) ORDER BY n.nspname, t.relname, p.polname`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, table, name, cmd, using, check string
		var permissive bool
		var roles []string
		if err := r.Scan(&schema, &table, &name, &permissive, &cmd, &roles, &using, &check); err != nil {
			return err
		}
		sql := fmt.Sprintf("CREATE POLICY %s ON %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{schema, table}.Sanitize())
		if !permissive {
			sql += " AS RESTRICTIVE"
		}
		sql += " FOR " + cmd + " TO " + strings.Join(roles, ", ")
		if using != "" {
			sql += " USING (" + using + ")"
		}
		if check != "" {
			sql += " WITH CHECK (" + check + ")"
		}
		note := Note{SQL: sql, Platform: RefersToPlatform(using + " " + check)}
		if note.Platform {
			note.What = fmt.Sprintf("RLS policy %s on %s calls Supabase's auth or storage schema: not copied; rewrite it for the new backend's authentication (auth.uid() is the signed-in user's id)",
				pgx.Identifier{name}.Sanitize(), pgx.Identifier{schema, table}.Sanitize())
		} else {
			note.What = fmt.Sprintf("RLS policy %s on %s (for %s): not copied, as row-level security is not enabled on the target; create it there, with the roles it names, if the app relies on it",
				pgx.Identifier{name}.Sanitize(), pgx.Identifier{schema, table}.Sanitize(), strings.Join(roles, ", "))
		}
		c.Notes = append(c.Notes, note)
		return nil
	})
}

func (c *Catalog) loadFunctions(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p', 'w')
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
		ORDER BY n.nspname, p.proname, p.oid`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, name, args, def string
		if err := r.Scan(&schema, &name, &args, &def); err != nil {
			return err
		}
		q := pgx.Identifier{schema, name}.Sanitize() + "(" + args + ")"
		note := Note{SQL: def, Platform: RefersToPlatform(def)}
		if note.Platform {
			note.What = fmt.Sprintf("function %s calls Supabase's auth or storage schema: not copied; rewrite it for the new backend", q)
		} else {
			note.What = fmt.Sprintf("function %s: not copied (functions run with the source's roles and settings); create it on the target from its definition if the app needs it", q)
		}
		c.Notes = append(c.Notes, note)
		return nil
	})
}

func (c *Catalog) loadTriggers(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT n.nspname, t.relname, g.tgname, pg_get_triggerdef(g.oid), pg_get_functiondef(g.tgfoid)
		FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE NOT g.tgisinternal AND n.nspname = ANY($1) ORDER BY n.nspname, t.relname, g.tgname`, []any{c.Schemas}, func(r pgx.Rows) error {
		var schema, table, name, def, fn string
		if err := r.Scan(&schema, &table, &name, &def, &fn); err != nil {
			return err
		}
		note := Note{SQL: def, Platform: RefersToPlatform(def + "\n" + fn)}
		q := pgx.Identifier{name}.Sanitize() + " on " + pgx.Identifier{schema, table}.Sanitize()
		if note.Platform {
			note.What = fmt.Sprintf("trigger %s runs a function that calls Supabase's auth or storage schema: not copied; rewrite it for the new backend", q)
		} else {
			note.What = fmt.Sprintf("trigger %s: not copied (it would fire during the copy); create it, with its function, after the migration", q)
		}
		c.Notes = append(c.Notes, note)
		return nil
	})
}

// loadOthers reports the source's extensions, which the target may lack.
func (c *Catalog) loadOthers(ctx context.Context, tx pgx.Tx) error {
	return collect(ctx, tx, `SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname <> 'plpgsql' ORDER BY e.extname`, nil, func(r pgx.Rows) error {
		var name, schema string
		if err := r.Scan(&name, &schema); err != nil {
			return err
		}
		c.Notes = append(c.Notes, Note{Extension: name,
			What: fmt.Sprintf("extension %s (schema %s) is installed at the source: not installed on the target; install it there if the app uses it (types it provides are checked when tables are created)", name, schema),
			SQL:  fmt.Sprintf("CREATE EXTENSION IF NOT EXISTS %s", pgx.Identifier{name}.Sanitize())})
		return nil
	})
}

// PartitionRange is a keyed partition's bounds: JSON arrays of the key's
// text values, nil for an open end. It is what a copy's first batch of a
// partition clears on the target before writing (see sinks).
type PartitionRange struct {
	Start []string `json:"start,omitempty"`
	End   []string `json:"end,omitempty"`
}

// EncodeKey encodes a key's text values as a cursor.
func EncodeKey(vals []string) string {
	b, _ := json.Marshal(vals)
	return string(b)
}

// DecodeKey is EncodeKey's inverse.
func DecodeKey(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("reading the key %q: %w", s, err)
	}
	return v, nil
}
