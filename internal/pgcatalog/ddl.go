package pgcatalog

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Object is one object of the catalog to create on the target, with the
// statement that creates it.
type Object struct {
	// Kind is "schema", "enum", "domain", "sequence", "table", "owned-by",
	// "constraint" (a key), "index" or "foreign-key".
	Kind string
	// Schema and Name name it; for keys, indexes and foreign keys Name is
	// the table's and Extra the index's or constraint's.
	Schema, Name, Extra string
	What, SQL           string
	// Labels are an enum's, to compare with an existing one.
	Labels []string
	// Table is the table of "table", "index" and "foreign-key" objects.
	Table *Table
}

// Before lists what is created before the rows load, in order: schemas,
// enums, domains, sequences, tables (with their check constraints), then
// the sequences' OWNED BY.
func (c *Catalog) Before() []Object {
	var out []Object
	for _, s := range c.Schemas {
		out = append(out, Object{Kind: "schema", Name: s, What: "create schema " + pgx.Identifier{s}.Sanitize(),
			SQL: "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{s}.Sanitize()})
	}
	for _, e := range c.Enums {
		q := pgx.Identifier{e.Schema, e.Name}.Sanitize()
		labels := make([]string, len(e.Labels))
		for i, l := range e.Labels {
			labels[i] = Literal(l)
		}
		out = append(out, Object{Kind: "enum", Schema: e.Schema, Name: e.Name, Labels: e.Labels, What: "create enum " + q,
			SQL: fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", q, strings.Join(labels, ", "))})
	}
	for _, d := range c.Domains {
		q := pgx.Identifier{d.Schema, d.Name}.Sanitize()
		sql := fmt.Sprintf("CREATE DOMAIN %s AS %s", q, d.Base)
		if d.Collation != "" {
			sql += " COLLATE " + d.Collation
		}
		if d.Default != "" {
			sql += " DEFAULT " + d.Default
		}
		if d.NotNull {
			sql += " NOT NULL"
		}
		for _, k := range d.Constraints {
			sql += " " + k
		}
		out = append(out, Object{Kind: "domain", Schema: d.Schema, Name: d.Name, What: "create domain " + q, SQL: sql})
	}
	for _, s := range c.Sequences {
		sql := fmt.Sprintf("CREATE SEQUENCE IF NOT EXISTS %s AS %s INCREMENT BY %d MINVALUE %d MAXVALUE %d START WITH %d CACHE %d",
			s.Ident(), s.Type, s.Inc, s.Min, s.Max, s.Start, s.Cache)
		if s.Cycle {
			sql += " CYCLE"
		}
		out = append(out, Object{Kind: "sequence", Schema: s.Schema, Name: s.Name, What: "create sequence " + s.Ident(), SQL: sql})
	}
	for _, t := range c.Tables {
		out = append(out, Object{Kind: "table", Schema: t.Schema, Name: t.Name, Table: t,
			What: fmt.Sprintf("create table %s (%d columns, key %s)", t.QName(), len(t.Columns), keyText(t)), SQL: t.Create()})
	}
	for _, s := range c.Sequences {
		if len(s.OwnedBy) == 3 {
			out = append(out, Object{Kind: "owned-by", Schema: s.Schema, Name: s.Name,
				What: fmt.Sprintf("sequence %s owned by %s", s.Ident(), pgx.Identifier{s.OwnedBy[0], s.OwnedBy[1], s.OwnedBy[2]}.Sanitize()),
				SQL:  fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s", s.Ident(), pgx.Identifier{s.OwnedBy[0], s.OwnedBy[1], s.OwnedBy[2]}.Sanitize())})
		}
	}
	return out
}

func keyText(t *Table) string {
	if len(t.Key) == 0 {
		return "none"
	}
	return quoteAll(t.Key)
}

// After lists what is created once every row is in: primary, unique and
// exclusion constraints, indexes (that back no constraint), then foreign
// keys (which need the keys they reference).
func (c *Catalog) After() []Object {
	var out []Object
	for _, t := range c.Tables {
		out = append(out, t.keys()...)
	}
	for _, t := range c.Tables {
		out = append(out, t.indexes()...)
	}
	for _, t := range c.Tables {
		out = append(out, t.foreignKeys()...)
	}
	return out
}

// KeysAndIndexes lists the table's part of After without its foreign
// keys: its primary, unique and exclusion constraints, then its indexes.
// It costs what the table has, not what the catalog has.
func (t *Table) KeysAndIndexes() []Object {
	return append(t.keys(), t.indexes()...)
}

func (t *Table) keys() []Object {
	out := make([]Object, 0, len(t.Keys))
	for _, k := range t.Keys {
		out = append(out, Object{Kind: "constraint", Schema: t.Schema, Name: t.Name, Extra: k[0], Table: t,
			What: fmt.Sprintf("add %s %s to %s", strings.ToLower(strings.SplitN(k[1], " (", 2)[0]), pgx.Identifier{k[0]}.Sanitize(), t.QName()),
			SQL:  fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", t.QName(), pgx.Identifier{k[0]}.Sanitize(), k[1])})
	}
	return out
}

func (t *Table) indexes() []Object {
	out := make([]Object, 0, len(t.Indexes))
	for _, def := range t.Indexes {
		name := indexName(def)
		out = append(out, Object{Kind: "index", Schema: t.Schema, Name: t.Name, Extra: name, Table: t,
			What: fmt.Sprintf("create index %s on %s", name, t.QName()), SQL: def})
	}
	return out
}

func (t *Table) foreignKeys() []Object {
	out := make([]Object, 0, len(t.ForeignKeys))
	for _, fk := range t.ForeignKeys {
		out = append(out, Object{Kind: "foreign-key", Schema: t.Schema, Name: t.Name, Extra: fk[0], Table: t,
			What: fmt.Sprintf("add foreign key %s to %s", pgx.Identifier{fk[0]}.Sanitize(), t.QName()),
			SQL:  fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", t.QName(), pgx.Identifier{fk[0]}.Sanitize(), fk[1])})
	}
	return out
}

// indexName returns the (unquoted) name of the index pg_get_indexdef
// defines: CREATE [UNIQUE] INDEX name ON ...
func indexName(def string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(def, "CREATE UNIQUE INDEX "), "CREATE INDEX ")
	if strings.HasPrefix(rest, `"`) {
		var b strings.Builder
		for i := 1; i < len(rest); i++ {
			if rest[i] == '"' {
				if i+1 < len(rest) && rest[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(rest[i])
		}
		return b.String()
	}
	name, _, _ := strings.Cut(rest, " ")
	return name
}

// Create is the table's CREATE TABLE: columns with their types, collations,
// defaults, NOT NULL, generated and identity clauses, and its check
// constraints (keys come after the rows: After).
func (t *Table) Create() string {
	var parts []string
	for _, c := range t.Columns {
		p := pgx.Identifier{c.Name}.Sanitize() + " " + c.Type
		if c.Collation != "" {
			p += " COLLATE " + c.Collation
		}
		switch {
		case c.Generated != "":
			p += " GENERATED ALWAYS AS (" + c.Generated + ") STORED"
		case c.Identity == "a":
			p += " GENERATED ALWAYS AS IDENTITY (" + c.IdentitySeq + ")"
		case c.Identity == "d":
			p += " GENERATED BY DEFAULT AS IDENTITY (" + c.IdentitySeq + ")"
		case c.Default != "":
			p += " DEFAULT " + c.Default
		}
		if c.NotNull && c.Identity == "" {
			p += " NOT NULL"
		}
		parts = append(parts, p)
	}
	for _, k := range t.Checks {
		parts = append(parts, "CONSTRAINT "+pgx.Identifier{k[0]}.Sanitize()+" "+k[1])
	}
	return fmt.Sprintf("CREATE TABLE %s (\n  %s\n)", t.QName(), strings.Join(parts, ",\n  "))
}

// Literal quotes s as an SQL string literal (standard_conforming_strings
// on, which PostgreSQL has defaulted to since 9.1).
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// KeyList is the table's key columns, quoted, comma-separated.
func (t *Table) KeyList() string { return quoteAll(t.Key) }

// KeyCond returns "(k1, k2) op ($n::T1, $n+1::T2)" for the key, with
// parameters numbered from n (text values cast to the key's types).
func (t *Table) KeyCond(op string, n int) string {
	types := t.KeyTypes()
	ps := make([]string, len(types))
	for i, ty := range types {
		ps[i] = "$" + strconv.Itoa(n+i) + "::text::" + ty
	}
	return "(" + t.KeyList() + ") " + op + " (" + strings.Join(ps, ", ") + ")"
}

// SessionSettings make text output the same on every server: what the
// copy in text format and the comparison rely on.
const SessionSettings = `SET DateStyle = ISO, YMD; SET IntervalStyle = postgres; SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET bytea_output = hex; SET synchronize_seqscans = off`

// LocalSettings is SessionSettings for one transaction.
const LocalSettings = `SET LOCAL DateStyle = ISO, YMD; SET LOCAL IntervalStyle = postgres; SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = hex`

// CopyColumns is the list of copied columns, quoted.
func (t *Table) CopyColumns() string {
	var names []string
	for _, c := range t.Copied() {
		names = append(names, c.Name)
	}
	return quoteAll(names)
}

// CopyIn is the target's COPY statement for the table's rows in the
// table's format (Binary). A table of a loaded catalog computed it once,
// at Load.
func (t *Table) CopyIn() string {
	if t.copy != nil {
		return t.copy.in
	}
	return t.copyIn()
}

func (t *Table) copyIn() string {
	format := "text"
	if t.Binary() {
		format = "binary"
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT %s)", t.QName(), t.CopyColumns(), format)
}

// CompareQuery reads every column of the table as text, and its key: for
// a keyed table the key columns' text, for a keyless one the MD5 of the
// whole row's text; ordered by them, each COLLATE "C" (byte order), the
// same on both sides whatever their collations. The key's values are the
// last columns.
func (t *Table) CompareQuery() string {
	var cols []string
	for _, c := range t.Columns {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize()+"::text")
	}
	var keys []string
	if len(t.Key) > 0 {
		for _, k := range t.Key {
			keys = append(keys, pgx.Identifier{k}.Sanitize()+"::text")
		}
	} else {
		var all []string
		for _, c := range t.Columns {
			all = append(all, pgx.Identifier{c.Name}.Sanitize())
		}
		keys = []string{"md5(ROW(" + strings.Join(all, ", ") + ")::text)"}
	}
	order := make([]string, len(keys))
	for i := range keys {
		order[i] = "(" + keys[i] + `) COLLATE "C"`
	}
	return fmt.Sprintf("SELECT %s, %s FROM %s ORDER BY %s", strings.Join(cols, ", "), strings.Join(keys, ", "), t.QName(), strings.Join(order, ", "))
}
