package diff

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

var _ KeyScanner = (*Documents)(nil)

// ScanUnseen calls fn with every document row of table (placeholders and
// rows marked deleted excluded) whose key is not in seen (see KeyScanner):
// on the lookup path (LookUpByKey), the rows the source lacks.
func (d *Documents) ScanUnseen(ctx context.Context, tx pgx.Tx, table string, seen pgx.Identifier, fn func(Item) error) error {
	t, err := d.existing(ctx, tx, table)
	if t == nil {
		return err
	}
	d.cursors++
	cur, err := postgres.OpenUnseenDocumentCursor(ctx, tx, fmt.Sprintf("diff_unseen_%d", d.cursors), d.m, d.tr, t, seen)
	if err != nil {
		return err
	}
	c := documentCursor{cur}
	for {
		it, ok, err := c.Next(ctx)
		if err != nil || !ok {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}
