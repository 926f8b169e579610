package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
)

// TablesConfig configures the sink of a PostgreSQL source's tables.
type TablesConfig struct {
	// Catalog is the source's definition of the copied schemas.
	Catalog *pgcatalog.Catalog
	// Owner is the source the tables are claimed for (see Owner).
	Owner Owner
	Log   *slog.Logger
}

// TablesSink reproduces a source's tables (pgcatalog) on the target and
// writes their rows with COPY FROM STDIN.
//
// Prepare creates, in one transaction and after claiming the tables for
// the source (ClaimTables), what the catalog defines and the target lacks:
// schemas, enums, domains, sequences and tables with their check
// constraints. An existing object is kept
// when it is the same (an enum with the same labels, a table with the
// same columns, types, NOT NULL and generated columns); a different one
// stops Prepare with every difference named, before anything is written.
//
// Write copies a batch of one table's rows in the table's COPY format.
// The first row of a partition read from its start carries the
// partition's range (pgcatalog.FieldClear): the target's rows in that
// range are deleted first, so that a new run over rows an earlier run
// copied replaces them (within one run, the rows after a checkpoint are
// never in the target yet). A record of the index stream
// (pgcatalog.FieldIndexes) creates its table's primary, unique and
// exclusion constraints and indexes that are missing (so the first load
// builds each index once, as pg_restore does; the stream's partitions, one
// per table, run in parallel). The record of the finish stream creates the
// foreign keys, and any constraint or index still missing, and sets the
// sequences to the source's values. Each in the batch's transaction.
type TablesSink struct {
	cfg TablesConfig
	// syncing: Prepare keeps the foreign keys (ForSync).
	syncing bool
	// shapes are the tables ApplyChanges has written to (tableShape).
	shapesMu sync.Mutex
	shapes   map[*pgcatalog.Table]*tableShape
}

var _ loaders.Sink = (*TablesSink)(nil)

// NewTables returns the sink.
func NewTables(cfg TablesConfig) *TablesSink {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &TablesSink{cfg: cfg}
}

// Tables lists the target tables, for ownership checks.
func (s *TablesSink) Tables() []pgx.Identifier {
	var out []pgx.Identifier
	for _, t := range s.cfg.Catalog.Tables {
		out = append(out, t.Ident())
	}
	return out
}

