package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// ForSync makes Prepare leave the target's foreign keys in place: sync
// follows a finished copy, whose foreign keys exist and stay.
func (s *TablesSink) ForSync() { s.syncing = true }

// ApplyChanges applies changes to the tables in order, inside tx, with
// session_replication_role = replica (as PostgreSQL's own apply worker
// does: foreign keys and triggers do not fire), so that changes replayed
// over rows the copy read later converge, in any table order. It takes
// two shapes of records:
//
//   - a change stream's (a FieldOp): an insert is an upsert by primary
//     key (a plain insert into a keyless table); an update sets the
//     columns the source sent (not its unchanged TOASTed ones) on the row
//     its old identity names — by primary key, or, for a keyless table,
//     on exactly one row equal to the old row (REPLICA IDENTITY FULL) —
//     and, when no row has that key and every column was sent, inserts it;
//     a delete removes the row with the key, or one row equal to the old
//     row; a truncate deletes every row;
//   - a comparison's (a catch-up): an upsert writes the row whole from its
//     columns' text; a delete (only the key) removes the row with that
//     key, or, for a keyless table (key: the row's MD5 and its rank), one
//     row with that MD5.
//
// A write colliding with a unique constraint besides the primary key is
// resolved as a replay (see write). soft deletes are not supported for
// tables (the caller refuses them).
// It returns how many changes wrote and deleted rows.
func (s *TablesSink) ApplyChanges(ctx context.Context, tx pgx.Tx, changes []record.Change, soft bool) (applied, deleted int64, err error) {
	if soft {
		return 0, 0, fmt.Errorf("tables cannot be synced with soft deletes")
	}
	if len(changes) == 0 {
		return 0, 0, nil
	}
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return 0, 0, fmt.Errorf("applying changes to tables needs session_replication_role = replica on the target "+
			"(a superuser, or GRANT SET ON PARAMETER session_replication_role TO the role sync connects as): %w", err)
	}
	pc := tx.Conn().PgConn()
	if err := pc.Exec(ctx, pgcatalog.LocalSettings).Close(); err != nil {
		return 0, 0, fmt.Errorf("applying changes to tables: %w", err)
	}
	for _, c := range changes {
		name := c.Record.Fields[pgcatalog.FieldTable].StringValue()
		if name == "" {
			name, _, _ = pgcatalog.SplitKey(c.Record.Key)
		}
		t := s.cfg.Catalog.Find(name)
		if t == nil {
			return applied, deleted, fmt.Errorf("applying a change of %s: the table is not in the source's catalog", c.Record.Key)
		}
		a := tableApply{tableShape: s.shape(t), pc: pc}
		var del bool
		if op, ok := c.Record.Fields[pgcatalog.FieldOp]; ok {
			del, err = a.change(ctx, op.StringValue(), c.Record.Fields)
		} else if c.Op == record.OpDelete {
			del, err = true, a.deleteKey(ctx, c.Record.Key)
		} else {
			err = a.upsertFields(ctx, c.Record.Fields)
		}
		if err != nil {
			return applied, deleted, fmt.Errorf("applying a change of %s: %w", c.Record.Key, err)
		}
		if del {
			deleted++
		} else {
			applied++
		}
	}
	return applied, deleted, nil
}

// tableApply writes changes to one table.
type tableApply struct {
	*tableShape
	pc *pgconn.PgConn
}

// tableShape is what applying changes to a table needs of its definition,
// worked out once per table rather than for every change.
type tableShape struct {
	t     *pgcatalog.Table
	qname string
	// cols are the copied columns (Table.Copied), names their quoted
	// names, key the primary key's positions among them.
	cols  []pgcatalog.Column
	names []string
	key   []int
	// otherUnique: the table has a unique constraint or index besides its
	// primary key.
	otherUnique bool
	// upsert writes a whole row (see insert).
	upsert string
}

