package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// ErrConnString is Connect's error for a connection string it cannot read.
var ErrConnString = errors.New("the connection string is not a valid PostgreSQL URL " +
	"(postgres://user:password@host:port/db, special characters percent-encoded) or key=value list")

// Connect opens a pool of at most maxConns connections on the target
// database dsn (a URL or key=value list), configured as the sinks and the
// state need it, and checks that it answers. Errors never include the
// password, nor the connection string when it cannot be read.
//
// timeout (positive) bounds every statement and every wait for a lock on
// the server (statement_timeout, lock_timeout) and each connection
// attempt: a statement that hangs fails with SQLSTATE 57014 or 55P03,
// which the migration retries as transient; a server that answers nothing
// at all fails the session with a timeout shortly after. Doubles are
// printed exactly (extra_float_digits), so that the upsert's comparison of
// old and new rows sees every change.
func Connect(ctx context.Context, dsn string, maxConns int, timeout time.Duration) (*pgxpool.Pool, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("connecting to the target: the timeout must be positive, not %s", timeout)
	}
	cfg, err := ParseConnString(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(max(maxConns, 1))
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
	cfg.ConnConfig.RuntimeParams["extra_float_digits"] = "3"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", describe(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s: %w", describe(cfg), err)
	}
	return pool, nil
}

// ParseConnString reads dsn (a URL or key=value list) as pgxpool reads
// it; a string it cannot read, or one whose password would be printed as
// its host (an unencoded "@"), is ErrConnString, which quotes nothing of
// it.
func ParseConnString(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err == nil && strings.Contains(cfg.ConnConfig.Host, "@") {
		// An unencoded "@" in the password: the rest of it became the host,
		// and would be printed as such.
		err = errors.New("host contains @")
	}
	if err != nil {
		// pgx's message quotes the string, and its redaction misses some
		// valid spellings of a password: say nothing of the string itself.
		return nil, ErrConnString
	}
	return cfg, nil
}

// describe names the database for messages, without the password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}