// PlannedDDL returns what Prepare would run, then what the finish stream
// would create, on the target as it is; the error names every difference
// that would make Prepare refuse. It only reads.
func (s *TablesSink) PlannedDDL(ctx context.Context, db loaders.DB) ([]Statement, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the target: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	before, problems, err := s.missing(ctx, tx, s.cfg.Catalog.Before())
	if err != nil {
		return nil, err
	}
	after, _, err := s.missing(ctx, tx, s.cfg.Catalog.After())
	if err != nil {
		return nil, err
	}
	if err := CheckTableOwners(ctx, tx, s.cfg.Owner, s.Tables()); err != nil {
		problems = append(problems, err.Error())
	}
	var out []Statement
	for _, o := range append(before, after...) {
		out = append(out, Statement{What: o.What, SQL: o.SQL})
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// Prepare creates what the target lacks (see TablesSink).
func (s *TablesSink) Prepare(ctx context.Context, db loaders.DB) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("preparing the tables: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := ClaimTables(ctx, tx, s.cfg.Owner, s.Tables()); err != nil {
		return err
	}
	todo, problems, err := s.missing(ctx, tx, s.cfg.Catalog.Before())
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("the target cannot take the source's tables as they are:\n  %s", strings.Join(problems, "\n  "))
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return fmt.Errorf("preparing the tables: %w", err)
	}
	for _, o := range todo {
		if _, err := tx.Exec(ctx, o.SQL); err != nil {
			return fmt.Errorf("%s: %w", o.What, err)
		}
		s.cfg.Log.Debug("created", "what", o.What)
	}
	// Foreign keys an earlier run created are dropped while rows load
	// (a partition's rows are replaced, and tables load in any order);
	// the finish stream creates them again. Not when syncing a finished
	// copy.
	for _, o := range s.cfg.Catalog.After() {
		if o.Kind != "foreign-key" || s.syncing {
			continue
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", o.Table.QName(), pgx.Identifier{o.Extra}.Sanitize())); err != nil {
			return fmt.Errorf("dropping foreign key %s of %s while rows load: %w", o.Extra, o.Table.QName(), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("preparing the tables: %w", err)
	}
	return nil
}

// missing returns the objects of objs the target lacks, and the
// differences between the target's existing objects and objs.
func (s *TablesSink) missing(ctx context.Context, tx pgx.Tx, objs []pgcatalog.Object) ([]pgcatalog.Object, []string, error) {
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return nil, nil, fmt.Errorf("reading the target: %w", err)
	}
	var todo []pgcatalog.Object
	var problems []string
	created := map[string]bool{}
	for _, o := range objs {
		q := pgx.Identifier{o.Schema, o.Name}.Sanitize()
		var exists bool
		var err error
		switch o.Kind {
		case "schema":
			err = tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", o.Name).Scan(&exists)
		case "enum":
			var labels []string
			err = tx.QueryRow(ctx, "SELECT coalesce(array_agg(enumlabel::text ORDER BY enumsortorder), '{}') FROM pg_enum WHERE enumtypid = to_regtype($1)", q).Scan(&labels)
			if err == nil {
				err = tx.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", q).Scan(&exists)
			}
			if err == nil && exists && !slices.Equal(labels, o.Labels) {
				problems = append(problems, fmt.Sprintf("the target's type %s is not the enum (%s) of the source", q, strings.Join(o.Labels, ", ")))
			}
		case "domain", "sequence":
			err = tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL OR to_regtype($1) IS NOT NULL", q).Scan(&exists)
		case "table":
			exists, err = s.checkTable(ctx, tx, o.Table, &problems)
			created[q] = !exists
		case "owned-by":
			exists = true
			for _, sq := range s.cfg.Catalog.Sequences {
				if sq.Schema == o.Schema && sq.Name == o.Name && len(sq.OwnedBy) == 3 {
					exists = !created[pgx.Identifier{sq.OwnedBy[0], sq.OwnedBy[1]}.Sanitize()]
				}
			}
		case "index":
			err = tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{o.Schema, o.Extra}.Sanitize()).Scan(&exists)
		case "foreign-key", "constraint":
			err = tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2)", q, o.Extra).Scan(&exists)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the target's %s %s: %w", o.Kind, q, err)
		}
		if !exists {
			todo = append(todo, o)
		}
	}
	return todo, problems, nil
}

// checkTable reports whether t exists on the target, adding to problems
// how an existing one differs from the source's and the types of t's
// columns the target lacks.
func (s *TablesSink) checkTable(ctx context.Context, tx pgx.Tx, t *pgcatalog.Table, problems *[]string) (bool, error) {
	for _, c := range t.Columns {
		// The type (an array's element type) is built in, or an enum or a
		// domain Prepare creates; anything else (an extension's type) must
		// be on the target already.
		schema, kind := c.TypeSchema, c.TypeKind
		if c.ElemKind != "" {
			schema, kind = c.ElemSchema, c.ElemKind
		}
		if schema == "pg_catalog" || (kind == "e" || kind == "d") && slices.Contains(s.cfg.Catalog.Schemas, schema) {
			continue
		}
		var ok bool
		if err := tx.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", c.Type).Scan(&ok); err != nil {
			return false, err
		}
		if !ok {
			*problems = append(*problems, fmt.Sprintf("column %s.%s has the type %s, which the target lacks (install the extension that provides it there first)",
				t.QName(), pgx.Identifier{c.Name}.Sanitize(), c.Type))
		}
	}
	rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, t.QName())
	if err != nil {
		return false, err
	}
	type col struct {
		name, typ      string
		notNull, gener bool
	}
	have, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		err := r.Scan(&c.name, &c.typ, &c.notNull, &c.gener)
		return c, err
	})
	if err != nil {
		return false, err
	}
	if len(have) == 0 {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.QName()).Scan(&exists); err != nil || !exists {
			return false, err
		}
	}
	var want []col
	for _, c := range t.Columns {
		want = append(want, col{c.Name, c.Type, c.NotNull, c.Generated != ""})
	}
	if !slices.Equal(have, want) {
		var h, w []string
		for _, c := range have {
			h = append(h, pgx.Identifier{c.name}.Sanitize()+" "+c.typ)
		}
		for _, c := range want {
			w = append(w, pgx.Identifier{c.name}.Sanitize()+" "+c.typ)
		}
		*problems = append(*problems, fmt.Sprintf("the target already has a table %s that differs from the source's (target: %s; source: %s): drop or rename it, or copy another schema",
			t.QName(), strings.Join(h, ", "), strings.Join(w, ", ")))
	}
	return true, nil
}

