package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// DefaultUsersSchema is the schema Auth users go to by default. It is not
// "auth", which Supabase and other servers use for their own tables.
const DefaultUsersSchema = "firebase_auth"

// The tables of the users sink, inside its schema.
const (
	UsersTable       = "users"
	ProvidersTable   = "provider_identities"
	MFATable         = "mfa_factors"
	HashConfigsTable = "hash_configs"
	// PositionsTable records where in an export file each loaded user,
	// and each rejected repeat of its uid, was read.
	PositionsTable = "source_positions"
	// DuplicateUIDsView lists the uids an export file holds more than
	// once: the occurrence migrated and the ones rejected.
	DuplicateUIDsView = "duplicate_uids"
)

// userColumns are the columns of the users table, in row order.
var userColumns = []struct{ name, ddlType string }{
	{"uid", "text"},
	{"tenant_id", "text"},
	{"email", "text"},
	{"email_verified", "boolean"},
	{"phone_number", "text"},
	{"display_name", "text"},
	{"photo_url", "text"},
	{"disabled", "boolean"},
	{"created_at", "timestamptz"},
	{"last_sign_in_at", "timestamptz"},
	{"last_refresh_at", "timestamptz"},
	{"password_updated_at", "timestamptz"},
	{"tokens_valid_after", "timestamptz"},
	{"custom_claims", "jsonb"},
	{"password_algorithm", "text"},
	{"password_hash", "bytea"},
	{"password_salt", "bytea"},
	{"password_hash_verbatim", "text"},
	{"password_salt_verbatim", "text"},
	{"password_version", "bigint"},
	{"hash_config_id", "text"},
	{"extra", "jsonb"},
	// password_parameters comes last: tables of earlier versions gain it
	// at the end (see upgradeDDL).
	{"password_parameters", "jsonb"},
}

var providerColumns = []struct{ name, ddlType string }{
	{"uid", "text"},
	{"provider_id", "text"},
	{"provider_uid", "text"},
	{"federated_id", "text"},
	{"email", "text"},
	{"display_name", "text"},
	{"photo_url", "text"},
	{"phone_number", "text"},
	{"screen_name", "text"},
	{"extra", "jsonb"},
}

var mfaColumns = []struct{ name, ddlType string }{
	{"uid", "text"},
	{"enrollment_id", "text"},
	{"factor_id", "text"},
	{"display_name", "text"},
	{"phone_number", "text"},
	{"unobfuscated_phone_number", "text"},
	{"email", "text"},
	{"enrolled_at", "timestamptz"},
	{"extra", "jsonb"},
}

// UsersConfig configures the users sink.
type UsersConfig struct {
	// Schema holds the tables; "" means DefaultUsersSchema. Migrate each
	// Identity Platform tenant into its own schema: uids are unique only
	// within a tenant.
	Schema string
	// SharedHash holds the parameters every user's hash of one algorithm
	// shares (Algorithm and Params; Hash and Salt unused), such as Firebase
	// scrypt's project configuration: stored once in hash_configs, and
	// referenced by every user whose credential has that algorithm. nil
	// stores the hashes without a reference; where their algorithm needs
	// such parameters they cannot be verified until a run with them.
	// Params may hold secrets (Firebase scrypt's signer key): they are
	// stored, never shown.
	SharedHash *passwords.Credential
	// Log receives warnings (users sharing an e-mail address); nil
	// discards them.
	Log *slog.Logger
}

// Users loads users (record.User) into four tables of one schema: users
// keyed by uid, with each user's password algorithm, hash, salt and
// parameters; their provider identities and MFA factors; and the shared
// hash parameters (hash_configs) their password hashes may need.
// docs/auth.md describes the layout.
//
// A user and its child rows are written all or nothing: a record
// PostgreSQL refuses any part of is rejected whole. Child rows the source
// no longer has are deleted, and rows equal to the target's are not
// rewritten, so a re-run changes nothing.
//
// A uid is unique at its source, but an export file can hold one twice (two
// exports concatenated, a hand-edited file). Users read from a file carry
// their record.Position, and the sink stores the position of every
// user it loads in source_positions, in the batch's transaction: the first
// occurrence of a uid in a run is loaded, and every later one — in the same
// batch, a later batch, or after a kill and a resume — is rejected naming
// both positions, never written over it. Warnings lists such uids (the view
// duplicate_uids holds them all). Users from the Auth API have no position:
// the API lists each uid once, so only a repeat within one batch could be
// seen, and is rejected.
type Users struct {
	cfg       UsersConfig
	owner     Owner
	hashID    string // the hash_configs row users reference; "" without one
	hashErr   error  // why cfg.SharedHash cannot be stored; Prepare returns it
	users     *tableDef
	providers *tableDef
	mfa       *tableDef
	labels    struct{ users, providers, mfa string }
	// SQL that deletes child rows of the batch's users that the batch does
	// not have.
	deleteProviders, deleteMFA string
	// SQL that reads the loaded positions of uids, records those of loaded
	// users (and forgets older runs' for them), forgets the positions of
	// users loaded from the API, and records rejected repeats.
	loadedPositions, recordPositions, forgetPositions, recordRepeats string
	// soft is the users table's soft-delete state (SetSoftDeletes); once
	// it has read whether the table has the column, users holds upserts
	// that clear it.
	soft softColumn
}

