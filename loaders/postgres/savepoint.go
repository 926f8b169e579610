package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// underSavepoint runs f in a savepoint of tx and releases it; when f
// fails it rolls back to the savepoint, so that nothing f wrote stays and
// tx stays usable, and returns f's error (with the rollback's, if that
// fails too) and the zero T.
func underSavepoint[T any](ctx context.Context, tx pgx.Tx, f func(sp pgx.Tx) (T, error)) (T, error) {
	var zero T
	sp, err := tx.Begin(ctx)
	if err != nil {
		return zero, err
	}
	v, err := f(sp)
	if err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return zero, errors.Join(err, fmt.Errorf("rolling back to the savepoint: %w", rbErr))
		}
		return zero, err
	}
	return v, sp.Commit(ctx)
}
