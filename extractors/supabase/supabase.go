// Package supabase holds what the Supabase extractors (auth users, storage
// files) share: the options naming the project's database and its
// Storage S3 endpoint, and how they become a PostgreSQL pool and an S3
// client.
//
// The extractors themselves live in extractors/supabaseauth (users, from
// auth.users, auth.identities and auth.mfa_factors) and
// extractors/supabasestorage (files, metadata from storage.objects and
// bytes through Storage's S3 endpoint). Both read the database directly:
// a Supabase project's data is in PostgreSQL, so there is no API to page
// through, and reads are keyset pages ordered by the tables' keys.
package supabase

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Source is the value of --source for Supabase.
const Source = "supabase"

// Options shared by the Supabase extractors.
var (
	DBOption = plugin.Option{
		Name: "supabase-db",
		Help: "Connection string of the Supabase project's database (postgres://postgres:PASSWORD@db.REF.supabase.co:5432/postgres, " +
			"a direct or session-pooler connection; percent-encode special characters of the password).",
		Env:      []string{"SUPABASE_DB_URL"},
		Required: true,
		Secret:   true,
	}
	PageSizeOption = plugin.Option{
		Name:    "supabase-page-size",
		Help:    "Rows read per query from the Supabase database; bounds memory per partition.",
		Default: "1000",
		Type:    plugin.Int,
	}
)

// ErrConnString is the error for a --supabase-db that cannot be read. It
// never quotes the string, which holds a password.
var ErrConnString = errors.New("--supabase-db is not a valid PostgreSQL URL " +
	"(postgres://user:password@host:port/db, special characters percent-encoded) or key=value list")

// DB is a connection pool on the project's database and the name of that
// database without secrets.
type DB struct {
	Pool *pgxpool.Pool
	// Name is "host:port/database", stable across runs and free of
	// secrets: what Source strings are built from.
	Name string
}

// Connect opens a pool on --supabase-db. Statements and connection
// attempts are bounded by --source-timeout (the server's own
// statement_timeout a little after it). Queries are sent without
// server-side prepared statements, so a transaction-mode pooler works
// too. The error never includes the password nor the connection string.
func Connect(ctx context.Context, cfg plugin.Config, maxConns int) (*DB, error) {
	dsn := cfg.String(DBOption.Name)
	if dsn == "" {
		return nil, fmt.Errorf("no Supabase database to read: pass --%s", DBOption.Name)
	}
	timeout, err := retry.Timeout(cfg, retry.SourceTimeoutOption)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err == nil && strings.Contains(pc.ConnConfig.Host, "@") {
		err = errors.New("host contains @") // an unencoded "@" in the password
	}
	if err != nil {
		return nil, ErrConnString
	}
	pc.MaxConns = int32(max(maxConns, 1))
	pc.ConnConfig.ConnectTimeout = timeout
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt((timeout + timeout/10).Milliseconds(), 10)
	pc.ConnConfig.RuntimeParams["application_name"] = "baasmigrate"
	name := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))) + "/" + pc.ConnConfig.Database
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Supabase database %s: %w", name, err)
	}
	return &DB{Pool: pool, Name: name}, nil
}

// PageSize is --supabase-page-size, at least 1.
func PageSize(cfg plugin.Config) (int, error) {
	n, err := cfg.Int(PageSizeOption.Name, 1000)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("--%s must be at least 1", PageSizeOption.Name)
	}
	return n, nil
}

// SplitPoints returns up to partitions-1 values of the text expression
// key, in the order orderBy, that cut the rows of from (a FROM clause with
// its WHERE, args its parameters) into runs of about equal count. Each
// point starts a run; the first run starts before the first row.
func SplitPoints(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, key, orderBy, from string, args []any, partitions int) ([]string, error) {
	if partitions < 2 {
		return nil, nil
	}
	// Row numbers 1 + k*ceil(n/partitions), k >= 1: the first row of
	// each run after the first.
	sql := `SELECT k FROM (SELECT ` + key + ` AS k, row_number() OVER (ORDER BY ` + orderBy + `) AS rn, count(*) OVER () AS n ` + from + `) s
		WHERE rn > 1 AND (rn - 1) % GREATEST(1, ceil(n::numeric / ` + strconv.Itoa(partitions) + `)::bigint) = 0 ORDER BY rn`
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	points, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(points) > partitions-1 {
		points = points[:partitions-1]
	}
	return points, nil
}
