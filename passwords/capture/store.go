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

// DB is what the functions below need of a connection or pool
// (*pgxpool.Pool, *pgx.Conn).
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CapturesTable is the table, in the users schema, recording every
// captured credential.
const CapturesTable = "password_captures"

// ErrNotNone is returned (wrapped) by Store when the user's row no longer
// holds a NONE credential (captured by a concurrent sign-in, or no such
// user): nothing is written.
var ErrNotNone = errors.New("the user's stored credential is not NONE")

func table(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// EnsureTable creates <schema>.password_captures if it does not exist. It
// needs CREATE on the schema: run it once as the role that ran migrate
// (`baasmigrate auth capture-status --create`) when the application's
// role has no such right.
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

// UIDByUsername returns the uid (the Cognito sub) of the migrated user
// with the given Cognito username, and its stored credential (nil: no
// password). ok is false when no migrated user has that username.
func UIDByUsername(ctx context.Context, db DB, schema, username string) (uid string, cred *passwords.Credential, ok bool, err error) {
	var alg, hash *string
	err = db.QueryRow(ctx, `SELECT uid, password_algorithm, password_hash_verbatim FROM `+table(schema, "users")+
		` WHERE extra->>'username' = $1`, username).Scan(&uid, &alg, &hash)
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

// Store writes a captured credential for uid (see the package
// documentation): into the users row, only while it holds NONE, and into
// password_captures, in one transaction. It refuses a credential that is
// not a well-formed Argon2id one, and returns ErrNotNone (wrapped),
// writing nothing, when the row does not hold NONE.
func Store(ctx context.Context, db DB, schema, uid string, c *passwords.Credential) error {
	if c == nil || c.Algorithm != passwords.Argon2id || c.Salt != "" || len(c.Params) > 0 {
		return fmt.Errorf("storing the captured password of %q: not an Argon2id credential from Capture", uid)
	}
	if err := passwords.Check(*c); err != nil {
		return fmt.Errorf("storing the captured password of %q: %w", uid, err)
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE `+table(schema, "users")+` SET password_algorithm = $2, password_hash_verbatim = $3,
				password_salt_verbatim = NULL, password_hash = NULL, password_salt = NULL, password_parameters = NULL, hash_config_id = NULL
			WHERE uid = $1 AND password_algorithm = $4`, uid, c.Algorithm, c.Hash, passwords.None)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrNotNone
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+table(schema, CapturesTable)+` (uid, password_algorithm, password_hash) VALUES ($1, $2, $3)
			ON CONFLICT (uid) DO UPDATE SET password_algorithm = EXCLUDED.password_algorithm, password_hash = EXCLUDED.password_hash,
				captured_at = now()`, uid, c.Algorithm, c.Hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("storing the captured password of %q in schema %s: %w", uid, schema, err)
	}
	return nil
}

// Counts is the capture's progress over the migrated users of a schema.
type Counts struct {
	// Captured users have a credential in password_captures; Reverted of
	// them have NONE again in users (a later migrate rewrote the row: see
	// Reapply).
	Captured, Reverted int64
	// Uncaptured users still have NONE and no captured credential: they
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
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table(schema, CapturesTable)).Scan(&exists); err != nil {
		return c, fmt.Errorf("reading the capture status of schema %s: %w", schema, err)
	}
	users := table(schema, "users")
	var err error
	if exists {
		var since, last *time.Time
		err = db.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM `+table(schema, CapturesTable)+`),
				(SELECT count(*) FROM `+table(schema, CapturesTable)+` c JOIN `+users+` u USING (uid) WHERE u.password_algorithm = $1),
				(SELECT count(*) FROM `+users+` u WHERE u.password_algorithm = $1
					AND NOT EXISTS (SELECT FROM `+table(schema, CapturesTable)+` c WHERE c.uid = u.uid)),
				(SELECT min(captured_at) FROM `+table(schema, CapturesTable)+`),
				(SELECT max(captured_at) FROM `+table(schema, CapturesTable)+`)`, passwords.None).
			Scan(&c.Captured, &c.Reverted, &c.Uncaptured, &since, &last)
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

// Reapply writes every captured credential back into its users row where
// that row holds NONE again, and returns how many rows it changed.
func Reapply(ctx context.Context, db DB, schema string) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE `+table(schema, "users")+` u SET password_algorithm = c.password_algorithm,
			password_hash_verbatim = c.password_hash, password_salt_verbatim = NULL, password_hash = NULL, password_salt = NULL,
			password_parameters = NULL, hash_config_id = NULL
		FROM `+table(schema, CapturesTable)+` c WHERE c.uid = u.uid AND u.password_algorithm = $1`, passwords.None)
	if err != nil {
		return 0, fmt.Errorf("re-applying captured passwords in schema %s: %w", schema, err)
	}
	return tag.RowsAffected(), nil
}
