package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// DocumentRow is one document read back from its table.
type DocumentRow struct {
	// Key is the row's primary key: the ancestor document IDs, then its own.
	Key []string
	// Path is the document's path relative to the database root.
	Path string
	// Fields are the document's fields rebuilt from columns and overflow.
	Fields                 map[string]record.Value
	CreateTime, UpdateTime time.Time
	// Missing is set for placeholder rows of parents that exist only
	// through their subcollections.
	Missing bool
	// Problem, set only by DocumentCursor, says why the row could not be
	// rebuilt into a document (a value its column's mapping cannot have
	// produced); Fields are then empty.
	Problem string
}

// documentSelectList is the select list decodeDocument reads: t's
// columns in documentColumns order, jsonb as text (pgx would decode its
// numbers as float64).
func documentSelectList(t *mappings.Table) []string {
	var sel []string
	for _, c := range documentColumns(t) {
		q := pgx.Identifier{c.name}.Sanitize()
		if c.ddlType == "jsonb" {
			q += "::text"
		}
		sel = append(sel, q)
	}
	return sel
}

// documentSelect is the query reading table t in key order: key column by
// key column, each in order (the source's order of document IDs; nil for
// record.ByteOrder). With live set (the table has the column
// loaders.DeletedAtColumn) it leaves out rows soft deletes marked.
func documentSelect(m *mappings.Mapping, t *mappings.Table, order record.KeyOrder, live ...bool) string {
	if order == nil {
		order = record.ByteOrder
	}
	sel := append(documentSelectList(t), childSelects(m.Schema, t)...)
	keys := make([]string, len(t.KeyColumns()))
	for i, k := range t.KeyColumns() {
		keys[i] = order.OrderBy(pgx.Identifier{k}.Sanitize())
	}
	where := ""
	if len(live) > 0 && live[0] {
		where = " WHERE " + pgx.Identifier{loaders.DeletedAtColumn}.Sanitize() + " IS NULL"
	}
	return fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s", strings.Join(sel, ", "),
		pgx.Identifier{m.Schema, t.Name}.Sanitize(), where, strings.Join(keys, ", "))
}

// decodeDocument rebuilds a document from the values of a documentSelect
// row.
func decodeDocument(tr *transformers.Documents, t *mappings.Table, vals []any) (DocumentRow, error) {
	nKey, nCols := len(t.KeyColumns()), len(t.Columns)
	key := make([]string, nKey)
	for i := range key {
		key[i], _ = vals[i].(string)
	}
	cols := vals[nKey : nKey+nCols]
	for i, c := range t.Columns {
		if s, ok := cols[i].(string); ok && c.Type == "jsonb" {
			cols[i] = []byte(s)
		}
	}
	meta := vals[nKey+nCols:]
	var overflow []byte
	if s, ok := meta[2].(string); ok {
		overflow = []byte(s)
	}
	path, fields, err := tr.Reconstruct(t, key, cols, overflow)
	if err != nil {
		return DocumentRow{Key: key}, fmt.Errorf("rebuilding a document of %s (key %q): %w", t.Name, key, err)
	}
	if err := decodeChildren(tr, t, vals[len(documentColumns(t)):], fields); err != nil {
		return DocumentRow{Key: key}, fmt.Errorf("rebuilding a document of %s (key %q): %w", t.Name, key, err)
	}
	row := DocumentRow{Key: key, Path: path, Fields: fields}
	if ts, ok := meta[0].(time.Time); ok {
		row.CreateTime = ts.UTC()
	}
	if ts, ok := meta[1].(time.Time); ok {
		row.UpdateTime = ts.UTC()
	}
	row.Missing, _ = meta[3].(bool)
	return row, nil
}

// ReadDocuments streams the rows of table t in key order (order, applied
// key column by key column; nil for record.ByteOrder) and rebuilds each
// document with the mapping's inverse transform. It holds one row at a
// time. Rows soft deletes marked are left out.
func ReadDocuments(ctx context.Context, db loaders.DB, m *mappings.Mapping, tr *transformers.Documents, t *mappings.Table, order record.KeyOrder, fn func(DocumentRow) error) error {
	live, err := ColumnExists(ctx, db, m.Schema, t.Name, loaders.DeletedAtColumn)
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.Name, err)
	}
	rows, err := db.Query(ctx, documentSelect(m, t, order, live))
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("reading %s: %w", t.Name, err)
		}
		row, err := decodeDocument(tr, t, vals)
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", t.Name, err)
	}
	return nil
}

