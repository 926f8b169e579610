package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// SupabaseSchema is the schema of Supabase Auth's tables.
const SupabaseSchema = "auth"

// SupabaseInstanceID is the instance_id Supabase Auth gives every user
// (uuid.Nil: supabase/auth internal/models/user.go finds users with
// "instance_id = uuid.Nil").
const SupabaseInstanceID = "00000000-0000-0000-0000-000000000000"

// SupabaseBannedUntil is the banned_until of a disabled user: a fixed
// instant far away, so that a re-run writes the same value (the file
// export asks the admin API for a 100-year ban instead).
var SupabaseBannedUntil = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// supabaseProviders maps Firebase provider ids to Supabase Auth's
// provider names (supabase/auth internal/conf/configuration.go, the
// external providers' json names). Providers not listed (OIDC and SAML
// providers of Identity Platform, Play Games, ...) get no identity; they
// stay in raw_app_meta_data.firebase_providers.
var supabaseProviders = map[string]string{
	"google.com":    "google",
	"apple.com":     "apple",
	"github.com":    "github",
	"facebook.com":  "facebook",
	"twitter.com":   "twitter",
	"microsoft.com": "azure",
}

// supabaseMapped are the Supabase providers the sink writes identities
// of: "email", "phone" and those of supabaseProviders, sorted. Only
// identities of these providers are ever deleted (see SupabaseUsers).
var supabaseMapped = func() []string {
	out := []string{"email", "phone"}
	for _, p := range supabaseProviders {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}()

// supabaseUserColumns are the auth.users columns the sink writes, in the
// order of its rows; supabaseIdentityColumns the auth.identities ones
// (besides id, which the table's default fills).
var (
	supabaseUserColumns = []string{"instance_id", "id", "aud", "role", "email", "encrypted_password",
		"email_confirmed_at", "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
		"last_sign_in_at", "raw_app_meta_data", "raw_user_meta_data", "created_at", "updated_at",
		"phone", "phone_confirmed_at", "banned_until", "is_sso_user", "is_anonymous"}
	supabaseIdentityColumns = []string{"provider_id", "user_id", "identity_data", "provider",
		"last_sign_in_at", "created_at", "updated_at"}
)

// SupabasePositionsTable, in StateSchema, records where in an export file
// each user SupabaseUsers loaded, and each rejected repeat of its uid, was
// read (see SupabaseUsers): Supabase's auth schema gets no table of the
// tool's.
const SupabasePositionsTable = "supabase_user_positions"

// SupabaseUsersConfig configures the Supabase Auth users sink.
type SupabaseUsersConfig struct {
	// Schema holds Supabase Auth's users and identities tables; ""
	// means SupabaseSchema.
	Schema string
	// EmailConfirm is authexport.ConfirmAll ("" means it) or
	// authexport.ConfirmVerified: which e-mail addresses get an
	// email_confirmed_at (Supabase Auth refuses password sign-in without
	// one), exactly as auth export --email-confirm decides.
	EmailConfirm string
	// SharedHash holds the project's shared hash parameters (Firebase
	// scrypt's), given to every credential of that algorithm without
	// parameters of its own; see UsersConfig.SharedHash.
	SharedHash *passwords.Credential
}

// SupabaseUsers loads users (record.User) into Supabase Auth's own tables,
// auth.users and auth.identities, in the form Supabase Auth reads them, so
// that users sign in there with their Firebase passwords. It neither
// creates nor alters those tables: Prepare refuses when they lack a column
// it writes.
//
// Each user's id is authexport.SupabaseID(tenant, uid), the UUID the file
// export writes; the uid is kept in raw_app_meta_data.firebase_uid. A
// user and its identities are written all or nothing; users Supabase cannot
// hold (no e-mail address and no phone number, a password hash with no
// form Supabase verifies, custom claims that are not a JSON object, an
// address or phone number another user has, a value PostgreSQL refuses)
// are rejected with the reason. Rows equal to what would be written are
// not rewritten, so a re-run changes nothing. When a user is loaded again
// (a re-run, --restart), the identities of the providers the sink writes
// ("email", "phone" and those of supabaseProviders) that the user no
// longer has at the source (a provider unlinked, the phone number or the
// address removed) are deleted with the user's write, all or nothing;
// identities of other providers (linked on Supabase), and every identity
// of users without authexport.FirebaseUIDKey in raw_app_meta_data
// (Supabase's own), are never touched.
//
// An export file can hold a uid twice (two exports concatenated, a
// hand-edited file), and both occurrences land on one auth.users id. As
// Users does with its source_positions, the sink records, in the batch's
// transaction, the record.Position of every user it loads from a file in
// StateSchema's SupabasePositionsTable (by target schema and auth.users
// id): the first occurrence of a uid in a run (record.Position.Read) is
// loaded, and every later one — in the same batch, a later batch, or after
// a kill and a resume — is rejected with RepeatedUIDReason, naming both
// positions, never written over it. The same occurrence at the same
// position (a retried or resumed batch) is not a repeat, nor is an
// occurrence of a new run of the file, which replaces the older run's
// positions. Warnings names such uids. Users from the Auth API have no
// position: only a repeat within one batch is seen, and rejected; loading
// one forgets the file positions of its id.
type SupabaseUsers struct {
	cfg                                      SupabaseUsersConfig
	users                                    string // sanitized table names
	idents                                   string
	labels                                   struct{ users, idents string }
	upsertUsers, upsertIdents, foreignIdents string
	// staleIdents deletes the identities of mapped providers that users
	// of a batch no longer have (see SupabaseUsers).
	staleIdents string
	// SQL on SupabasePositionsTable, as Users' loadedPositions,
	// recordPositions, forgetPositions and recordRepeats; $1 is the target
	// schema.
	loadedPositions, recordPositions, forgetPositions, recordRepeats string
}

var _ loaders.Sink = (*SupabaseUsers)(nil)

// NewSupabaseUsers prepares the sink; it fails on an EmailConfirm value
// it does not know.
func NewSupabaseUsers(cfg SupabaseUsersConfig) (*SupabaseUsers, error) {
	if cfg.Schema == "" {
		cfg.Schema = SupabaseSchema
	}
	switch cfg.EmailConfirm {
	case "":
		cfg.EmailConfirm = authexport.ConfirmAll
	case authexport.ConfirmAll, authexport.ConfirmVerified:
	default:
		return nil, fmt.Errorf("email confirmation %q is not %s or %s", cfg.EmailConfirm, authexport.ConfirmVerified, authexport.ConfirmAll)
	}
	s := &SupabaseUsers{cfg: cfg}
	s.users = pgx.Identifier{cfg.Schema, "users"}.Sanitize()
	s.idents = pgx.Identifier{cfg.Schema, "identities"}.Sanitize()
	s.labels.users = cfg.Schema + ".users"
	s.labels.idents = cfg.Schema + ".identities"
	set := func(cols []string, skip ...string) (assign, old, new string) {
		var a, o, n []string
		for _, c := range cols {
			if slices.Contains(skip, c) {
				continue
			}
			q := pgx.Identifier{c}.Sanitize()
			a = append(a, q+" = EXCLUDED."+q)
			o = append(o, "t."+q)
			n = append(n, "EXCLUDED."+q)
		}
		return strings.Join(a, ", "), strings.Join(o, ", "), strings.Join(n, ", ")
	}
	assign, old, new := set(supabaseUserColumns, "id")
	s.upsertUsers = `INSERT INTO ` + s.users + ` AS t (` + strings.Join(supabaseUserColumns, ", ") + `)
		SELECT $1::uuid, id::uuid, 'authenticated', 'authenticated', email, pw, email_at, '', '', '', '', last_at,
			app::jsonb, meta::jsonb, created, created, phone, phone_at, banned, false, false
		FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
			$9::timestamptz[], $10::text[], $11::timestamptz[], $12::timestamptz[])
			AS n (id, email, pw, email_at, last_at, app, meta, created, phone, phone_at, banned)
		ON CONFLICT (id) DO UPDATE SET ` + assign + `
		WHERE (` + old + `) IS DISTINCT FROM (` + new + `)`
	assign, old, new = set(supabaseIdentityColumns, "provider_id", "provider")
	s.upsertIdents = `INSERT INTO ` + s.idents + ` AS t (` + strings.Join(supabaseIdentityColumns, ", ") + `)
		SELECT pid, uid::uuid, data::jsonb, provider, last_at, created, created
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
			AS n (pid, uid, data, provider, last_at, created)
		ON CONFLICT (provider_id, provider) DO UPDATE SET ` + assign + `
		WHERE t.user_id = EXCLUDED.user_id AND (` + old + `) IS DISTINCT FROM (` + new + `)`
	pos := supabasePositions.Sanitize()
	s.loadedPositions = `SELECT id, file, read, record, line FROM ` + pos + ` WHERE target_schema = $1 AND loaded AND id = ANY($2::text[])`
	s.recordPositions = `WITH new (id, uid, file, read, record, line) AS (
			SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
		), older AS (
			DELETE FROM ` + pos + ` p USING new n
			WHERE p.target_schema = $1 AND p.id = n.id AND (p.read, p.file) IS DISTINCT FROM (n.read, n.file)
		)
		INSERT INTO ` + pos + ` (target_schema, file, read, record, line, id, uid, loaded)
		SELECT $1, file, read, record, line, id, uid, true FROM new
		ON CONFLICT (target_schema, read, file, record) DO UPDATE SET id = EXCLUDED.id, uid = EXCLUDED.uid, line = EXCLUDED.line, loaded = true`
	s.forgetPositions = `DELETE FROM ` + pos + ` WHERE target_schema = $1 AND id = ANY($2::text[])`
	s.recordRepeats = `INSERT INTO ` + pos + ` (target_schema, file, read, record, line, id, uid, loaded)
		SELECT $1, file, read, record, line, id, uid, false
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) AS n (id, uid, file, read, record, line)
		ON CONFLICT (target_schema, read, file, record) DO UPDATE SET id = EXCLUDED.id, uid = EXCLUDED.uid, line = EXCLUDED.line, loaded = false`
	// An identity held by another user of the batch is not another
	// user's: either that user claims it too (Write rejects the second
	// claim) or it no longer has it, and staleIdents deletes it first.
	s.foreignIdents = `SELECT n.uid, n.provider, n.pid FROM unnest($1::text[], $2::text[], $3::text[]) AS n (pid, uid, provider)
		JOIN ` + s.idents + ` t ON t.provider_id = n.pid AND t.provider = n.provider AND t.user_id <> n.uid::uuid
		WHERE NOT (t.user_id = ANY ($4::uuid[]) AND t.provider = ANY ($5::text[]))`
	marker := sqlString(authexport.FirebaseUIDKey)
	s.staleIdents = `DELETE FROM ` + s.idents + ` i USING ` + s.users + ` u
		WHERE u.id = i.user_id AND u.raw_app_meta_data ? ` + marker + `
		AND i.user_id = ANY ($1::uuid[]) AND i.provider = ANY ($2::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[], $5::text[]) AS n (pid, uid, provider)
			WHERE n.uid::uuid = i.user_id AND n.provider = i.provider AND n.pid = i.provider_id)`
	return s, nil
}

// sqlString is s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// supabasePositions is SupabasePositionsTable, schema-qualified.
var supabasePositions = pgx.Identifier{StateSchema, SupabasePositionsTable}

// supabasePositionsDDL creates SupabasePositionsTable; every statement is
// idempotent. target_schema is the schema of the auth.users the row's
// user went to (SupabaseUsersConfig.Schema), id its auth.users id (text),
// read one run's reading of the file (record.Position.Read); loaded marks
// the occurrence whose values auth.users holds, the others are repeats
// rejected.
var supabasePositionsDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{StateSchema}.Sanitize(),
	`CREATE TABLE IF NOT EXISTS ` + supabasePositions.Sanitize() + ` (
		target_schema text   NOT NULL,
		file          text   NOT NULL,
		read          text   NOT NULL,
		record        bigint NOT NULL,
		line          bigint NOT NULL,
		id            text   NOT NULL,
		uid           text   NOT NULL,
		loaded        boolean NOT NULL,
		PRIMARY KEY (target_schema, read, file, record)
	)`,
	`CREATE INDEX IF NOT EXISTS supabase_user_positions_id ON ` + supabasePositions.Sanitize() + ` (target_schema, id)`,
}

