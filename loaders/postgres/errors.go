package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/failure"
)

// isDataError reports whether err is about a row itself (failure.Classify
// says Record), so that the row is rejected (with the reason stored) and
// the others load: a value PostgreSQL refuses (SQLSTATE class 22), a
// violated constraint (23), a limit such as the size of an index row (54),
// or a value pgx cannot encode. Anything else — permissions, a missing
// table, a lock timeout — is about the target, not the record, and fails
// the batch instead, so that no good record is ever rejected for it.
func isDataError(err error) bool {
	return err != nil && failure.Classify(err) == failure.Record
}

// errorText is the user-facing reason of a rejected row: PostgreSQL's
// message and detail, without the query or its parameters, and without a
// detail that lists the whole failing row (it would show every value,
// password hashes included).
func errorText(err error) string {
	if failure.IsEncodeError(err) {
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
