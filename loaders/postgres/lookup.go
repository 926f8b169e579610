package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// LiveRows returns the SQL condition that holds for the rows of
// schema.table that stand for records: "true", or, when the table has the
// soft-delete column (loaders.DeletedAtColumn), that the column is NULL.
// alias, if not "", qualifies the column.
func LiveRows(ctx context.Context, db loaders.DB, schema, table, alias string) (string, error) {
	ok, err := ColumnExists(ctx, db, schema, table, loaders.DeletedAtColumn)
	if err != nil || !ok {
		return "true", err
	}
	col := pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()
	if alias != "" {
		col = pgx.Identifier{alias}.Sanitize() + "." + col
	}
	return col + " IS NULL", nil
}

// LookupDocuments reads the rows of table t whose primary keys are keys
// (each the ancestor document IDs, then the document's own) and calls fn
// with each row found, rebuilt as DocumentCursor rebuilds it (a row that
// cannot be rebuilt comes with Problem set), in no particular order. Keys
// without a row, and rows marked deleted (loaders.DeletedAtColumn), are
// not reported. Placeholder rows are, with Missing set. The table must
// exist.
func LookupDocuments(ctx context.Context, db loaders.DB, m *mappings.Mapping, tr *transformers.Documents, t *mappings.Table, keys [][]string, fn func(DocumentRow) error) error {
	if len(keys) == 0 {
		return nil
	}
	keyCols := t.KeyColumns()
	live, err := LiveRows(ctx, db, m.Schema, t.Name, "")
	if err != nil {
		return err
	}
	sel := append(documentSelectList(t), childSelects(m.Schema, t)...)
	// One text array per key column, unnested side by side into the
	// keys' tuples.
	cols := make([]string, len(keyCols))
	params := make([]string, len(keyCols))
	args := make([]any, len(keyCols))
	for i, k := range keyCols {
		// Equal bytes, whatever the column's collation.
		cols[i] = pgx.Identifier{k}.Sanitize() + ` COLLATE "C"`
		params[i] = fmt.Sprintf("$%d::text[]", i+1)
		elems := make([]string, 0, len(keys))
		for _, key := range keys {
			if len(key) != len(keyCols) {
				return fmt.Errorf("looking up documents in %s: key %q has %d IDs, the table %d", t.Name, key, len(key), len(keyCols))
			}
			elems = append(elems, key[i])
		}
		args[i] = elems
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE (%s) IN (SELECT * FROM unnest(%s)) AND %s", strings.Join(sel, ", "),
		pgx.Identifier{m.Schema, t.Name}.Sanitize(), strings.Join(cols, ", "), strings.Join(params, ", "), live)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("looking up documents in %s: %w", t.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("looking up documents in %s: %w", t.Name, err)
		}
		row, err := decodeDocument(tr, t, vals)
		if err != nil {
			row.Problem = err.Error()
			if p, perr := mappings.DocumentPath(t.Collection, row.Key); perr == nil {
				row.Path = p
			}
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking up documents in %s: %w", t.Name, err)
	}
	return nil
}

// CountDocuments returns the number of rows of table t that stand for
// documents: placeholders and rows marked deleted (loaders.DeletedAtColumn)
// are not counted. It returns 0 when the table does not exist.
func CountDocuments(ctx context.Context, db loaders.DB, m *mappings.Mapping, t *mappings.Table) (int64, error) {
	ok, err := TableExists(ctx, db, m.Schema, t.Name)
	if err != nil || !ok {
		return 0, err
	}
	live, err := LiveRows(ctx, db, m.Schema, t.Name, "")
	if err != nil {
		return 0, err
	}
	var n int64
	q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s IS NOT TRUE AND %s",
		pgx.Identifier{m.Schema, t.Name}.Sanitize(), pgx.Identifier{mappings.ColMissing}.Sanitize(), live)
	if err := db.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the documents of %s: %w", t.Name, err)
	}
	return n, nil
}