var (
	_ loaders.Sink        = (*Users)(nil)
	_ loaders.Upgrader    = (*Users)(nil)
	_ loaders.Deleter     = (*Users)(nil)
	_ loaders.SoftDeleter = (*Users)(nil)
)

// NewUsers prepares the users sink.
func NewUsers(cfg UsersConfig) *Users {
	if cfg.Schema == "" {
		cfg.Schema = DefaultUsersSchema
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Users{cfg: cfg}
	s.soft = softColumn{schema: cfg.Schema, table: UsersTable, id: pgx.Identifier{cfg.Schema, UsersTable}, detected: s.usersDetected}
	if cfg.SharedHash != nil {
		s.hashID, s.hashErr = hashConfigID(*cfg.SharedHash)
	}
	def := func(table string, cols []struct{ name, ddlType string }, key ...string) *tableDef {
		names := make([]string, len(cols))
		types := make([]string, len(cols))
		for i, c := range cols {
			names[i], types[i] = c.name, c.ddlType
		}
		return newTableDef(pgx.Identifier{cfg.Schema, table}, names, types, key)
	}
	s.users = def(UsersTable, userColumns, "uid")
	s.providers = def(ProvidersTable, providerColumns, "uid", "provider_id", "provider_uid")
	s.mfa = def(MFATable, mfaColumns, "uid", "enrollment_id")
	s.labels.users = cfg.Schema + "." + UsersTable
	s.labels.providers = cfg.Schema + "." + ProvidersTable
	s.labels.mfa = cfg.Schema + "." + MFATable
	s.deleteProviders = fmt.Sprintf(`DELETE FROM %s WHERE uid = ANY($1::text[])
		AND (uid, provider_id, provider_uid) NOT IN (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]))`, s.table(ProvidersTable))
	s.deleteMFA = fmt.Sprintf(`DELETE FROM %s WHERE uid = ANY($1::text[])
		AND (uid, enrollment_id) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))`, s.table(MFATable))
	pos := s.table(PositionsTable)
	s.loadedPositions = `SELECT uid, file, read, record, line FROM ` + pos + ` WHERE loaded AND uid = ANY($1::text[])`
	s.recordPositions = `WITH new (uid, file, read, record, line) AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
		), older AS (
			DELETE FROM ` + pos + ` p USING new n WHERE p.uid = n.uid AND (p.read, p.file) IS DISTINCT FROM (n.read, n.file)
		)
		INSERT INTO ` + pos + ` (file, read, record, line, uid, loaded) SELECT file, read, record, line, uid, true FROM new
		ON CONFLICT (read, file, record) DO UPDATE SET uid = EXCLUDED.uid, line = EXCLUDED.line, loaded = true`
	s.forgetPositions = `DELETE FROM ` + pos + ` WHERE uid = ANY($1::text[])`
	s.recordRepeats = `INSERT INTO ` + pos + ` (file, read, record, line, uid, loaded)
		SELECT file, read, record, line, uid, false FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS n (uid, file, read, record, line)
		ON CONFLICT (read, file, record) DO UPDATE SET uid = EXCLUDED.uid, line = EXCLUDED.line, loaded = false`
	return s
}

func (s *Users) table(name string) string { return pgx.Identifier{s.cfg.Schema, name}.Sanitize() }

// SetOwner makes Prepare claim the schema's tables (Tables) for o, refusing
// tables another source owns (see ClaimTables); PlannedDDL then says so.
// Two projects, or two tenants, share no users tables unless
// o.Share: their uids would overwrite each other's rows.
func (s *Users) SetOwner(o Owner) { s.owner = o }

// Tables lists the tables the sink writes, schema-qualified, for
// ClaimTables and CheckTableOwners.
func (s *Users) Tables() []pgx.Identifier {
	var out []pgx.Identifier
	for _, t := range []string{UsersTable, ProvidersTable, MFATable, HashConfigsTable, PositionsTable} {
		out = append(out, pgx.Identifier{s.cfg.Schema, t})
	}
	return out
}

// HashConfigID is the id of the hash_configs row the sink's users
// reference; "" without shared hash parameters. It depends only on the
// parameters (see hashConfigID), never shows them, and is the same in
// every database.
func (s *Users) HashConfigID() string { return s.hashID }

// hashConfigID names a set of shared hash parameters by a fingerprint of
// them. Firebase scrypt's keep the ids of earlier versions,
// "scrypt-" + firebasescrypt.Params.Fingerprint, which rows and
// interrupted runs already refer to; other algorithms' are the algorithm
// in lower case, "-", and the first 16 hex digits of a SHA-256 over the
// algorithm and the sorted parameters.
func hashConfigID(c passwords.Credential) (string, error) {
	if c.Algorithm == "" || !slices.Contains(passwords.Algorithms(), c.Algorithm) {
		return "", fmt.Errorf("the shared password hash parameters are of an unknown algorithm %q", c.Algorithm)
	}
	if c.Algorithm == passwords.FirebaseScrypt {
		p, err := passwords.FirebaseScryptParamsFrom(c.Params)
		if err != nil {
			return "", fmt.Errorf("the shared password hash parameters: %w", err)
		}
		return "scrypt-" + p.Fingerprint(), nil
	}
	return strings.ToLower(c.Algorithm) + "-" + hex.EncodeToString(HashParamsDigest(c.Algorithm, c.Params))[:16], nil
}

// HashParamsDigest stands for a set of shared hash parameters without
// showing them: a SHA-256 over "baasmigrate-hash-config-v1", the algorithm,
// and each parameter's name and value in name order, each prefixed with
// its length. The hash_configs ids of algorithms other than Firebase
// scrypt are made of it (hashConfigID), and plan and verify compare it in
// place of the parameters.
func HashParamsDigest(algorithm string, params map[string]string) []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write([]byte(b))
	}
	field("baasmigrate-hash-config-v1")
	field(algorithm)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		field(k)
		field(params[k])
	}
	return h.Sum(nil)
}

