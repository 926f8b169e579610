package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UsersSchemas lists, sorted, the schemas that the users runs recorded in
// the target's state wrote users to (their "users-schema" setting): what
// commands that read migrated users use when no schema is named. It
// returns none when the target has no state.
func UsersSchemas(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('baasmigrate.runs') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking for the migration state: %w", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := pool.Query(ctx, `SELECT DISTINCT config->>'users-schema' AS s FROM baasmigrate.runs
		WHERE config ? 'users-schema' AND config->>'users-schema' <> '' ORDER BY s`)
	if err != nil {
		return nil, fmt.Errorf("reading the users schemas of the recorded runs: %w", err)
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the users schemas of the recorded runs: %w", err)
	}
	return schemas, nil
}
