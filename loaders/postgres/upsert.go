package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tableDef describes a target table for upserts.
type tableDef struct {
	// Name is the schema-qualified table.
	Name pgx.Identifier
	// Columns lists every loaded column in row order, with Types its
	// PostgreSQL type as written in DDL.
	Columns, Types []string
	// Key lists the primary key columns (a subset of Columns).
	Key []string
	// stage is the per-session staging table's name, derived from the
	// definition so that a changed definition gets a new staging table.
	stage string
	// insertSQL moves the staging table's rows into the target.
	insertSQL string
}

// newTableDef prepares the SQL of an upsert into name.
func newTableDef(name pgx.Identifier, columns, types, key []string) *tableDef {
	t := &tableDef{Name: name, Columns: columns, Types: types, Key: key}
	h := sha256.New()
	for _, s := range append(append(append([]string{}, name...), columns...), types...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	t.stage = "baasmigrate_stage_" + hex.EncodeToString(h.Sum(nil))[:16]

	cols := quoteAll(columns)
	isKey := map[string]bool{}
	for _, k := range key {
		isKey[k] = true
	}
	var set, oldRow, newRow []string
	for _, c := range columns {
		if isKey[c] {
			continue
		}
		q := pgx.Identifier{c}.Sanitize()
		set = append(set, q+" = EXCLUDED."+q)
		oldRow = append(oldRow, "t."+q)
		newRow = append(newRow, "EXCLUDED."+q)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s AS t (%s) SELECT %s FROM pg_temp.%s ON CONFLICT (%s) ",
		name.Sanitize(), cols, cols, pgx.Identifier{t.stage}.Sanitize(), quoteAll(key))
	if len(set) == 0 {
		b.WriteString("DO NOTHING")
	} else {
		// Compare as text: exact for every type (doubles print
		// round-trippably, -0 stays -0, jsonb prints canonically) and
		// defined for types without an equality operator, such as point.
		// Unchanged rows are not rewritten, so re-runs write nothing.
		fmt.Fprintf(&b, "DO UPDATE SET %s WHERE ROW(%s)::text IS DISTINCT FROM ROW(%s)::text",
			strings.Join(set, ", "), strings.Join(oldRow, ", "), strings.Join(newRow, ", "))
	}
	t.insertSQL = b.String()
	return t
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// createStage creates the session's staging table when it does not exist.
// Rows vanish at commit; the table lives as long as the connection.
func (t *tableDef) createStage(ctx context.Context, tx pgx.Tx) error {
	defs := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		defs[i] = pgx.Identifier{c}.Sanitize() + " " + t.Types[i]
	}
	_, err := tx.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS",
		pgx.Identifier{t.stage}.Sanitize(), strings.Join(defs, ", ")))
	return err
}

// upsert writes rows (each with one value per column) into t inside tx:
// COPY into the staging table, then one INSERT ... ON CONFLICT that updates
// only rows whose content differs. It returns how many rows were inserted
// or changed, and the rows PostgreSQL refused, by index, with the reason.
//
// A batch that fails as a whole is retried row by row under savepoints, so
// one bad row is rejected and the rest load (pgloader's approach). Errors
// that are not about the data — a lost connection, a deadlock, the server
// shutting down — are returned instead, for the caller to retry the batch.
func (t *tableDef) upsert(ctx context.Context, tx pgx.Tx, rows [][]any) (changed int64, rejects map[int]string, err error) {
	if len(rows) == 0 {
		return 0, nil, nil
	}
	if err := t.createStage(ctx, tx); err != nil {
		return 0, nil, fmt.Errorf("creating the staging table for %s: %w", t.Name.Sanitize(), err)
	}
	n, err := t.trySavepoint(ctx, tx, rows)
	if err == nil {
		return n, nil, nil
	}
	if !isDataError(err) {
		return 0, nil, fmt.Errorf("loading %d rows into %s: %w", len(rows), t.Name.Sanitize(), err)
	}
	// Find the bad rows one at a time.
	rejects = map[int]string{}
	for i, row := range rows {
		n, err := t.trySavepoint(ctx, tx, [][]any{row})
		switch {
		case err == nil:
			changed += n
		case isDataError(err):
			rejects[i] = "PostgreSQL refused the row: " + errorText(err)
		default:
			return 0, nil, fmt.Errorf("loading row %d of %d into %s: %w", i+1, len(rows), t.Name.Sanitize(), err)
		}
	}
	return changed, rejects, nil
}

// trySavepoint loads rows under a savepoint, rolling back to it on failure
// so that tx stays usable.
func (t *tableDef) trySavepoint(ctx context.Context, tx pgx.Tx, rows [][]any) (int64, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, err
	}
	n, err := t.load(ctx, sp, rows)
	if err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return 0, errors.Join(err, fmt.Errorf("rolling back to the savepoint: %w", rbErr))
		}
		return 0, err
	}
	return n, sp.Commit(ctx)
}

func (t *tableDef) load(ctx context.Context, tx pgx.Tx, rows [][]any) (int64, error) {
	if _, err := copyRows(ctx, tx, pgx.Identifier{"pg_temp", t.stage}, t.Columns, rows); err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	b.Queue(t.insertSQL)
	b.Queue("DELETE FROM pg_temp." + pgx.Identifier{t.stage}.Sanitize())
	res := tx.SendBatch(ctx, b)
	tag, err := res.Exec()
	if err != nil {
		res.Close()
		return 0, err
	}
	if _, err := res.Exec(); err != nil {
		res.Close()
		return 0, err
	}
	return tag.RowsAffected(), res.Close()
}
