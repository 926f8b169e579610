package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/passwords"
)

// DB is what the functions below need of a connection, pool or
// transaction (*pgxpool.Pool, *pgx.Conn, pgx.Tx).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ DB = pgx.Tx(nil)

// CapturesTable is the table, in the users schema, recording every
// captured credential.
const CapturesTable = "password_captures"

// ErrNotNone is returned (wrapped) by Store when there is nothing to
// capture for the user: its row does not hold NONE (no such user, a
// credential already applied) or a capture is stored already (a
// concurrent sign-in's). Nothing is written.
var ErrNotNone = errors.New("the user has no uncaptured NONE credential")

func table(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// capturesExist reports whether <schema>.password_captures exists (there
// is none before EnsureTable).
func capturesExist(ctx context.Context, db DB, schema string) (bool, error) {
	var exists bool
	err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table(schema, CapturesTable)).Scan(&exists)
	return exists, err
}

// EnsureTable creates <schema>.password_captures if it does not exist. It
// needs CREATE on the schema: run it once as the role that ran migrate
// (`baasmigrate auth capture-status --create`) when the application's
// role has no such right; the application's role then needs SELECT and
// INSERT on it and SELECT on users.
func EnsureTable(ctx context.Context, db DB, schema string) error {
	_, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table(schema, CapturesTable)+` (
		uid text PRIMARY KEY REFERENCES `+table(schema, "users")+` (uid) ON DELETE CASCADE,
		password_algorithm text NOT NULL,
		password_hash text NOT NULL,
		captured_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("creating %s.%s: %w", schema, CapturesTable, err)
	}
	return nil
}

// Lookup returns the uid (the Cognito sub) of the migrated user with the
// given Cognito username and the credential to check a password against:
// the captured one when the users row still holds NONE and a capture
// exists, otherwise the row's own (NONE: not captured yet; nil: the user
// has no password). ok is false when no migrated user has that username.
// Before any capture (no password_captures table) the row's is returned.
func Lookup(ctx context.Context, db DB, schema, username string) (uid string, cred *passwords.Credential, ok bool, err error) {
	exists, err := capturesExist(ctx, db, schema)
	if err != nil {
		return "", nil, false, fmt.Errorf("looking up Cognito user %q in %s.users: %w", username, schema, err)
	}
	var alg, hash *string
	q := `SELECT uid, password_algorithm, password_hash_verbatim FROM ` + table(schema, "users") + ` WHERE extra->>'username' = $1`
	if exists {
		q = `SELECT u.uid, CASE WHEN u.password_algorithm = $2 AND c.uid IS NOT NULL THEN c.password_algorithm ELSE u.password_algorithm END,
				CASE WHEN u.password_algorithm = $2 AND c.uid IS NOT NULL THEN c.password_hash ELSE u.password_hash_verbatim END
			FROM ` + table(schema, "users") + ` u LEFT JOIN ` + table(schema, CapturesTable) + ` c USING (uid) WHERE u.extra->>'username' = $1`
	}
	args := []any{username}
	if exists {
		args = append(args, passwords.None)
	}
	err = db.QueryRow(ctx, q, args...).Scan(&uid, &alg, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("looking up Cognito user %q in %s.users: %w", username, schema, err)
	}
	if alg != nil {
		cred = &passwords.Credential{Algorithm: *alg}
		if hash != nil {
			cred.Hash = *hash
		}
	}
	return uid, cred, true, nil
}

// Captured returns the captured credential of uid, or nil when there is
// none (or no password_captures table yet).
func Captured(ctx context.Context, db DB, schema, uid string) (*passwords.Credential, error) {
	exists, err := capturesExist(ctx, db, schema)
	if err != nil {
		return nil, fmt.Errorf("reading the captured password of %q: %w", uid, err)
	}
	if !exists {
		return nil, nil
	}
	var c passwords.Credential
	err = db.QueryRow(ctx, `SELECT password_algorithm, password_hash FROM `+table(schema, CapturesTable)+` WHERE uid = $1`, uid).
		Scan(&c.Algorithm, &c.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the captured password of %q: %w", uid, err)
	}
	return &c, nil
}

// Store records a captured credential for uid in password_captures (see
// the package documentation); the users row is left as migrate wrote it,
// so that migrate, sync, verify and cutover keep seeing the source's
// NONE. It refuses a credential that is not a well-formed Argon2id one,
// and returns ErrNotNone (wrapped), writing nothing, when the user's row
// does not hold NONE or a capture is already stored (a concurrent
// sign-in's, say: the first one stays).
func Store(ctx context.Context, db DB, schema, uid string, c *passwords.Credential) error {
	if c == nil || c.Algorithm != passwords.Argon2id || c.Salt != "" || len(c.Params) > 0 {
		return fmt.Errorf("storing the captured password of %q: not an Argon2id credential from Capture", uid)
	}
	if err := passwords.Check(*c); err != nil {
		return fmt.Errorf("storing the captured password of %q: %w", uid, err)
	}
	tag, err := db.Exec(ctx, `INSERT INTO `+table(schema, CapturesTable)+` (uid, password_algorithm, password_hash)
		SELECT uid, $2, $3 FROM `+table(schema, "users")+` WHERE uid = $1 AND password_algorithm = $4
		ON CONFLICT (uid) DO NOTHING`, uid, c.Algorithm, c.Hash, passwords.None)
	if err != nil {
		return fmt.Errorf("storing the captured password of %q in schema %s: %w", uid, schema, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("storing the captured password of %q in schema %s: %w", uid, schema, ErrNotNone)
	}
	return nil
}

// Counts is the capture's progress over the migrated users of a schema.
type Counts struct {
	// Captured users have a credential in password_captures; Applied of
	// them also have it in their users row (Apply).
	Captured, Applied int64
	// Uncaptured users hold NONE and have no captured credential: they
	// have not signed in to the new backend yet.
	Uncaptured int64
	// Since is the time of the first capture (zero: none yet), Last of the
	// latest.
	Since, Last time.Time
}

// Status counts the captured and uncaptured users of schema. A schema
// without password_captures has captured none.
func Status(ctx context.Context, db DB, schema string) (Counts, error) {
	var c Counts
	exists, err := capturesExist(ctx, db, schema)
	if err != nil {
		return c, fmt.Errorf("reading the capture status of schema %s: %w", schema, err)
	}
	users, caps := table(schema, "users"), table(schema, CapturesTable)
	if exists {
		var since, last *time.Time
		err = db.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM `+caps+` c JOIN `+users+` u USING (uid)),
				(SELECT count(*) FROM `+caps+` c JOIN `+users+` u USING (uid)
					WHERE u.password_algorithm = c.password_algorithm AND u.password_hash_verbatim = c.password_hash),
				(SELECT count(*) FROM `+users+` u WHERE u.password_algorithm = $1
					AND NOT EXISTS (SELECT FROM `+caps+` c WHERE c.uid = u.uid)),
				(SELECT min(captured_at) FROM `+caps+`),
				(SELECT max(captured_at) FROM `+caps+`)`, passwords.None).
			Scan(&c.Captured, &c.Applied, &c.Uncaptured, &since, &last)
		if since != nil {
			c.Since, c.Last = *since, *last
		}
	} else {
		err = db.QueryRow(ctx, `SELECT count(*) FROM `+users+` WHERE password_algorithm = $1`, passwords.None).Scan(&c.Uncaptured)
	}
	if err != nil {
		return c, fmt.Errorf("reading the capture status of schema %s: %w", schema, err)
	}
	return c, nil
}

// Apply writes every captured credential into its users row where that
// row holds NONE, and returns how many rows it changed. Run it once the
// source is no longer migrated or synced (after the cutover): a later
// migrate or sync of the pool rewrites the rows as Cognito has them
// (NONE), and verify and cutover would count applied rows as different
// from the source. Applying again after that is safe.
func Apply(ctx context.Context, db DB, schema string) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE `+table(schema, "users")+` u SET password_algorithm = c.password_algorithm,
			password_hash_verbatim = c.password_hash, password_salt_verbatim = NULL, password_hash = NULL, password_salt = NULL,
			password_parameters = NULL, hash_config_id = NULL
		FROM `+table(schema, CapturesTable)+` c WHERE c.uid = u.uid AND u.password_algorithm = $1`, passwords.None)
	if err != nil {
		return 0, fmt.Errorf("applying captured passwords in schema %s: %w", schema, err)
	}
	return tag.RowsAffected(), nil
}