// shape returns t's tableShape, made at its first change.
func (s *TablesSink) shape(t *pgcatalog.Table) *tableShape {
	s.shapesMu.Lock()
	defer s.shapesMu.Unlock()
	if sh := s.shapes[t]; sh != nil {
		return sh
	}
	sh := &tableShape{t: t, qname: t.QName(), cols: t.Copied(), key: t.KeyPositions(), otherUnique: len(t.Keys) > 1}
	for _, ix := range t.Indexes {
		if strings.HasPrefix(ix, "CREATE UNIQUE INDEX") {
			sh.otherUnique = true
		}
	}
	sh.names = make([]string, len(sh.cols))
	ph := make([]string, len(sh.cols))
	overriding := ""
	for i, c := range sh.cols {
		sh.names[i], ph[i] = pgx.Identifier{c.Name}.Sanitize(), fmt.Sprintf("$%d", i+1)
		if c.Identity == "a" {
			overriding = " OVERRIDING SYSTEM VALUE"
		}
	}
	sql := "INSERT INTO " + sh.qname + " (" + strings.Join(sh.names, ", ") + ")" + overriding + " VALUES (" + strings.Join(ph, ", ") + ")"
	if len(t.Key) > 0 {
		var sets []string
		for i, c := range sh.cols {
			if !slices.Contains(t.Key, c.Name) && !sh.alwaysIdentity(i) {
				sets = append(sets, sh.names[i]+" = EXCLUDED."+sh.names[i])
			}
		}
		sql += " ON CONFLICT (" + t.KeyList() + ")"
		if len(sets) == 0 {
			sql += " DO NOTHING"
		} else {
			sql += " DO UPDATE SET " + strings.Join(sets, ", ")
		}
	}
	sh.upsert = sql
	if s.shapes == nil {
		s.shapes = map[*pgcatalog.Table]*tableShape{}
	}
	s.shapes[t] = sh
	return sh
}

// write runs sql, which writes the row row (every copied column; nil when
// not all are known) of a table with a primary key. A unique constraint
// other than the primary key that the row violates means another row
// holds one of its values in the target: a row the copy read later, after
// the value moved to it at the source (the source never held both at
// once) — a change replayed over newer rows. That row is deleted (the
// stream writes it again when it gets to the change that gave it the
// value) and sql runs again. Other errors are returned.
func (a tableApply) write(ctx context.Context, sql string, args, row []*string) (int64, error) {
	if row == nil || len(a.t.Key) == 0 || !a.otherUnique {
		return a.exec(ctx, sql, args)
	}
	for tries := 0; ; tries++ {
		if err := a.pc.Exec(ctx, "SAVEPOINT baasmigrate_row").Close(); err != nil {
			return 0, err
		}
		n, err := a.exec(ctx, sql, args)
		if err == nil {
			return n, a.pc.Exec(ctx, "RELEASE SAVEPOINT baasmigrate_row").Close()
		}
		if rerr := a.pc.Exec(ctx, "ROLLBACK TO SAVEPOINT baasmigrate_row").Close(); rerr != nil {
			return 0, err
		}
		var pgErr *pgconn.PgError
		if tries >= 8 || !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			return 0, err
		}
		cols, ok, qerr := a.uniqueColumns(ctx, pgErr.ConstraintName)
		if qerr != nil || !ok {
			return 0, err
		}
		var conds, keys []string
		var dargs []*string
		for _, i := range cols {
			if row[i] == nil {
				return 0, err // NULLs never conflict: not this case
			}
			dargs = append(dargs, row[i])
			conds = append(conds, fmt.Sprintf("%s = $%d", a.col(i), len(dargs)))
		}
		for _, i := range a.key {
			dargs = append(dargs, row[i])
			keys = append(keys, fmt.Sprintf("%s = $%d", a.col(i), len(dargs)))
		}
		if _, derr := a.exec(ctx, "DELETE FROM "+a.qname+" WHERE "+strings.Join(conds, " AND ")+" AND NOT ("+strings.Join(keys, " AND ")+")", dargs); derr != nil {
			return 0, err
		}
	}
}

// uniqueColumns returns the positions among the copied columns of the
// columns of the target's unique index name on the table; ok is false for
// an index on expressions or with a predicate.
func (a tableApply) uniqueColumns(ctx context.Context, name string) (cols []int, ok bool, err error) {
	rr := a.pc.ExecParams(ctx, `SELECT a.attname, i.indpred IS NULL FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
			LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1::text::regclass AND c.relname = $2 ORDER BY k.n`, [][]byte{[]byte(a.qname), []byte(name)}, nil, nil, nil)
	ok = true
	found := false
	for rr.NextRow() {
		found = true
		v := rr.Values()
		if v[0] == nil || string(v[1]) != "t" {
			ok = false
			continue
		}
		at := -1
		for i, c := range a.cols {
			if c.Name == string(v[0]) {
				at = i
			}
		}
		if at < 0 {
			ok = false
			continue
		}
		cols = append(cols, at)
	}
	if _, err := rr.Close(); err != nil {
		return nil, false, err
	}
	return cols, ok && found, nil
}

