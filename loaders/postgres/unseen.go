package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// OpenUnseenDocumentCursor is OpenDocumentCursor, in no particular order,
// over the rows of table t whose key is not among seen's keys of t: seen
// is a table of columns tbl (text: a table name) and k (jsonb: a key, the
// JSON array of its IDs). Placeholder rows and rows marked deleted
// (loaders.DeletedAtColumn) are left out. The table must exist.
func OpenUnseenDocumentCursor(ctx context.Context, tx pgx.Tx, name string, m *mappings.Mapping, tr *transformers.Documents, t *mappings.Table, seen pgx.Identifier) (*DocumentCursor, error) {
	live, err := LiveRows(ctx, tx, m.Schema, t.Name, "")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.Name, err)
	}
	from := pgx.Identifier{m.Schema, t.Name}.Sanitize()
	keys := make([]string, len(t.KeyColumns()))
	for i, k := range t.KeyColumns() {
		keys[i] = from + "." + pgx.Identifier{k}.Sanitize()
	}
	sel := append(documentSelectList(t), childSelects(m.Schema, t)...)
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s IS NOT TRUE AND %s AND NOT EXISTS (SELECT 1 FROM %s s WHERE s.tbl = convert_from(decode('%s', 'hex'), 'UTF8') AND s.k = jsonb_build_array(%s))",
		strings.Join(sel, ", "), from, pgx.Identifier{mappings.ColMissing}.Sanitize(), live, seen.Sanitize(), hex.EncodeToString([]byte(t.Name)), strings.Join(keys, ", "))
	c, err := OpenCursor(ctx, tx, name, q, 500)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.Name, err)
	}
	return &DocumentCursor{c: c, tr: tr, t: t}, nil
}