// usersDDL creates the schema; every statement is idempotent.
func (s *Users) usersDDL() []string {
	q := func(name string) string { return s.table(name) }
	return []string{
		`CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{s.cfg.Schema}.Sanitize(),
		`CREATE TABLE IF NOT EXISTS ` + q(HashConfigsTable) + ` (
			id         text PRIMARY KEY,
			algorithm  text NOT NULL,
			parameters jsonb NOT NULL ` + hashParametersCheck + `,
			signer_key     bytea,
			salt_separator bytea,
			rounds         integer,
			mem_cost       integer,
			added_at   timestamptz NOT NULL DEFAULT now(),
			` + hashConfigsFirebaseColumns + `
		)`,
		// Parameters can be secrets (Firebase scrypt's signer key): nobody
		// but the owner by default.
		`REVOKE ALL ON ` + q(HashConfigsTable) + ` FROM PUBLIC`,
		`CREATE TABLE IF NOT EXISTS ` + q(UsersTable) + ` (
			uid                    text PRIMARY KEY,
			tenant_id              text,
			email                  text,
			email_verified         boolean NOT NULL,
			phone_number           text,
			display_name           text,
			photo_url              text,
			disabled               boolean NOT NULL,
			created_at             timestamptz,
			last_sign_in_at        timestamptz,
			last_refresh_at        timestamptz,
			password_updated_at    timestamptz,
			tokens_valid_after     timestamptz,
			custom_claims          jsonb CHECK (jsonb_typeof(custom_claims) = 'object'),
			password_algorithm     text ` + s.algorithmCheck() + `,
			password_hash          bytea,
			password_salt          bytea,
			password_hash_verbatim text,
			password_salt_verbatim text,
			password_version       bigint,
			hash_config_id         text REFERENCES ` + q(HashConfigsTable) + `,
			extra                  jsonb,
			password_parameters    jsonb ` + passwordParametersCheck + `,
			` + passwordHashCheck + `
		)`,
		`CREATE INDEX IF NOT EXISTS users_email_lower ON ` + q(UsersTable) + ` (lower(email))`,
		`CREATE INDEX IF NOT EXISTS users_phone_number ON ` + q(UsersTable) + ` (phone_number)`,
		`CREATE TABLE IF NOT EXISTS ` + q(ProvidersTable) + ` (
			uid          text NOT NULL REFERENCES ` + q(UsersTable) + ` ON DELETE CASCADE,
			provider_id  text NOT NULL,
			provider_uid text NOT NULL,
			federated_id text,
			email        text,
			display_name text,
			photo_url    text,
			phone_number text,
			screen_name  text,
			extra        jsonb,
			PRIMARY KEY (uid, provider_id, provider_uid)
		)`,
		`CREATE INDEX IF NOT EXISTS provider_identities_by_provider ON ` + q(ProvidersTable) + ` (provider_id, provider_uid)`,
		`CREATE TABLE IF NOT EXISTS ` + q(MFATable) + ` (
			uid                       text NOT NULL REFERENCES ` + q(UsersTable) + ` ON DELETE CASCADE,
			enrollment_id             text NOT NULL,
			factor_id                 text NOT NULL,
			display_name              text,
			phone_number              text,
			unobfuscated_phone_number text,
			email                     text,
			enrolled_at               timestamptz,
			extra                     jsonb,
			PRIMARY KEY (uid, enrollment_id)
		)`,
		`CREATE OR REPLACE VIEW ` + q("duplicate_emails") + ` AS
			SELECT lower(email) AS email, count(*) AS users,
				array_agg(uid ORDER BY created_at NULLS LAST, uid) AS uids
			FROM ` + q(UsersTable) + ` WHERE email IS NOT NULL
			GROUP BY lower(email) HAVING count(*) > 1`,
		// read identifies one run's reading of the file (its plan);
		// loaded marks the occurrence whose values the users row holds.
		`CREATE TABLE IF NOT EXISTS ` + q(PositionsTable) + ` (
			file   text NOT NULL,
			read   text NOT NULL,
			record bigint NOT NULL,
			line   bigint NOT NULL,
			uid    text NOT NULL,
			loaded boolean NOT NULL,
			PRIMARY KEY (read, file, record)
		)`,
		`CREATE INDEX IF NOT EXISTS source_positions_uid ON ` + q(PositionsTable) + ` (uid)`,
		`CREATE OR REPLACE VIEW ` + q(DuplicateUIDsView) + ` AS
			SELECT l.uid, l.file, l.record AS migrated_record, l.line AS migrated_line,
				array_agg(r.record ORDER BY r.record) AS rejected_records,
				array_agg(r.line ORDER BY r.record) AS rejected_lines
			FROM ` + q(PositionsTable) + ` l
			JOIN ` + q(PositionsTable) + ` r ON r.uid = l.uid AND r.read = l.read AND r.file = l.file AND NOT r.loaded
			WHERE l.loaded
			GROUP BY l.uid, l.file, l.record, l.line`,
	}
}

// Prepare claims the tables (see SetOwner), creates the schema and tables
// when missing, upgrades tables of earlier versions (upgradeDDL) and stores
// the shared hash parameters, in one transaction: a refused job creates,
// changes and stores nothing.
func (s *Users) Prepare(ctx context.Context, db loaders.DB) error {
	if s.hashErr != nil {
		return s.hashErr
	}
	err := pgx.BeginFunc(ctx, beginner{db}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
			return err
		}
		if err := ClaimTables(ctx, tx, s.owner, s.Tables()); err != nil {
			return err
		}
		for _, stmt := range s.usersDDL() {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%w\nin: %s", err, firstLine(stmt))
			}
		}
		if err := s.upgrade(ctx, tx); err != nil {
			return err
		}
		if err := s.soft.prepare(ctx, tx); err != nil {
			return err
		}
		if s.hashID == "" {
			return nil
		}
		params, err := json.Marshal(nonNilParams(s.cfg.SharedHash.Params))
		if err != nil {
			return fmt.Errorf("encoding the password hash parameters: %w", err)
		}
		args := append([]any{s.hashID, s.cfg.SharedHash.Algorithm, string(params)}, s.firebaseColumns()...)
		_, err = tx.Exec(ctx, `INSERT INTO `+s.table(HashConfigsTable)+` (id, algorithm, parameters, signer_key, salt_separator, rounds, mem_cost)
			VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`, args...)
		if err != nil {
			return fmt.Errorf("storing the password hash parameters: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating the users tables in schema %q: %w", s.cfg.Schema, err)
	}
	return nil
}

// Upgrade brings tables an earlier version made to this version's layout
// (upgradeDDL), under the lock and in one transaction as Prepare does, and
// does nothing else: it creates no table, stores no hash parameters and
// claims nothing. When the tables are absent or already current it only
// reads the catalog and issues no other statement. It is idempotent. (The
// engine calls it, as loaders.Upgrader, on a re-run with nothing to copy.)
func (s *Users) Upgrade(ctx context.Context, db loaders.DB) error {
	upgrade, err := s.upgradeDDL(ctx, db)
	if err != nil || len(upgrade) == 0 {
		return err
	}
	err = pgx.BeginFunc(ctx, beginner{db}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
			return err
		}
		// Another run may have upgraded them meanwhile.
		return s.upgrade(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("upgrading the users tables in schema %q: %w", s.cfg.Schema, err)
	}
	return nil
}

// upgrade runs the statements upgradeDDL reads from the catalog in tx,
// which holds the DDL lock.
func (s *Users) upgrade(ctx context.Context, tx pgx.Tx) error {
	stmts, err := s.upgradeDDL(ctx, tx)
	if err != nil {
		return err
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt.SQL); err != nil {
			return fmt.Errorf("%s: %w", stmt.What, err)
		}
	}
	return nil
}

// firebaseColumns are the values of hash_configs' signer_key,
// salt_separator, rounds and mem_cost for the shared parameters: Firebase
// scrypt's, as earlier versions stored them, or four nils (NULL) for
// other algorithms.
func (s *Users) firebaseColumns() []any {
	if s.cfg.SharedHash == nil || s.cfg.SharedHash.Algorithm != passwords.FirebaseScrypt {
		return []any{nil, nil, nil, nil}
	}
	p, err := passwords.FirebaseScryptParamsFrom(s.cfg.SharedHash.Params) // checked by hashConfigID
	if err != nil {
		return []any{nil, nil, nil, nil}
	}
	return []any{p.SignerKey(), p.SaltSeparator(), p.Rounds(), p.MemCost()}
}

// beginner adapts loaders.DB to pgx.BeginFunc.
type beginner struct{ db loaders.DB }

func (b beginner) Begin(ctx context.Context) (pgx.Tx, error) { return b.db.Begin(ctx) }

// userRows are one user's rows in the three tables.
type userRows struct {
	uid       string
	pos       *record.Position // nil for users from the API
	user      []any
	providers [][]any
	mfa       [][]any
}

// Write stores a batch of users. Records the extractor marked invalid, and
// users whose data cannot be stored (a credential of an unknown algorithm
// or one passwords.Check refuses, an undecodable Firebase scrypt hash,
// custom claims that are not a JSON object, a value PostgreSQL refuses), are
// rejected with the reason; so is every occurrence of a uid after its
// first (see Users); the others load.
func (s *Users) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(recs))}
	if err := s.soft.detect(ctx, tx); err != nil {
		return out, err
	}
	all := make([]*userRows, len(recs))
	var positioned []string
	for i, rec := range recs {
		out.Tables[i] = s.labels.users
		rows, reason := s.rows(rec)
		if reason != "" {
			out.Reject(i, reason)
			continue
		}
		all[i] = rows
		if rows.pos != nil {
			positioned = append(positioned, rows.uid)
		}
	}
	kept, err := s.loadedOccurrences(ctx, tx, positioned)
	if err != nil {
		return out, err
	}
	occs := make([]*occurrence, len(all))
	for i, rows := range all {
		if rows != nil {
			occs[i] = &occurrence{key: rows.uid, uid: rows.uid, pos: rows.pos}
		}
	}
	index, repeats := splitRepeats(occs, kept, nil, &out)
	if err := s.writeBatch(ctx, tx, all, index, &out); err != nil {
		return out, err
	}
	if err := s.rejectRepeats(ctx, tx, repeats, &out); err != nil {
		return out, err
	}
	return out, nil
}

// writeBatch writes the users of all that index lists (all[i] is record
// i) and, when something in them is refused, user by user to find and
// reject which.
func (s *Users) writeBatch(ctx context.Context, tx pgx.Tx, all []*userRows, index []int, out *loaders.Outcome) error {
	i, err := writeIsolating(all, index, out,
		func(set []*userRows) (map[string]int64, error) { return s.writeAll(ctx, tx, set) },
		func(changed map[string]int64) {
			for t, n := range changed {
				out.AddChanged(t, n)
			}
		},
		func(err error) (string, bool) {
			if isDataError(err) {
				return "PostgreSQL refused the user: " + errorText(err), true
			}
			return "", false
		})
	switch {
	case err == nil:
		return nil
	case i >= 0:
		return fmt.Errorf("loading user %q: %w", all[i].uid, err)
	default:
		return fmt.Errorf("loading %d users into schema %q: %w", len(index), s.cfg.Schema, err)
	}
}

// occurrenceKey is a uid as read by one run from one file.
type occurrenceKey struct{ uid, file, read string }

// loadedOccurrences returns the stored positions of the loaded users
// among uids.
func (s *Users) loadedOccurrences(ctx context.Context, tx pgx.Tx, uids []string) (map[occurrenceKey]record.Position, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	return readOccurrences(ctx, tx, s.loadedPositions, uids)
}

// readOccurrences runs query, which returns (key, file, reading, record,
// line) of loaded occurrences, and gathers them by key, file and reading.
func readOccurrences(ctx context.Context, tx pgx.Tx, query string, args ...any) (map[occurrenceKey]record.Position, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading where the batch's users were read before: %w", err)
	}
	kept := map[occurrenceKey]record.Position{}
	var key string
	var p record.Position
	_, err = pgx.ForEachRow(rows, []any{&key, &p.File, &p.Read, &p.Record, &p.Line}, func() error {
		kept[occurrenceKey{key, p.File, p.Read}] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading where the batch's users were read before: %w", err)
	}
	return kept, nil
}

// rejectRepeats rejects the repeats, naming both occurrences, and records
// the repeats whose first occurrence is loaded, for Warnings.
func (s *Users) rejectRepeats(ctx context.Context, tx pgx.Tx, repeats []repeat, out *loaders.Outcome) error {
	_, cols := rejectRepeats(repeats, out)
	if len(cols.uid) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, s.recordRepeats, cols.args()...); err != nil {
		return fmt.Errorf("recording uids that appear more than once: %w", err)
	}
	return nil
}

// writeAll upserts the users of set and their child rows, and deletes
// child rows they no longer have, all under one savepoint: on error
// nothing of set is written and tx stays usable.
func (s *Users) writeAll(ctx context.Context, tx pgx.Tx, set []*userRows) (map[string]int64, error) {
	return underSavepoint(ctx, tx, func(sp pgx.Tx) (map[string]int64, error) { return s.write(ctx, sp, set) })
}

func (s *Users) write(ctx context.Context, tx pgx.Tx, set []*userRows) (map[string]int64, error) {
	changed := map[string]int64{}
	var users, providers, mfa [][]any
	uids := make([]string, len(set))
	var provKeys, mfaKeys [3][]string
	for i, r := range set {
		uids[i] = r.uid
		if s.soft.marked() {
			users = append(users, append(slices.Clone(r.user), nil)) // live
		} else {
			users = append(users, r.user)
		}
		for _, p := range r.providers {
			providers = append(providers, p)
			provKeys[0] = append(provKeys[0], r.uid)
			provKeys[1] = append(provKeys[1], p[1].(string))
			provKeys[2] = append(provKeys[2], p[2].(string))
		}
		for _, m := range r.mfa {
			mfa = append(mfa, m)
			mfaKeys[0] = append(mfaKeys[0], r.uid)
			mfaKeys[1] = append(mfaKeys[1], m[1].(string))
		}
	}
	for _, step := range []struct {
		def   *tableDef
		label string
		rows  [][]any
	}{{s.users, s.labels.users, users}, {s.providers, s.labels.providers, providers}, {s.mfa, s.labels.mfa, mfa}} {
		if len(step.rows) == 0 {
			continue
		}
		if err := step.def.createStage(ctx, tx); err != nil {
			return nil, fmt.Errorf("creating the staging table for %s: %w", step.label, err)
		}
		n, err := step.def.load(ctx, tx, step.rows)
		if err != nil {
			return nil, err
		}
		changed[step.label] += n
	}
	tag, err := tx.Exec(ctx, s.deleteProviders, uids, nonNil(provKeys[0]), nonNil(provKeys[1]), nonNil(provKeys[2]))
	if err != nil {
		return nil, err
	}
	changed[s.labels.providers] += tag.RowsAffected()
	tag, err = tx.Exec(ctx, s.deleteMFA, uids, nonNil(mfaKeys[0]), nonNil(mfaKeys[1]))
	if err != nil {
		return nil, err
	}
	changed[s.labels.mfa] += tag.RowsAffected()
	if err := s.recordLoaded(ctx, tx, set); err != nil {
		return nil, err
	}
	for k, v := range changed {
		if v == 0 {
			delete(changed, k)
		}
	}
	return changed, nil
}

// recordLoaded stores where the users of set were read: the positions of
// those from a file (forgetting older runs' positions of their uids), and
// no position for those from the API.
func (s *Users) recordLoaded(ctx context.Context, tx pgx.Tx, set []*userRows) error {
	loaded := make([]occurrence, len(set))
	for i, r := range set {
		loaded[i] = occurrence{key: r.uid, uid: r.uid, pos: r.pos}
	}
	fromAPI, _, cols := splitLoaded(loaded)
	if len(cols.uid) > 0 {
		if _, err := tx.Exec(ctx, s.recordPositions, cols.args()...); err != nil {
			return err
		}
	}
	if len(fromAPI) > 0 {
		if _, err := tx.Exec(ctx, s.forgetPositions, fromAPI); err != nil {
			return err
		}
	}
	return nil
}

// positionColumns are users' positions as the parallel arrays that
// recordPositions and recordRepeats unnest, in their parameter order.
type positionColumns struct {
	uid, file, read []string
	record, line    []int64
}

func (c *positionColumns) add(uid string, p record.Position) {
	c.uid = append(c.uid, uid)
	c.file = append(c.file, p.File)
	c.read = append(c.read, p.Read)
	c.record = append(c.record, p.Record)
	c.line = append(c.line, p.Line)
}

func (c *positionColumns) args() []any { return []any{c.uid, c.file, c.read, c.record, c.line} }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Warnings reports uids an export file holds more than once (see Users),
// and e-mail addresses (compared without case) that several users share.
func (s *Users) Warnings(ctx context.Context, db loaders.DB) ([]string, error) {
	var out []string
	dup, err := s.duplicateUIDWarning(ctx, db)
	if err != nil {
		return nil, err
	}
	if dup != "" {
		out = append(out, dup)
	}
	emails, err := s.sharedEmailWarnings(ctx, db)
	if err != nil {
		return nil, err
	}
	return append(out, emails...), nil
}

// duplicateUIDWarning names up to five uids of duplicate_uids with their
// positions; "" when there are none.
func (s *Users) duplicateUIDWarning(ctx context.Context, db loaders.DB) (string, error) {
	rows, err := db.Query(ctx, `SELECT uid, file, migrated_record, migrated_line, rejected_records, rejected_lines, count(*) OVER ()
		FROM `+s.table(DuplicateUIDsView)+` ORDER BY file, migrated_record LIMIT 5`)
	if err != nil {
		return "", fmt.Errorf("looking for uids that appear more than once: %w", err)
	}
	total, samples, err := repeatSamples(rows)
	if err != nil {
		return "", err
	}
	if total == 0 {
		return "", nil
	}
	return fmt.Sprintf("an export file holds %d uid(s) more than once: %s. Only the first occurrence of each was migrated; "+
		"the others are rejected, stored with their reason. A Firebase uid is unique: check which account is right; see SELECT * FROM %s",
		total, strings.Join(samples, "; "), s.table(DuplicateUIDsView)), nil
}

// sharedEmailWarnings reports e-mail addresses (compared without case)
// that several users share. Sources allow it (when "one account per
// e-mail address" is off), across providers of linked accounts, and across
// tenants; all such users are loaded, and the view duplicate_emails lists
// every address.
// Only uids are named, never the addresses.
func (s *Users) sharedEmailWarnings(ctx context.Context, db loaders.DB) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT uids FROM `+s.table("duplicate_emails")+` ORDER BY uids[1]`)
	if err != nil {
		return nil, fmt.Errorf("looking for shared e-mail addresses: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
	if err != nil {
		return nil, fmt.Errorf("looking for shared e-mail addresses: %w", err)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	sample := groups[:min(len(groups), 5)]
	return []string{fmt.Sprintf("users share an e-mail address (%d address(es); uids %v); all of them were loaded. "+
		"Your new sign-in must decide which account an address signs in to; see SELECT * FROM %s",
		len(groups), sample, s.table("duplicate_emails"))}, nil
}

// knownAlgorithms is passwords.Algorithms(), copied once rather than per
// user.
var knownAlgorithms = passwords.Algorithms()

// rows lays a user record out as rows, or says why it cannot be stored.
// Reasons never contain password hashes or the hash parameters.
func (s *Users) rows(rec record.Record) (*userRows, string) {
	u, err := record.UserFrom(rec)
	if err != nil {
		return nil, err.Error()
	}
	if u.Invalid != "" {
		return nil, u.Invalid
	}
	var claims any
	if u.CustomClaims != nil && strings.TrimSpace(*u.CustomClaims) != "" {
		text := []byte(*u.CustomClaims)
		if !json.Valid(text) || !bytes.HasPrefix(bytes.TrimSpace(text), []byte("{")) {
			return nil, "custom claims are not a JSON object"
		}
		claims = text
	}
	var (
		algorithm, hashVerbatim, saltVerbatim, hashConfig, version, params any
		hash, salt                                                         any
	)
	if p := u.Password; p != nil {
		if !slices.Contains(knownAlgorithms, p.Algorithm) {
			return nil, fmt.Sprintf("unknown password algorithm mark %q", p.Algorithm)
		}
		algorithm = p.Algorithm
		if p.Version != nil {
			version = *p.Version
		}
		encoded := p.Algorithm == passwords.FirebaseScrypt && firebaseEncoded(p.Hash)
		switch {
		case p.Algorithm == passwords.FirebaseScrypt && !encoded:
			// Stored decoded, as bytes: Firebase hands the same hash out in
			// several base64 flavours.
			h, err := firebasescrypt.DecodeBase64(p.Hash)
			if err != nil {
				return nil, "the Firebase scrypt password hash is not base64 (" + err.Error() + ")"
			}
			sl, err := firebasescrypt.DecodeBase64(p.Salt)
			if err != nil {
				return nil, "the password salt is not base64 (" + err.Error() + ")"
			}
			if len(h) == 0 {
				return nil, "the Firebase scrypt password hash is empty"
			}
			hash, salt = h, sl
		case p.Algorithm == passwords.None:
		default:
			// The source's text, exactly: self-describing hashes ($2b$...,
			// $argon2id$..., Firebase scrypt's $fbscrypt$... and
			// $firescrypt$..., which carry their parameters and salt) and
			// hex or base64 digests alike.
			hashVerbatim, saltVerbatim = p.Hash, p.Salt
		}
		// Every credential is checked (passwords.Check) except two kinds,
		// stored as earlier versions stored them: EMULATOR_FAKE, the Auth
		// emulator's clear-text stand-in, kept verbatim whatever it holds;
		// and a Firebase scrypt hash without parameters of its own, whose
		// hash and salt were decoded above and which uses the project's
		// shared parameters — checking it against them would reject hashes
		// earlier versions stored (and without them there is nothing to
		// check it against until a run is given them). Any other credential
		// without parameters of its own is checked with the shared ones of
		// its algorithm, which the reader gives back to it.
		if p.Algorithm != passwords.EmulatorFake && (p.Algorithm != passwords.FirebaseScrypt || encoded || len(p.Params) > 0) {
			if err := passwords.Check(withShared(*p, s.cfg.SharedHash)); err != nil {
				return nil, err.Error()
			}
		}
		if len(p.Params) > 0 {
			text, err := json.Marshal(p.Params)
			if err != nil {
				return nil, "the password parameters cannot be encoded: " + err.Error()
			}
			params = text
		}
		if s.hashID != "" && p.Algorithm == s.cfg.SharedHash.Algorithm && !encoded {
			hashConfig = s.hashID
		}
	}
	var tenant any
	if u.TenantID != "" {
		tenant = u.TenantID
	}
	r := &userRows{uid: u.UID, pos: u.Position}
	r.user = []any{
		u.UID, tenant, optStr(u.Email), u.EmailVerified, optStr(u.PhoneNumber), optStr(u.DisplayName), optStr(u.PhotoURL),
		u.Disabled, nullTime(u.CreatedAt), nullTime(u.LastSignInAt), nullTime(u.LastRefreshAt),
		nullTime(u.PasswordUpdatedAt), nullTime(u.ValidSince), claims,
		algorithm, hash, salt, hashVerbatim, saltVerbatim, version, hashConfig, typedJSON(u.Extra), params,
	}
	seen := map[string]bool{}
	for _, p := range u.Providers {
		k := p.ProviderID + "\x00" + p.RawID
		if seen[k] {
			return nil, fmt.Sprintf("provider identity %s/%s appears twice", p.ProviderID, p.RawID)
		}
		seen[k] = true
		r.providers = append(r.providers, []any{
			u.UID, p.ProviderID, p.RawID, optStr(p.FederatedID), optStr(p.Email), optStr(p.DisplayName),
			optStr(p.PhotoURL), optStr(p.PhoneNumber), optStr(p.Name), typedJSON(p.Extra),
		})
	}
	seen = map[string]bool{}
	for _, m := range u.MFA {
		if seen[m.EnrollmentID] {
			return nil, fmt.Sprintf("MFA enrollment %s appears twice", m.EnrollmentID)
		}
		seen[m.EnrollmentID] = true
		r.mfa = append(r.mfa, []any{
			u.UID, m.EnrollmentID, m.FactorID, optStr(m.DisplayName), optStr(m.PhoneNumber),
			optStr(m.UnobfuscatedPhoneNumber), optStr(m.EmailAddr), nullTime(m.EnrolledAt), typedJSON(m.Extra),
		})
	}
	return r, ""
}

// withShared is c with the shared parameters of its algorithm when it has
// none of its own and is not a Firebase scrypt hash in a self-describing
// form (firebaseEncoded): the credential as the users tables give it back.
func withShared(c passwords.Credential, shared *passwords.Credential) passwords.Credential {
	encoded := c.Algorithm == passwords.FirebaseScrypt && firebaseEncoded(c.Hash)
	if len(c.Params) == 0 && !encoded && shared != nil && c.Algorithm == shared.Algorithm {
		c.Params = shared.Params
	}
	return c
}

// firebaseEncoded reports whether a Firebase scrypt hash is in one of the
// self-describing forms passwords.Check accepts (Supabase's $fbscrypt$…,
// Kratos' $firescrypt$…), which carry their own parameters and salt.
func firebaseEncoded(hash string) bool {
	return strings.HasPrefix(hash, firebasescrypt.SupabasePrefix) || strings.HasPrefix(hash, firebasescrypt.KratosPrefix)
}

// nonNilParams is params, or an empty map for nil (stored as {}).
func nonNilParams(params map[string]string) map[string]string {
	if params == nil {
		return map[string]string{}
	}
	return params
}

func optStr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// typedJSON encodes fields as typed JSON for a jsonb column; nil when
// there are none.
func typedJSON(m map[string]record.Value) any {
	if len(m) == 0 {
		return nil
	}
	return record.MarshalJSONFields(nil, m)
}
