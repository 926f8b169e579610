package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/retry"
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

// connectTarget opens a pool on the target database sized for workers,
// checking it answers. Errors never include the password. timeout
// (--target-timeout; 0: its default) bounds every statement and every wait
// for a lock on the server (statement_timeout, lock_timeout) and each
// connection attempt: a statement that hangs fails with SQLSTATE 57014 or
// 55P03, which the migration retries as transient; a server that answers
// nothing at all fails the session with a timeout shortly after.
func connectTarget(ctx context.Context, dsn string, workers int, timeout time.Duration) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, fmt.Errorf("no target database: pass --postgres or set DATABASE_URL")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err == nil && strings.Contains(cfg.ConnConfig.Host, "@") {
		// An unencoded "@" in the password: the rest of it became the host,
		// and would be printed as such.
		err = errors.New("host contains @")
	}
	if err != nil {
		// pgx's message quotes the string, and its redaction misses some
		// valid spellings of a password: say nothing of the string itself.
		return nil, errors.New("the --postgres connection string is not a valid PostgreSQL URL " +
			"(postgres://user:password@host:port/db, special characters percent-encoded) or key=value list")
	}
	cfg.MaxConns = int32(workers + 4)
	if timeout <= 0 {
		if timeout, err = retry.Timeout(plugin.Config{}, retry.TargetTimeoutOption); err != nil {
			return nil, err
		}
	}
	cfg.ConnConfig.ConnectTimeout = timeout
	// A statement blocked by a lock fails as a lock timeout, which names
	// the cause, a little before the statement timeout would.
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt((timeout + timeout/10).Milliseconds(), 10)
	// A server (or a path to it) that is frozen answers nothing at all:
	// the client gives up a little after the server's own timeouts would.
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return retry.ReplyDeadlineConn(c, timeout+timeout/5), nil
	}
	// Doubles print exactly whatever the server's settings, so that the
	// upsert's comparison of old and new rows sees every change.
	cfg.ConnConfig.RuntimeParams["extra_float_digits"] = "3"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", describeTarget(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s: %w", describeTarget(cfg), err)
	}
	return pool, nil
}

// describeTarget names the database for messages, without the password.
func describeTarget(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}
