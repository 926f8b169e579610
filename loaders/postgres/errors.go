package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsTransient reports whether err from the target database is worth
// retrying the whole transaction for: a lost or refused connection, a
// deadlock or serialization failure, the server restarting or out of
// resources. Data errors (a refused value, a constraint) are not, and
// neither is the caller's own cancellation.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "40", "53", "58":
			return true
		case "57":
			return pgErr.Code != "57014" // query_canceled: our own cancellation
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "conn closed") // pgx's closed-connection error has no type
}

// isDataError reports whether err is about the rows themselves (a value
// PostgreSQL refuses, a violated constraint, a value pgx cannot encode)
// rather than about the connection or transaction.
func isDataError(err error) bool {
	return err != nil && !IsTransient(err) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
