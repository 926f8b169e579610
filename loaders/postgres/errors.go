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
// deadlock, serialization failure or lock timeout, a statement timeout, the
// server restarting or out of resources. Data errors (a refused value, a
// constraint) are not, and neither is the caller's own cancellation (the
// retry loop stops when its context ends).
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isEncodeError(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"40", // transaction rollback: serialization failure, deadlock
			"53", // insufficient resources
			"57", // operator intervention: statement timeout, shutdown
			"58": // system error
			return true
		}
		return pgErr.Code == "55P03" // lock_not_available: a lock timeout
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "conn closed") // pgx's closed-connection error has no type
}

// isDataError reports whether err is about a row itself, so that the row
// is rejected (with the reason stored) and the others load: a value
// PostgreSQL refuses (SQLSTATE class 22), a violated constraint (23), a
// limit such as the size of an index row (54), or a value pgx cannot
// encode. Anything else — permissions, a missing table, a lock timeout —
// is about the target, not the record, and fails the batch instead, so
// that no good record is ever rejected for it.
func isDataError(err error) bool {
	if isEncodeError(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "54":
			return true
		}
		return false
	}
	return isEncodeError(err)
}

// isEncodeError recognises pgx's refusal to encode a value. Inside COPY it
// comes back from the server as "COPY from stdin failed" (SQLSTATE 57014,
// which otherwise means a statement timeout). Its message quotes the value,
// so it is never shown: see errorText.
func isEncodeError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to encode")
}

// errorText is the user-facing reason of a rejected row: PostgreSQL's
// message and detail, without the query or its parameters, and without a
// detail that lists the whole failing row (it would show every value,
// password hashes included).
func errorText(err error) string {
	if isEncodeError(err) {
		return "a value could not be encoded for its column type (the whole record is kept in baasmigrate.rejects)"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		s := pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
		if pgErr.Detail != "" && !strings.HasPrefix(pgErr.Detail, "Failing row contains") {
			s += "; " + pgErr.Detail
		}
		return s
	}
	return err.Error()
}