// Notes returns the catalog's notes (what is not copied) as they apply to
// the target db: an extension the target has installed is left out, and
// one it lacks says whether the target's server can install it.
func (s *TablesSink) Notes(ctx context.Context, db loaders.DB) ([]pgcatalog.Note, error) {
	installed, available := map[string]bool{}, map[string]bool{}
	rows, err := db.Query(ctx, `SELECT name, installed_version IS NOT NULL FROM pg_available_extensions`)
	if err != nil {
		return nil, fmt.Errorf("reading the target's extensions: %w", err)
	}
	for rows.Next() {
		var name string
		var inst bool
		if err := rows.Scan(&name, &inst); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the target's extensions: %w", err)
		}
		available[name], installed[name] = true, inst
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the target's extensions: %w", err)
	}
	var out []pgcatalog.Note
	for _, n := range s.cfg.Catalog.Notes {
		if n.Extension != "" {
			switch {
			case installed[n.Extension]:
				continue
			case available[n.Extension]:
				n.What = fmt.Sprintf("extension %s is installed at the source, not on the target (its server has it): install it if the app uses it", n.Extension)
			default:
				n.What = fmt.Sprintf("extension %s is installed at the source, and the target's server lacks it: the app's uses of it need another way there", n.Extension)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// Write copies recs (see TablesSink) inside tx.
func (s *TablesSink) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(recs))}
	for i := 0; i < len(recs); {
		if v, ok := recs[i].Fields[pgcatalog.FieldIndexes]; ok {
			if err := s.indexes(ctx, tx, v.StringValue()); err != nil {
				return out, err
			}
			out.Tables[i] = pgcatalog.IndexStream
			out.AddChanged(pgcatalog.IndexStream, 1)
			i++
			continue
		}
		if v, ok := recs[i].Fields[pgcatalog.FieldSequences]; ok {
			if err := s.finish(ctx, tx, v.StringValue()); err != nil {
				return out, err
			}
			out.Tables[i] = pgcatalog.FinishStream
			out.AddChanged(pgcatalog.FinishStream, 1)
			i++
			continue
		}
		name := recs[i].Fields[pgcatalog.FieldTable].StringValue()
		t := s.cfg.Catalog.Find(name)
		if t == nil {
			return out, fmt.Errorf("writing rows of %s: the table is not in the source's catalog", name)
		}
		j := i
		for j < len(recs) && recs[j].Fields[pgcatalog.FieldTable].StringValue() == name {
			out.Tables[j] = name
			j++
		}
		if err := s.copy(ctx, tx, t, recs[i:j]); err != nil {
			return out, err
		}
		out.AddChanged(name, int64(j-i))
		i = j
	}
	return out, nil
}

