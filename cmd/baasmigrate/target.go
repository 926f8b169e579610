package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// postgresOption is the target database, shared by every command.
var postgresOption = plugin.Option{
	Name:     "postgres",
	Help:     "PostgreSQL connection string of the target database (URL or key=value form).",
	Env:      []string{"DATABASE_URL"},
	Required: true,
	Secret:   true,
}

// targetOptions are the target database's options, shared by every
// command that writes or reads it.
var targetOptions = []plugin.Option{postgresOption, retry.TargetTimeoutOption}

// connectTarget opens a pool on the target database sized for workers
// (postgres.Connect), checking it answers. timeout is --target-timeout
// (0: its default). Errors never include the password.
func connectTarget(ctx context.Context, dsn string, workers int, timeout time.Duration) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, fmt.Errorf("no target database: pass --postgres or set DATABASE_URL")
	}
	if timeout <= 0 {
		var err error
		if timeout, err = retry.Timeout(plugin.Config{}, retry.TargetTimeoutOption); err != nil {
			return nil, err
		}
	}
	pool, err := postgres.Connect(ctx, dsn, workers+4, timeout)
	if errors.Is(err, postgres.ErrConnString) {
		return nil, fmt.Errorf("--%s: %w", postgresOption.Name, err)
	}
	return pool, err
}