// PlannedDDL returns what Prepare would run in db, for `plan`: the
// statements creating SupabasePositionsTable (and the state schema when
// missing) when the table does not exist, else nothing. It only reads the
// catalog; it does not check Supabase's tables (Prepare does).
func (s *SupabaseUsers) PlannedDDL(ctx context.Context, db loaders.DB) ([]Statement, error) {
	var schema, table bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), to_regclass($2) IS NOT NULL`,
		StateSchema, supabasePositions.Sanitize()).Scan(&schema, &table)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if table {
		return nil, nil
	}
	var out []Statement
	for _, stmt := range supabasePositionsDDL {
		if schema && strings.HasPrefix(stmt, "CREATE SCHEMA") {
			continue
		}
		out = append(out, Statement{What: describeDDL(stmt), SQL: stmt})
	}
	return out, nil
}

// Prepare checks that auth.users and auth.identities exist with every
// column the sink writes, and that identities are unique by (provider_id,
// provider), as Supabase Auth's migrations make them; it changes none of
// Supabase's tables. When they pass, it creates SupabasePositionsTable in
// StateSchema if missing (see PlannedDDL); a refused job creates nothing.
func (s *SupabaseUsers) Prepare(ctx context.Context, db loaders.DB) error {
	var problems []string
	for _, t := range []struct {
		table string
		cols  []string
	}{{"users", supabaseUserColumns}, {"identities", supabaseIdentityColumns}} {
		rows, err := db.Query(ctx, `SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, s.cfg.Schema, t.table)
		if err != nil {
			return fmt.Errorf("reading the columns of %s.%s: %w", s.cfg.Schema, t.table, err)
		}
		have, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("reading the columns of %s.%s: %w", s.cfg.Schema, t.table, err)
		}
		if len(have) == 0 {
			problems = append(problems, fmt.Sprintf("table %s.%s does not exist", s.cfg.Schema, t.table))
			continue
		}
		var missing []string
		for _, c := range t.cols {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("%s.%s has no column %s", s.cfg.Schema, t.table, strings.Join(missing, ", ")))
		}
	}
	if len(problems) == 0 {
		var unique bool
		err := db.QueryRow(ctx, `SELECT EXISTS (
			SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = 'identities' AND i.indisunique AND i.indpred IS NULL AND i.indnkeyatts = 2
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
				WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey)) = ARRAY['provider', 'provider_id'])`, s.cfg.Schema).Scan(&unique)
		if err != nil {
			return fmt.Errorf("reading the unique indexes of %s.identities: %w", s.cfg.Schema, err)
		}
		if !unique {
			problems = append(problems, fmt.Sprintf("%s.identities is not unique by (provider_id, provider)", s.cfg.Schema))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the database does not hold Supabase Auth's tables as this version writes them (%s): "+
			"point --postgres at the Supabase database and let Supabase Auth run its migrations first; baasmigrate creates and alters none of its tables",
			strings.Join(problems, "; "))
	}
	err := pgx.BeginFunc(ctx, beginner{db}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('baasmigrate ddl'))`); err != nil {
			return err
		}
		for _, stmt := range supabasePositionsDDL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%w\nin: %s", err, firstLine(stmt))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating %s: %w", supabasePositions.Sanitize(), err)
	}
	return nil
}

// supabaseRow is one user's values for auth.users and its identities.
type supabaseRow struct {
	uid, id              string
	pos                  *record.Position // nil for users from the API
	email, phone, pw     *string
	emailAt, phoneAt     *time.Time
	lastAt, created, ban *time.Time
	app, meta            string
	idents               []supabaseIdentity
}

type supabaseIdentity struct {
	providerID, provider, data string
}

// Write stores a batch of users in auth.users and auth.identities (see
// SupabaseUsers), rejecting the users that cannot be stored with the
// reason, and every occurrence of a uid after its first (see
// SupabaseUsers); the others load.
func (s *SupabaseUsers) Write(ctx context.Context, tx pgx.Tx, recs []record.Record) (loaders.Outcome, error) {
	out := loaders.Outcome{Tables: make([]string, len(recs))}
	all := make([]*supabaseRow, len(recs))
	var positioned []string
	for i, rec := range recs {
		out.Tables[i] = s.labels.users
		row, reason := s.row(rec)
		if reason != "" {
			out.Reject(i, reason)
			continue
		}
		all[i] = row
		if row.pos != nil {
			positioned = append(positioned, row.id)
		}
	}
	kept, err := s.loadedOccurrences(ctx, tx, positioned)
	if err != nil {
		return out, err
	}
	occs := make([]*occurrence, len(all))
	for i, row := range all {
		if row != nil {
			occs[i] = &occurrence{key: row.id, uid: row.uid, pos: row.pos}
		}
	}
	claimed := map[[2]string]int{} // identity → record index
	index, repeats := splitRepeats(occs, kept, func(i int) string {
		for _, id := range all[i].idents {
			if j, ok := claimed[[2]string{id.provider, id.providerID}]; ok {
				return fmt.Sprintf("its %s identity %q is also user %q's (record %d of this batch); Supabase links an identity to one user", id.provider, id.providerID, recs[j].Key, j+1)
			}
		}
		for _, id := range all[i].idents {
			claimed[[2]string{id.provider, id.providerID}] = i
		}
		return ""
	}, &out)
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
func (s *SupabaseUsers) writeBatch(ctx context.Context, tx pgx.Tx, all []*supabaseRow, index []int, out *loaders.Outcome) error {
	i, err := writeIsolating(all, index, out,
		func(set []*supabaseRow) ([2]int64, error) { return s.writeAll(ctx, tx, set) },
		func(changed [2]int64) { s.count(out, changed) },
		func(err error) (string, bool) {
			var refusal *supabaseRefusal
			switch {
			case errors.As(err, &refusal):
				return refusal.reason, true
			case isDataError(err):
				return supabaseReason(err), true
			}
			return "", false
		})
	switch {
	case err == nil:
		return nil
	case i >= 0:
		return fmt.Errorf("loading user %q into %s: %w", all[i].uid, s.labels.users, err)
	default:
		return fmt.Errorf("loading %d users into %s: %w", len(index), s.labels.users, err)
	}
}

// loadedOccurrences returns the stored positions of the loaded users
// among ids (auth.users ids), by id, file and reading.
func (s *SupabaseUsers) loadedOccurrences(ctx context.Context, tx pgx.Tx, ids []string) (map[occurrenceKey]record.Position, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return readOccurrences(ctx, tx, s.loadedPositions, s.cfg.Schema, ids)
}

// rejectRepeats rejects the repeats, naming both occurrences, and records
// those whose first occurrence is loaded, for Warnings.
func (s *SupabaseUsers) rejectRepeats(ctx context.Context, tx pgx.Tx, repeats []repeat, out *loaders.Outcome) error {
	ids, cols := rejectRepeats(repeats, out)
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, s.recordRepeats, append([]any{s.cfg.Schema, ids}, cols.args()...)...); err != nil {
		return fmt.Errorf("recording uids that appear more than once: %w", err)
	}
	return nil
}

// queueLoaded queues on b what records where the users of set were read:
// the positions of those from a file (forgetting older runs' positions of
// their ids), and no position for those from the API. It returns, for
// each statement queued, what it does, to word its error.
func (s *SupabaseUsers) queueLoaded(b *pgx.Batch, set []*supabaseRow) []string {
	loaded := make([]occurrence, len(set))
	for i, r := range set {
		loaded[i] = occurrence{key: r.id, uid: r.uid, pos: r.pos}
	}
	fromAPI, ids, cols := splitLoaded(loaded)
	var what []string
	if len(ids) > 0 {
		b.Queue(s.recordPositions, append([]any{s.cfg.Schema, ids}, cols.args()...)...)
		what = append(what, "recording where the users were read")
	}
	if len(fromAPI) > 0 {
		b.Queue(s.forgetPositions, s.cfg.Schema, fromAPI)
		what = append(what, "forgetting where users now loaded from the API were read")
	}
	return what
}

func (s *SupabaseUsers) count(out *loaders.Outcome, changed [2]int64) {
	if changed[0] > 0 {
		out.AddChanged(s.labels.users, changed[0])
	}
	if changed[1] > 0 {
		out.AddChanged(s.labels.idents, changed[1])
	}
}

// supabaseRefusal is a user the sink refuses once it sees the target
// (an identity another user holds).
type supabaseRefusal struct{ reason string }

func (r *supabaseRefusal) Error() string { return r.reason }

// supabaseReason words PostgreSQL's refusal of a user, naming Supabase's
// unique indexes on e-mail addresses and phone numbers plainly (without
// the value).
func supabaseReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		switch pgErr.ConstraintName {
		case "users_email_partial_key", "users_email_key":
			return "its e-mail address (lower-cased, as Supabase Auth compares them) is already another user's in auth.users (" + pgErr.ConstraintName + "); Supabase Auth answers 422 email_exists for it"
		case "users_phone_key":
			return "its phone number is already another user's in auth.users (users_phone_key)"
		}
		return "PostgreSQL refused the user: duplicate key in " + pgErr.ConstraintName + " (SQLSTATE 23505)"
	}
	return "PostgreSQL refused the user: " + errorText(err)
}

// writeAll writes set under one savepoint: on error nothing of set is
// written and tx stays usable. changed counts users and identities rows.
func (s *SupabaseUsers) writeAll(ctx context.Context, tx pgx.Tx, set []*supabaseRow) ([2]int64, error) {
	return underSavepoint(ctx, tx, func(sp pgx.Tx) ([2]int64, error) { return s.write(ctx, sp, set) })
}

func (s *SupabaseUsers) write(ctx context.Context, tx pgx.Tx, set []*supabaseRow) ([2]int64, error) {
	var changed [2]int64
	n := len(set)
	ids, apps, metas := make([]string, n), make([]string, n), make([]string, n)
	emails, phones, pws := make([]*string, n), make([]*string, n), make([]*string, n)
	emailAt, phoneAt, lastAt, created, banned := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	var pids, uids, datas, provs []string
	var iLast, iCreated []*time.Time
	for i, r := range set {
		ids[i], apps[i], metas[i] = r.id, r.app, r.meta
		emails[i], phones[i], pws[i] = r.email, r.phone, r.pw
		emailAt[i], phoneAt[i], lastAt[i], created[i], banned[i] = r.emailAt, r.phoneAt, r.lastAt, r.created, r.ban
		for _, id := range r.idents {
			pids = append(pids, id.providerID)
			uids = append(uids, r.id)
			datas = append(datas, id.data)
			provs = append(provs, id.provider)
			iLast = append(iLast, r.lastAt)
			iCreated = append(iCreated, r.created)
		}
	}
	if len(pids) > 0 {
		rows, err := tx.Query(ctx, s.foreignIdents, pids, uids, provs, ids, supabaseMapped)
		if err != nil {
			return changed, fmt.Errorf("looking for identities other users hold: %w", err)
		}
		var uid, provider, pid string
		var found []string
		_, err = pgx.ForEachRow(rows, []any{&uid, &provider, &pid}, func() error {
			found = append(found, fmt.Sprintf("its %s identity %q is already another user's in %s; Supabase links an identity to one user", provider, pid, s.labels.idents))
			return nil
		})
		if err != nil {
			return changed, fmt.Errorf("looking for identities other users hold: %w", err)
		}
		if len(found) > 0 {
			return changed, &supabaseRefusal{strings.Join(found, "; ")}
		}
	}
	// The writes go in one round trip; PostgreSQL skips what follows a
	// failed statement, and the caller rolls the savepoint back.
	b := &pgx.Batch{}
	b.Queue(s.upsertUsers, SupabaseInstanceID, ids, emails, pws, emailAt, lastAt, apps, metas, created, phones, phoneAt, banned)
	b.Queue(s.staleIdents, ids, supabaseMapped, pids, uids, provs)
	if len(pids) > 0 {
		b.Queue(s.upsertIdents, pids, uids, datas, provs, iLast, iCreated)
	}
	what := s.queueLoaded(b, set)
	res := tx.SendBatch(ctx, b)
	err := func() error {
		tag, err := res.Exec()
		if err != nil {
			return err
		}
		changed[0] = tag.RowsAffected()
		if tag, err = res.Exec(); err != nil {
			return fmt.Errorf("deleting the identities the users no longer have: %w", err)
		}
		changed[1] = tag.RowsAffected()
		if len(pids) > 0 {
			if tag, err = res.Exec(); err != nil {
				return err
			}
			changed[1] += tag.RowsAffected()
		}
		for _, w := range what {
			if _, err := res.Exec(); err != nil {
				return fmt.Errorf("%s: %w", w, err)
			}
		}
		return nil
	}()
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	return changed, err
}

// row lays a user out for Supabase, or says why it cannot be stored.
// Reasons never contain password hashes or hash parameters.
func (s *SupabaseUsers) row(rec record.Record) (*supabaseRow, string) {
	u, err := record.UserFrom(rec)
	if err != nil {
		return nil, err.Error()
	}
	if u.Invalid != "" {
		return nil, u.Invalid
	}
	email := strings.ToLower(strings.TrimSpace(str(u.Email)))
	// supabase/auth internal/api/phone.go formatPhoneNumber: no "+", no
	// blanks.
	phone := strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(str(u.PhoneNumber)), "+"), " ", "")
	if email == "" && phone == "" {
		return nil, "Supabase needs an e-mail address or a phone number"
	}
	r := &supabaseRow{uid: u.UID, id: authexport.SupabaseID(u.TenantID, u.UID), pos: u.Position}
	// Times Supabase requires for a confirmation: when the user was
	// created (a fixed value, so that re-runs write the same), or the Unix
	// epoch for a user without a creation time.
	when := time.Unix(0, 0).UTC()
	if !u.CreatedAt.IsZero() {
		t := u.CreatedAt.UTC()
		r.created, when = &t, t
	}
	if !u.LastSignInAt.IsZero() {
		t := u.LastSignInAt.UTC()
		r.lastAt = &t
	}
	if u.Disabled {
		r.ban = &SupabaseBannedUntil
	}
	emailConfirmed := false
	if email != "" {
		r.email = &email
		if emailConfirmed = authexport.EmailConfirmed(s.cfg.EmailConfirm, &u); emailConfirmed {
			r.emailAt = &when
		}
	}
	if phone != "" {
		r.phone = &phone
		r.phoneAt = &when // Firebase phone numbers are verified by SMS
	}
	empty := ""
	r.pw = &empty // Supabase Auth's own value for a user without a password
	if c := u.Password; c != nil {
		h, err := authexport.SupabaseHash(withShared(*c, s.cfg.SharedHash))
		if err != nil {
			return nil, "the password hash cannot be written in a form Supabase Auth verifies (" + err.Error() + "); " +
				"loaded without it the user could not sign in with the password"
		}
		r.pw = &h
	}
	app, meta, err := authexport.SupabaseMetadata(&u)
	if err != nil {
		return nil, err.Error()
	}
	hasPassword := u.Password != nil
	var oauth []supabaseIdentity
	for _, p := range u.Providers {
		if p.ProviderID == "password" {
			hasPassword = true
		}
		name, ok := supabaseProviders[p.ProviderID]
		if !ok || p.RawID == "" {
			continue
		}
		data := map[string]any{"sub": p.RawID, "provider_id": p.RawID}
		if v := str(p.Email); v != "" {
			data["email"] = v
		}
		if v := str(p.DisplayName); v != "" {
			data["name"], data["full_name"] = v, v
		}
		if v := str(p.PhotoURL); v != "" {
			data["avatar_url"], data["picture"] = v, v
		}
		if v := str(p.Name); v != "" {
			data["user_name"], data["preferred_username"] = v, v
		}
		oauth = append(oauth, supabaseIdentity{providerID: p.RawID, provider: name, data: mustJSON(data)})
	}
	var providers []string
	if email != "" && (hasPassword || len(oauth) == 0) {
		providers = append(providers, "email")
		r.idents = append(r.idents, supabaseIdentity{providerID: r.id, provider: "email", data: mustJSON(map[string]any{
			"sub": r.id, "email": email, "email_verified": emailConfirmed, "phone_verified": false})})
	}
	if phone != "" {
		providers = append(providers, "phone")
		r.idents = append(r.idents, supabaseIdentity{providerID: r.id, provider: "phone", data: mustJSON(map[string]any{
			"sub": r.id, "phone": phone, "email_verified": false, "phone_verified": true})})
	}
	for _, id := range oauth {
		if !slices.Contains(providers, id.provider) {
			providers = append(providers, id.provider)
		}
	}
	r.idents = append(r.idents, oauth...)
	app["provider"] = providers[0]
	app["providers"] = providers
	r.app, r.meta = mustJSON(app), mustJSON(meta)
	return r, ""
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// mustJSON encodes what row builds (strings, booleans, json.Number and
// maps and slices of them), which always encodes.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding Supabase metadata: %v", err))
	}
	return string(b)
}

// SupabaseCredential reads an auth.users.encrypted_password back as the
// credential passwords.Verify checks (what auth verify-password does):
// "$fbscrypt$…" as FIREBASE_SCRYPT, "$2…$" as BCRYPT, "$argon2id$…" and
// "$argon2i$…" as ARGON2ID and ARGON2I; "" (no password) as nil, and
// anything else as UNKNOWN.
func SupabaseCredential(encrypted string) *passwords.Credential {
	switch {
	case encrypted == "":
		return nil
	case strings.HasPrefix(encrypted, firebasescrypt.SupabasePrefix):
		return &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: encrypted}
	case strings.HasPrefix(encrypted, "$2"):
		return &passwords.Credential{Algorithm: "BCRYPT", Hash: encrypted}
	case strings.HasPrefix(encrypted, "$argon2id$"):
		return &passwords.Credential{Algorithm: "ARGON2ID", Hash: encrypted}
	case strings.HasPrefix(encrypted, "$argon2i$"):
		return &passwords.Credential{Algorithm: "ARGON2I", Hash: encrypted}
	}
	return &passwords.Credential{Algorithm: passwords.Unknown, Hash: encrypted}
}

var _ loaders.Reporter = (*SupabaseUsers)(nil)

// Warnings reports uids an export file holds more than once (see
// SupabaseUsers), naming up to five with their positions, and the loaded
// users (those of auth.users with a firebase_uid) linked at Firebase to
// sign-in providers that got no identity because Supabase Auth has no
// provider for them (Identity Platform's oidc.* and saml.*, Play Games,
// ...), by provider, naming up to five uids each: they cannot sign in that
// way on Supabase.
func (s *SupabaseUsers) Warnings(ctx context.Context, db loaders.DB) ([]string, error) {
	var out []string
	dup, err := s.duplicateUIDWarning(ctx, db)
	if err != nil {
		return nil, err
	}
	if dup != "" {
		out = append(out, dup)
	}
	providers, err := s.providerWarnings(ctx, db)
	if err != nil {
		return nil, err
	}
	return append(out, providers...), nil
}

// duplicateUIDWarning names up to five uids of SupabasePositionsTable
// with a rejected repeat, with their positions; "" when there are none.
func (s *SupabaseUsers) duplicateUIDWarning(ctx context.Context, db loaders.DB) (string, error) {
	pos := supabasePositions.Sanitize()
	rows, err := db.Query(ctx, `SELECT l.uid, l.file, l.record, l.line,
			array_agg(r.record ORDER BY r.record), array_agg(r.line ORDER BY r.record), count(*) OVER ()
		FROM `+pos+` l JOIN `+pos+` r ON r.target_schema = l.target_schema AND r.id = l.id
			AND r.read = l.read AND r.file = l.file AND NOT r.loaded
		WHERE l.target_schema = $1 AND l.loaded
		GROUP BY l.uid, l.file, l.record, l.line ORDER BY l.file, l.record LIMIT 5`, s.cfg.Schema)
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
	return fmt.Sprintf("an export file holds %d uid(s) more than once: %s. Only the first occurrence of each was loaded into %s; "+
		"the others are rejected, stored with their reason. A Firebase uid is unique: check which account is right; see SELECT * FROM %s WHERE target_schema = '%s'",
		total, strings.Join(samples, "; "), s.labels.users, pos, s.cfg.Schema), nil
}

// providerWarnings reports the users signed in at Firebase with providers
// Supabase Auth has none for (see Warnings).
func (s *SupabaseUsers) providerWarnings(ctx context.Context, db loaders.DB) ([]string, error) {
	known := []string{"password", "phone"}
	for p := range supabaseProviders {
		known = append(known, p)
	}
	slices.Sort(known)
	rows, err := db.Query(ctx, `SELECT p->>'provider_id', count(DISTINCT u.id),
			(array_agg(DISTINCT u.raw_app_meta_data->>`+sqlString(authexport.FirebaseUIDKey)+`))[1:5]
		FROM `+s.users+` u, jsonb_array_elements(CASE WHEN jsonb_typeof(u.raw_app_meta_data->'firebase_providers') = 'array'
			THEN u.raw_app_meta_data->'firebase_providers' ELSE '[]' END) p
		WHERE u.raw_app_meta_data ? `+sqlString(authexport.FirebaseUIDKey)+` AND NOT (p->>'provider_id' = ANY ($1::text[]))
		GROUP BY 1 ORDER BY 1`, known)
	if err != nil {
		return nil, fmt.Errorf("looking for sign-in providers Supabase Auth has no identity for: %w", err)
	}
	var out []string
	var provider string
	var n int64
	var uids []string
	_, err = pgx.ForEachRow(rows, []any{&provider, &n, &uids}, func() error {
		out = append(out, fmt.Sprintf("%d user(s) signed in at Firebase with %s, which Supabase Auth has no provider for: no identity was written "+
			"(uids %s; the link stays in raw_app_meta_data.firebase_providers)", n, provider, strings.Join(uids, ", ")))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking for sign-in providers Supabase Auth has no identity for: %w", err)
	}
	return out, nil
}

// SupabaseLayout is one user as SupabaseUsers writes it: its auth.users
// values and its auth.identities rows. Nil pointers are NULLs.
type SupabaseLayout struct {
	// UID is the Firebase uid; ID the auth.users id derived from it
	// (authexport.SupabaseID).
	UID, ID string
	// Position is where an export file held the user; nil for users from
	// the API.
	Position                             *record.Position
	Email, Phone, EncryptedPassword      *string
	EmailConfirmedAt, PhoneConfirmedAt   *time.Time
	LastSignInAt, CreatedAt, BannedUntil *time.Time
	// AppMetaData and UserMetaData are the JSON text of raw_app_meta_data
	// and raw_user_meta_data.
	AppMetaData, UserMetaData string
	Identities                []SupabaseIdentityLayout
}

// SupabaseIdentityLayout is one auth.identities row of a user.
type SupabaseIdentityLayout struct {
	// ProviderID and Provider key the row; IdentityData is the JSON text
	// of identity_data.
	ProviderID, Provider, IdentityData string
}

// Layout lays rec out exactly as Write would store it (the same code), or
// says why Write would reject it. Repeats of a uid are not seen here.
func (s *SupabaseUsers) Layout(rec record.Record) (SupabaseLayout, string) {
	r, reason := s.row(rec)
	if reason != "" {
		return SupabaseLayout{}, reason
	}
	l := SupabaseLayout{
		UID: r.uid, ID: r.id, Position: r.pos, Email: r.email, Phone: r.phone, EncryptedPassword: r.pw,
		EmailConfirmedAt: r.emailAt, PhoneConfirmedAt: r.phoneAt, LastSignInAt: r.lastAt, CreatedAt: r.created, BannedUntil: r.ban,
		AppMetaData: r.app, UserMetaData: r.meta,
	}
	for _, id := range r.idents {
		l.Identities = append(l.Identities, SupabaseIdentityLayout{ProviderID: id.providerID, Provider: id.provider, IdentityData: id.data})
	}
	return l, ""
}

// Schema is the schema holding the auth.users and auth.identities the
// sink writes.
func (s *SupabaseUsers) Schema() string { return s.cfg.Schema }