// Cursor reads a query's rows a chunk at a time through a server-side
// cursor, so that many tables can be read side by side on one connection
// (and in one snapshot) with memory bounded by the chunk size.
type Cursor struct {
	tx   pgx.Tx
	name string
	// chunk is how many rows the next FETCH asks for: at most max, and
	// fewer when rows are large, so that a chunk holds about chunkBytes.
	chunk, max int
	buf        [][]any
	done       bool
}

// chunkBytes is about how much row data one FETCH brings in.
const chunkBytes = 4 << 20

// OpenCursor declares a cursor named name for query inside tx (which must
// stay open while the cursor is read).
func OpenCursor(ctx context.Context, tx pgx.Tx, name, query string, chunk int) (*Cursor, error) {
	if _, err := tx.Exec(ctx, "DECLARE "+pgx.Identifier{name}.Sanitize()+" NO SCROLL CURSOR FOR "+query); err != nil {
		return nil, fmt.Errorf("opening a cursor: %w", err)
	}
	return &Cursor{tx: tx, name: name, chunk: max(chunk, 1), max: max(chunk, 1)}, nil
}

// Next returns the next row's values, or ok false at the end.
func (c *Cursor) Next(ctx context.Context) (vals []any, ok bool, err error) {
	if len(c.buf) == 0 && !c.done {
		// Described afresh each time: the text of a FETCH names the cursor,
		// not its query, so a description cached for a cursor of the same
		// name over another table (another comparison on this pooled
		// connection) would not fit.
		rows, err := c.tx.Query(ctx, fmt.Sprintf("FETCH FORWARD %d FROM %s", c.chunk, pgx.Identifier{c.name}.Sanitize()), pgx.QueryExecModeDescribeExec)
		if err != nil {
			return nil, false, err
		}
		var size int
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, false, err
			}
			for _, raw := range rows.RawValues() {
				size += len(raw) + 8
			}
			c.buf = append(c.buf, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
		if len(c.buf) < c.chunk {
			c.done = true
		} else if size > 0 {
			c.chunk = min(c.max, max(1, c.chunk*chunkBytes/size))
		}
	}
	if len(c.buf) == 0 {
		return nil, false, nil
	}
	vals, c.buf = c.buf[0], c.buf[1:]
	return vals, true, nil
}

// DocumentCursor reads a document table in key order, a chunk at a time.
type DocumentCursor struct {
	c  *Cursor
	tr *transformers.Documents
	t  *mappings.Table
}

// OpenDocumentCursor opens a cursor over table t inside tx, reading its
// rows in key order (order, applied key column by key column; nil for
// record.ByteOrder). Rows soft deletes marked are left out.
func OpenDocumentCursor(ctx context.Context, tx pgx.Tx, name string, m *mappings.Mapping, tr *transformers.Documents, t *mappings.Table, order record.KeyOrder) (*DocumentCursor, error) {
	live, err := ColumnExists(ctx, tx, m.Schema, t.Name, loaders.DeletedAtColumn)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.Name, err)
	}
	c, err := OpenCursor(ctx, tx, name, documentSelect(m, t, order, live), 500)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.Name, err)
	}
	return &DocumentCursor{c: c, tr: tr, t: t}, nil
}

// Next returns the next document row, or ok false at the end. A row that
// cannot be rebuilt is returned with Problem set rather than as an error,
// so that a comparison can report it and go on.
func (d *DocumentCursor) Next(ctx context.Context) (DocumentRow, bool, error) {
	vals, ok, err := d.c.Next(ctx)
	if err != nil {
		return DocumentRow{}, false, fmt.Errorf("reading %s: %w", d.t.Name, err)
	}
	if !ok {
		return DocumentRow{}, false, nil
	}
	row, err := decodeDocument(d.tr, d.t, vals)
	if err != nil {
		row.Problem = err.Error()
		if p, perr := mappings.DocumentPath(d.t.Collection, row.Key); perr == nil {
			row.Path = p
		}
	}
	return row, true, nil
}

// TableExists reports whether schema.table exists.
func TableExists(ctx context.Context, db loaders.DB, schema, table string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, table}.Sanitize()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking for table %s.%s: %w", schema, table, err)
	}
	return ok, nil
}