func (a tableApply) exec(ctx context.Context, sql string, args []*string) (int64, error) {
	vals := make([][]byte, len(args))
	for i, v := range args {
		if v != nil {
			vals[i] = []byte(*v)
		}
	}
	tag, err := a.pc.ExecParams(ctx, sql, vals, nil, nil, nil).Close()
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// texts returns an array of text values (nil: NULL).
func texts(v record.Value) []*string {
	arr := v.ArrayValue()
	out := make([]*string, len(arr))
	for i, x := range arr {
		if !x.IsNull() {
			s := x.StringValue()
			out[i] = &s
		}
	}
	return out
}

func ints(v record.Value) []int {
	var out []int
	for _, x := range v.ArrayValue() {
		out = append(out, int(x.IntValue()))
	}
	return out
}

func (a tableApply) col(i int) string { return a.names[i] }

// match returns the condition selecting the row vals identify: by
// primary key, or (keyless) exactly one row whose columns at positions
// equal vals' by text, placeholders numbered from n.
func (a tableApply) match(pos []int, vals []*string, n int) (string, []*string) {
	var conds []string
	var args []*string
	keyed := len(a.t.Key) > 0
	for _, p := range pos {
		if keyed {
			conds = append(conds, fmt.Sprintf("%s = $%d", a.col(p), n))
		} else {
			conds = append(conds, fmt.Sprintf("%s::text IS NOT DISTINCT FROM $%d::text", a.col(p), n))
		}
		args = append(args, vals[p])
		n++
	}
	where := strings.Join(conds, " AND ")
	if where == "" {
		where = "true"
	}
	if !keyed {
		where = "ctid = (SELECT ctid FROM " + a.qname + " WHERE " + where + " LIMIT 1)"
	}
	return where, args
}

// identityOf is where the old row is found: the primary key, or for a
// keyless table every column of a FULL old row, else the replica
// identity's columns. An old row that is only the replica identity's
// columns (not FULL) is found by them, also in a table with a primary
// key: with REPLICA IDENTITY USING INDEX it lacks the key's values.
func (a tableApply) identityOf(f map[string]record.Value, full bool) []int {
	if len(a.t.Key) > 0 {
		if _, ok := f[pgcatalog.FieldOld]; ok && !full {
			if id := ints(f[pgcatalog.FieldIdentity]); len(id) > 0 {
				return id
			}
		}
		return a.key
	}
	if full {
		out := make([]int, len(a.cols))
		for i := range out {
			out[i] = i
		}
		return out
	}
	return ints(f[pgcatalog.FieldIdentity])
}

// alwaysIdentity reports whether copied column i is GENERATED ALWAYS AS
// IDENTITY, which UPDATE cannot set.
func (a *tableShape) alwaysIdentity(i int) bool { return a.cols[i].Identity == "a" }

func (a tableApply) change(ctx context.Context, op string, f map[string]record.Value) (deleted bool, err error) {
	switch op {
	case pgcatalog.ChangeInsert:
		return false, a.insert(ctx, texts(f[pgcatalog.FieldNew]))
	case pgcatalog.ChangeUpdate:
		return false, a.update(ctx, f)
	case pgcatalog.ChangeDelete:
		old := texts(f[pgcatalog.FieldOld])
		where, args := a.match(a.identityOf(f, f[pgcatalog.FieldOldFull].BoolValue()), old, 1)
		_, err := a.exec(ctx, "DELETE FROM "+a.qname+" WHERE "+where, args)
		return true, err
	case pgcatalog.ChangeTruncate:
		_, err := a.exec(ctx, "DELETE FROM "+a.qname, nil)
		return true, err
	}
	return false, fmt.Errorf("unknown change %q", op)
}

// insert writes a whole row: an upsert by primary key.
func (a tableApply) insert(ctx context.Context, vals []*string) error {
	if len(vals) != len(a.cols) {
		return fmt.Errorf("a row of %d values for %d columns", len(vals), len(a.cols))
	}
	_, err := a.write(ctx, a.upsert, vals, vals)
	return err
}

// update sets the columns sent on the row the old identity names.
func (a tableApply) update(ctx context.Context, f map[string]record.Value) error {
	nv := texts(f[pgcatalog.FieldNew])
	unchanged := map[int]bool{}
	for _, i := range ints(f[pgcatalog.FieldUnchanged]) {
		unchanged[i] = true
	}
	old := nv
	full := false
	if o, ok := f[pgcatalog.FieldOld]; ok {
		old, full = texts(o), f[pgcatalog.FieldOldFull].BoolValue()
	}
	pos := a.identityOf(f, full)
	if len(a.t.Key) > 0 && len(unchanged) == 0 {
		// A key changed on an identity column UPDATE cannot set (or not
		// known: the old row is another replica identity): the row moves
		// by a delete and an insert.
		for _, p := range a.key {
			if a.alwaysIdentity(p) && !sameText(old[p], nv[p]) {
				where, args := a.match(pos, old, 1)
				if _, err := a.exec(ctx, "DELETE FROM "+a.qname+" WHERE "+where, args); err != nil {
					return err
				}
				return a.insert(ctx, nv)
			}
		}
	}
	var sets []string
	var args []*string
	for i := range a.cols {
		if unchanged[i] || a.alwaysIdentity(i) {
			continue
		}
		args = append(args, nv[i])
		sets = append(sets, fmt.Sprintf("%s = $%d", a.col(i), len(args)))
	}
	if len(sets) == 0 {
		return nil
	}
	where, wargs := a.match(pos, old, len(args)+1)
	var row []*string
	if len(unchanged) == 0 {
		row = nv
	}
	n, err := a.write(ctx, "UPDATE "+a.qname+" SET "+strings.Join(sets, ", ")+" WHERE "+where, append(args, wargs...), row)
	if err != nil {
		return err
	}
	if n == 0 && len(unchanged) == 0 && len(a.t.Key) > 0 {
		// The target has no row with the old key (a change replayed over
		// a row the copy read later): the row as it is after the change.
		return a.insert(ctx, nv)
	}
	return nil
}

func sameText(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// upsertFields writes a comparison's record (every column as text) whole.
func (a tableApply) upsertFields(ctx context.Context, f map[string]record.Value) error {
	vals := make([]*string, len(a.cols))
	for i, c := range a.cols {
		if v, ok := f[c.Name]; ok && !v.IsNull() {
			s := v.StringValue()
			vals[i] = &s
		}
	}
	return a.insert(ctx, vals)
}

// deleteKey deletes the row a comparison's key names.
func (a tableApply) deleteKey(ctx context.Context, key string) error {
	_, rest, err := pgcatalog.SplitKey(key)
	if err != nil {
		return err
	}
	vals, err := pgcatalog.DecodeKey(rest)
	if err != nil {
		return err
	}
	args := make([]*string, len(vals))
	for i := range vals {
		args[i] = &vals[i]
	}
	if len(a.t.Key) > 0 {
		if len(vals) != len(a.t.Key) {
			return fmt.Errorf("a key of %d values for %d key columns", len(vals), len(a.t.Key))
		}
		var conds []string
		for i, k := range a.t.Key {
			conds = append(conds, fmt.Sprintf("%s = $%d", pgx.Identifier{k}.Sanitize(), i+1))
		}
		_, err := a.exec(ctx, "DELETE FROM "+a.qname+" WHERE "+strings.Join(conds, " AND "), args)
		return err
	}
	// Keyless: the comparison keys a row by the MD5 of its text and its
	// rank among equal rows; one row more than the source has goes.
	var all []string
	for _, c := range a.t.Columns {
		all = append(all, pgx.Identifier{c.Name}.Sanitize())
	}
	_, err = a.exec(ctx, "DELETE FROM "+a.qname+" WHERE ctid = (SELECT ctid FROM "+a.qname+" WHERE md5(ROW("+strings.Join(all, ", ")+")::text) = $1 LIMIT 1)", args[:1])
	return err
}

// RaiseSequences sets each sequence of seqJSON (the source's values, JSON
// of []pgcatalog.SequenceValue, as the finish stream carries them) on the
// target to the source's value where the target's is behind it, so that
// values the target hands out next are past every one the source has; a
// sequence already ahead is left alone. It returns how many it set.
func (s *TablesSink) RaiseSequences(ctx context.Context, tx pgx.Tx, seqJSON string) (int, error) {
	var vals []pgcatalog.SequenceValue
	if err := json.Unmarshal([]byte(seqJSON), &vals); err != nil {
		return 0, fmt.Errorf("reading the source's sequence values: %w", err)
	}
	set := 0
	for _, v := range vals {
		name := v.Name
		what := v.Name
		if name == "" {
			what = v.Table + "." + pgx.Identifier{v.Column}.Sanitize()
			var seq *string
			if err := tx.QueryRow(ctx, "SELECT pg_get_serial_sequence($1, $2)", v.Table, v.Column).Scan(&seq); err != nil {
				return set, fmt.Errorf("finding the sequence of %s on the target: %w", what, err)
			}
			if seq == nil {
				return set, fmt.Errorf("the target's %s has no sequence", what)
			}
			name = *seq
		}
		var last int64
		var called bool
		// name is quoted and qualified (the catalog's, or the server's).
		if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+name).Scan(&last, &called); err != nil {
			return set, fmt.Errorf("reading the target's sequence %s: %w", what, err)
		}
		if last > v.Value || last == v.Value && (called || !v.IsCalled) {
			continue
		}
		if _, err := tx.Exec(ctx, "SELECT setval($1::text::regclass, $2, $3)", name, v.Value, v.IsCalled); err != nil {
			return set, fmt.Errorf("setting the target's sequence %s past the source's: %w", what, err)
		}
		set++
	}
	return set, nil
}
