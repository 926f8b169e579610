package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/loaders"
)

// softColumn is one table's soft-delete state (loaders.SoftDeleter):
// whether Prepare adds the deletion-time column loaders.DeletedAtColumn,
// and whether the table has it, read once from the catalog (a run with
// soft deletes, this one or an earlier, may have added it; then upserts
// must clear it).
type softColumn struct {
	on bool // SetSoftDeletes
	// schema and table name the table; id is the same, for DDL.
	schema, table string
	id            pgx.Identifier
	// detected, when set, is told whether the table has the column each
	// time it is read (to build upserts that clear it).
	detected func(has bool)

	mu  sync.Mutex
	has *bool // nil until read
}

// marked reports whether the table has the column (false until read).
func (c *softColumn) marked() bool { return c.has != nil && *c.has }

// changes is the DDL soft deletes need that the table lacks (none when
// they are off).
func (c *softColumn) changes(ctx context.Context, db loaders.DB) ([]Statement, error) {
	if !c.on {
		return nil, nil
	}
	ok, err := ColumnExists(ctx, db, c.schema, c.table, loaders.DeletedAtColumn)
	if err != nil || ok {
		return nil, err
	}
	return []Statement{{
		What: fmt.Sprintf("add column %s to %s (deletion time, for soft deletes)", loaders.DeletedAtColumn, c.id.Sanitize()),
		SQL:  fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s timestamptz", c.id.Sanitize(), pgx.Identifier{loaders.DeletedAtColumn}.Sanitize()),
	}}, nil
}

// prepare runs changes in tx (Prepare's, after the table exists) and reads
// afresh whether the table has the column.
func (c *softColumn) prepare(ctx context.Context, tx pgx.Tx) error {
	stmts, err := c.changes(ctx, tx)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st.SQL); err != nil {
			return fmt.Errorf("%s: %w", st.What, err)
		}
	}
	c.mu.Lock()
	c.has = nil
	c.mu.Unlock()
	return c.detect(ctx, tx)
}

// detect reads, once, whether the table has the column.
func (c *softColumn) detect(ctx context.Context, db loaders.DB) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.has != nil {
		return nil
	}
	ok, err := ColumnExists(ctx, db, c.schema, c.table, loaders.DeletedAtColumn)
	if err != nil {
		return err
	}
	c.has = &ok
	if c.detected != nil {
		c.detected(ok)
	}
	return nil
}
