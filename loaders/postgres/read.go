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
	// Path is the document's path relative to the database root.
	Path string
	// Fields are the document's fields rebuilt from columns and overflow.
	Fields                 map[string]record.Value
	CreateTime, UpdateTime time.Time
	// Missing is set for placeholder rows of parents that exist only
	// through their subcollections.
	Missing bool
}

// ReadDocuments streams the rows of table t in key order (Firestore's
// document order within the table) and rebuilds each document with the
// mapping's inverse transform. It holds one row at a time.
func ReadDocuments(ctx context.Context, db loaders.DB, m *mappings.Mapping, tr *transformers.Documents, t *mappings.Table, fn func(DocumentRow) error) error {
	var sel []string
	for _, c := range documentColumns(t) {
		q := pgx.Identifier{c.name}.Sanitize()
		if c.ddlType == "jsonb" {
			q += "::text" // raw JSON text: pgx would decode numbers as float64
		}
		sel = append(sel, q)
	}
	name := pgx.Identifier{m.Schema, t.Name}.Sanitize()
	rows, err := db.Query(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(sel, ", "), name, quoteAll(t.KeyColumns())))
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	defer rows.Close()
	nKey, nCols := len(t.KeyColumns()), len(t.Columns)
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
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
			return fmt.Errorf("rebuilding a document of %s (key %q): %w", name, key, err)
		}
		row := DocumentRow{Path: path, Fields: fields}
		if ts, ok := meta[0].(time.Time); ok {
			row.CreateTime = ts.UTC()
		}
		if ts, ok := meta[1].(time.Time); ok {
			row.UpdateTime = ts.UTC()
		}
		row.Missing, _ = meta[3].(bool)
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}