// copy writes rows of t with COPY FROM STDIN, after clearing the
// partition's range when the first row says so.
func (s *TablesSink) copy(ctx context.Context, tx pgx.Tx, t *pgcatalog.Table, recs []record.Record) error {
	if v, ok := recs[0].Fields[pgcatalog.FieldClear]; ok {
		if err := s.clear(ctx, tx, t, v.StringValue()); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	bin := t.Binary()
	if bin {
		buf.Write(pgcatalog.BinaryHeader)
	}
	for _, r := range recs {
		buf.Write(r.Fields[pgcatalog.FieldTuple].BytesValue())
	}
	if bin {
		buf.Write(pgcatalog.BinaryTrailer)
	}
	conn := tx.Conn()
	if conn == nil {
		// Begin the transaction (a lazy one begins with its first statement).
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			return fmt.Errorf("copying rows into %s: %w", t.QName(), err)
		}
		conn = tx.Conn()
	}
	if !bin {
		if err := conn.PgConn().Exec(ctx, pgcatalog.LocalSettings).Close(); err != nil {
			return fmt.Errorf("copying rows into %s: %w", t.QName(), err)
		}
	}
	if _, err := conn.PgConn().CopyFrom(ctx, &buf, t.CopyIn()); err != nil {
		return fmt.Errorf("copying %d rows into %s (first %s): %w", len(recs), t.QName(), recs[0].Key, err)
	}
	return nil
}

// clear deletes the target's rows in a partition's range (all of a
// keyless table's).
func (s *TablesSink) clear(ctx context.Context, tx pgx.Tx, t *pgcatalog.Table, rangeJSON string) error {
	sql := "DELETE FROM " + t.QName()
	var args []any
	if len(t.Key) > 0 {
		var rng pgcatalog.PartitionRange
		if err := json.Unmarshal([]byte(rangeJSON), &rng); err != nil {
			return fmt.Errorf("reading the range of a partition of %s: %w", t.QName(), err)
		}
		var conds []string
		if rng.Start != nil {
			conds = append(conds, t.KeyCond(">=", len(args)+1))
			for _, v := range rng.Start {
				args = append(args, v)
			}
		}
		if rng.End != nil {
			conds = append(conds, t.KeyCond("<", len(args)+1))
			for _, v := range rng.End {
				args = append(args, v)
			}
		}
		if len(conds) > 0 {
			sql += " WHERE " + strings.Join(conds, " AND ")
		}
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("clearing a partition of %s before copying it: %w", t.QName(), err)
	}
	return nil
}

// indexes creates the missing primary, unique and exclusion constraints
// and indexes of the table qname.
func (s *TablesSink) indexes(ctx context.Context, tx pgx.Tx, qname string) error {
	t := s.cfg.Catalog.Find(qname)
	if t == nil {
		return fmt.Errorf("creating the keys and indexes of %s: the table is not in the source's catalog", qname)
	}
	return s.create(ctx, tx, t.KeysAndIndexes())
}

// create creates the objects of objs the target lacks.
func (s *TablesSink) create(ctx context.Context, tx pgx.Tx, objs []pgcatalog.Object) error {
	todo, _, err := s.missing(ctx, tx, objs)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = DEFAULT"); err != nil {
		return err
	}
	for _, o := range todo {
		if _, err := tx.Exec(ctx, o.SQL); err != nil {
			return fmt.Errorf("%s: %w", o.What, err)
		}
	}
	return nil
}

// finish creates the missing foreign keys (and keys and indexes) and sets
// the sequences to the source's values (seqJSON).
func (s *TablesSink) finish(ctx context.Context, tx pgx.Tx, seqJSON string) error {
	if err := s.create(ctx, tx, s.cfg.Catalog.After()); err != nil {
		return err
	}
	var vals []pgcatalog.SequenceValue
	if err := json.Unmarshal([]byte(seqJSON), &vals); err != nil {
		return fmt.Errorf("reading the source's sequence values: %w", err)
	}
	for _, v := range vals {
		var err error
		if v.Name != "" {
			_, err = tx.Exec(ctx, "SELECT setval($1::text::regclass, $2, $3)", v.Name, v.Value, v.IsCalled)
		} else {
			_, err = tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)", v.Table, v.Column, v.Value, v.IsCalled)
		}
		if err != nil {
			return fmt.Errorf("setting sequence %s%s to the source's value: %w", v.Name, v.Table, err)
		}
	}
	return nil
}
