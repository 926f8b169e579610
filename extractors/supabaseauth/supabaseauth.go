// Package supabaseauth extracts the users of Supabase Auth — auth.users with
// their auth.identities and auth.mfa_factors — from the project's database
// as user records (record.User).
//
// # How users are read
//
// Users are one stream ("auth.users"), ordered by id. Plan cuts the ids
// into at most n ranges of about equal count; a partition covers the ids
// in [Start, End). Read pages through a range by keyset (id > the last
// id read, ORDER BY id, --supabase-page-size rows), each page with its
// users' identities and factors in one read-only REPEATABLE READ
// transaction. A record's cursor is its id, so a read resumed after a
// cursor yields exactly the users that follow. A uuid sorts as the bytes
// of its lowercase text, so the stream comes in byte order of uids
// (extractors.KeyOrderer): plan and verify merge it with the users table.
//
// PostgreSQL cannot read at a past time: each page sees the database as
// it is when the page is read, and a user changed after its page was read
// is copied by the next run.
//
// # Records
//
// See the package's entry in docs/sources.md (Supabase) for the mapping of
// every column. In short: the uid is the user's id; e-mail and phone
// (with "+", E.164 as the users table holds phones) with their
// confirmation times; raw_app_meta_data becomes the custom claims (the
// server-set JSON object Supabase puts in tokens as app_metadata),
// raw_user_meta_data goes to extra.userMetadata as its exact JSON text;
// the password hash keeps its own form (BCRYPT for "$2a$"/"$2b$"/"$2y$",
// ARGON2ID/ARGON2I, FIREBASE_SCRYPT for "$fbscrypt$", UNKNOWN otherwise);
// an empty or NULL encrypted_password is no password. Identities become
// providers (provider id = Supabase's provider name, raw id = the id at
// the provider); MFA factors become factors without their TOTP secrets.
//
// Soft-deleted users (deleted_at set) and anonymous users are kept by
// default and marked (extra.deletedAt, extra.isAnonymous; a soft-deleted
// user is also disabled): rows of the app's tables may still refer to
// their ids, and an anonymous user's data belongs to them.
// --supabase-deleted-users=skip and --supabase-anonymous-users=skip leave
// them out. Plan warns how many of each there are and what is done with
// them.
package supabaseauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/supabase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// What to do with users of a kind: keep them (marked) or leave them out.
const (
	Keep = "keep"
	Skip = "skip"
)

// Options of the Supabase users extractor.
var (
	DeletedOption = plugin.Option{
		Name: "supabase-deleted-users",
		Help: "What to do with soft-deleted Supabase users (deleted_at set): keep (copied disabled, marked extra.deletedAt, " +
			"so that rows referring to their ids stay valid) or skip.",
		Default: Keep,
	}
	AnonymousOption = plugin.Option{
		Name: "supabase-anonymous-users",
		Help: "What to do with anonymous Supabase users (is_anonymous): keep (copied, marked extra.isAnonymous; " +
			"their data stays theirs) or skip.",
		Default: Keep,
	}
)

// StreamName is the name of the one stream of users.
const StreamName = "auth.users"

func init() {
	extractors.Register(extractors.Spec{
		Source: supabase.Source,
		Name:   "supabase-auth",
		Kind:   record.KindUser,
		Help:   "Every Supabase Auth user (auth.users) with identities, MFA factors and password hashes, read from the project's database.",
		Options: []plugin.Option{
			supabase.DBOption, supabase.PageSizeOption, DeletedOption, AnonymousOption,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// Extractor reads Supabase Auth's users. It is safe for concurrent use.
type Extractor struct {
	db                 *supabase.DB
	pageSize           int
	policy             retry.Policy
	deleted, anonymous string
}

var (
	_ extractors.Extractor  = (*Extractor)(nil)
	_ extractors.Counter    = (*Extractor)(nil)
	_ extractors.KeyOrderer = (*Extractor)(nil)
	_ extractors.Configured = (*Extractor)(nil)

	_ extractors.UsersSchemaDefaulter = (*Extractor)(nil)
	_ extractors.UsersSystemer        = (*Extractor)(nil)
)

// UsersSchema is the PostgreSQL schema Supabase's users go to when
// --users-schema is not given (extractors.UsersSchemaDefaulter).
const UsersSchema = "supabase_users"

// New connects to the database cfg names.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	e := &Extractor{deleted: cfg.String(DeletedOption.Name), anonymous: cfg.String(AnonymousOption.Name)}
	for _, o := range []struct {
		opt plugin.Option
		val *string
	}{{DeletedOption, &e.deleted}, {AnonymousOption, &e.anonymous}} {
		if *o.val == "" {
			*o.val = Keep
		}
		if *o.val != Keep && *o.val != Skip {
			return nil, fmt.Errorf("--%s must be %s or %s, not %q", o.opt.Name, Keep, Skip, *o.val)
		}
	}
	var err error
	if e.pageSize, err = supabase.PageSize(cfg); err != nil {
		return nil, err
	}
	if e.policy, err = retry.FromConfig(cfg); err != nil {
		return nil, err
	}
	if e.db, err = supabase.Connect(ctx, cfg, 8); err != nil {
		return nil, err
	}
	return e, nil
}

// Source names the database's Auth users: "supabase-auth:host:port/db".
func (e *Extractor) Source() string { return "supabase-auth:" + e.db.Name }

// RunSettings are the options that decide which users are read.
func (e *Extractor) RunSettings() map[string]string {
	return map[string]string{DeletedOption.Name: e.deleted, AnonymousOption.Name: e.anonymous}
}

// KeyOrder is byte order: ids come ORDER BY id, and a uuid sorts as the
// bytes of its lowercase text.
func (e *Extractor) KeyOrder() record.KeyOrder { return record.ByteOrder }

// DefaultUsersSchema is UsersSchema: Supabase's users do not go to the
// schema Firebase's go to by default.
func (e *Extractor) DefaultUsersSchema() string { return UsersSchema }

// UsersSystem is "supabase": these are Supabase Auth's users already, so
// --users-target supabase is refused for them (their ids, identities,
// bans and soft deletes would not survive the target's mapping, built
// for users of other platforms).
func (e *Extractor) UsersSystem() string { return supabase.Source }

// Close closes the pool.
func (e *Extractor) Close() error {
	e.db.Pool.Close()
	return nil
}

// filter is the WHERE condition selecting the users read.
func (e *Extractor) filter() string {
	conds := []string{"true"}
	if e.deleted == Skip {
		conds = append(conds, "u.deleted_at IS NULL")
	}
	if e.anonymous == Skip {
		conds = append(conds, "NOT u.is_anonymous")
	}
	return strings.Join(conds, " AND ")
}

// Plan returns the one stream of users, split into at most partitions
// ranges of ids of about equal count. readTime is ignored: PostgreSQL
// reads the latest data. It logs how many users are soft-deleted,
// anonymous, banned and SSO users; what is done with soft-deleted and
// anonymous users is a warning, shown without --verbose.
func (e *Extractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	var points []string
	err := retry.Do(ctx, e.policy, "planning the users of "+e.Source(), func(ctx context.Context) error {
		var err error
		points, err = supabase.SplitPoints(ctx, e.db.Pool, "u.id::text", "u.id", "FROM auth.users u WHERE "+e.filter(), nil, partitions)
		if err != nil {
			return err
		}
		var deleted, anonymous, banned, sso, noPassword int64
		err = e.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL), count(*) FILTER (WHERE is_anonymous),
				count(*) FILTER (WHERE banned_until > now()), count(*) FILTER (WHERE is_sso_user),
				count(*) FILTER (WHERE deleted_at IS NULL AND coalesce(encrypted_password, '') = '')
			FROM auth.users`).Scan(&deleted, &anonymous, &banned, &sso, &noPassword)
		if err != nil {
			return err
		}
		log := retry.Logger(ctx)
		if deleted > 0 || anonymous > 0 {
			log.Warn(e.special(deleted, anonymous), "source", e.Source())
		}
		log.Info("Supabase Auth users", "source", e.Source(), "soft_deleted", deleted, "anonymous", anonymous,
			"banned", banned, "sso", sso, "without_password", noPassword)
		return nil
	})
	if err != nil {
		return nil, retry.Describe("planning the users of "+e.Source(), err)
	}
	s := extractors.Stream{Name: StreamName, Kind: record.KindUser}
	bounds := append(append([]string{""}, points...), "")
	for i := 0; i+1 < len(bounds); i++ {
		s.Partitions = append(s.Partitions, extractors.Partition{
			Stream: StreamName, ID: fmt.Sprintf("p%04d", i), Start: bounds[i], End: bounds[i+1],
		})
	}
	return []extractors.Stream{s}, nil
}

// special words what is done with the soft-deleted and anonymous users
// the project has.
func (e *Extractor) special(deleted, anonymous int64) string {
	var parts []string
	if deleted > 0 {
		if e.deleted == Keep {
			parts = append(parts, fmt.Sprintf("%d soft-deleted users are copied disabled, marked extra.deletedAt (--%s=%s leaves them out)", deleted, DeletedOption.Name, Skip))
		} else {
			parts = append(parts, fmt.Sprintf("%d soft-deleted users are left out (--%s=%s)", deleted, DeletedOption.Name, Skip))
		}
	}
	if anonymous > 0 {
		if e.anonymous == Keep {
			parts = append(parts, fmt.Sprintf("%d anonymous users are copied, marked extra.isAnonymous (--%s=%s leaves them out)", anonymous, AnonymousOption.Name, Skip))
		} else {
			parts = append(parts, fmt.Sprintf("%d anonymous users are left out (--%s=%s)", anonymous, AnonymousOption.Name, Skip))
		}
	}
	return "Supabase Auth: " + strings.Join(parts, "; ")
}

// rangeWhere adds to the filter the conditions of p and the cursor after,
// with their arguments; it fails for bounds that are not uuids.
func (e *Extractor) rangeWhere(p extractors.Partition, after string) (string, []any, error) {
	where := e.filter()
	var args []any
	for _, b := range []struct{ val, op string }{{p.Start, ">="}, {p.End, "<"}, {after, ">"}} {
		if b.val == "" {
			continue
		}
		if _, err := uuid.Parse(b.val); err != nil {
			return "", nil, fmt.Errorf("partition %s of %s: %q is not a user id", p.ID, StreamName, b.val)
		}
		args = append(args, b.val)
		where += fmt.Sprintf(" AND u.id %s $%d::uuid", b.op, len(args))
	}
	return where, args, nil
}

// Count returns the number of users in s's partitions.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	var total int64
	for _, p := range s.Partitions {
		where, args, err := e.rangeWhere(p, "")
		if err != nil {
			return 0, err
		}
		var n int64
		err = retry.Do(ctx, e.policy, "counting the users of "+e.Source(), func(ctx context.Context) error {
			return e.db.Pool.QueryRow(ctx, "SELECT count(*) FROM auth.users u WHERE "+where, args...).Scan(&n)
		})
		if err != nil {
			return 0, retry.Describe("counting the users of "+e.Source(), err)
		}
		total += n
	}
	return total, nil
}

// Read emits the users of p after the id after, in id order, one page at
// a time. A page that fails transiently is read again; emit is never
// called twice for a user.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	what := fmt.Sprintf("reading partition %s of %s", p.ID, e.Source())
	for {
		where, args, err := e.rangeWhere(p, after)
		if err != nil {
			return err
		}
		var page []record.User
		err = retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
			var err error
			page, err = e.page(ctx, where, args)
			return err
		})
		if err != nil {
			return retry.Describe(what, err)
		}
		for _, u := range page {
			if err := emit(u.Record(u.UID)); err != nil {
				return err
			}
			after = u.UID
		}
		if len(page) < e.pageSize {
			return nil
		}
	}
}

// userColumns are the auth.users columns read, in scan order.
const userColumns = `u.id::text, u.email, u.encrypted_password, u.email_confirmed_at, u.invited_at, u.confirmation_sent_at,
	u.recovery_sent_at, u.email_change, u.last_sign_in_at, u.raw_app_meta_data::text, jsonb_typeof(u.raw_app_meta_data),
	u.raw_user_meta_data::text, u.created_at, u.updated_at, u.phone, u.phone_confirmed_at, u.banned_until,
	u.is_sso_user, u.deleted_at, u.is_anonymous, u.aud, u.role, u.is_super_admin, now()`

// page reads one page of users with their identities and factors, in one
// snapshot.
func (e *Extractor) page(ctx context.Context, where string, args []any) ([]record.User, error) {
	var users []record.User
	err := pgx.BeginTxFunc(ctx, e.db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM auth.users u WHERE `+where+
			fmt.Sprintf(` ORDER BY u.id LIMIT %d`, e.pageSize), args...)
		if err != nil {
			return fmt.Errorf("reading auth.users: %w", err)
		}
		byID := map[string]int{}
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				rows.Close()
				return err
			}
			byID[u.UID] = len(users)
			users = append(users, u)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading auth.users: %w", err)
		}
		if len(users) == 0 {
			return nil
		}
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.UID
		}
		if err := readIdentities(ctx, tx, ids, func(uid string, p record.Provider) {
			u := &users[byID[uid]]
			u.Providers = append(u.Providers, p)
		}); err != nil {
			return err
		}
		return readFactors(ctx, tx, ids, func(uid string, f record.MFAFactor) {
			u := &users[byID[uid]]
			u.MFA = append(u.MFA, f)
		})
	})
	return users, err
}

// scanUser reads one row of userColumns.
func scanUser(rows pgx.Rows) (record.User, error) {
	var (
		id                                                   string
		email, hash, emailChange, appMeta, appType, userMeta *string
		phone, aud, role                                     *string
		emailConfirmed, invited, confSent, recoverySent      pgtype.Timestamptz
		lastSignIn, created, updated, phoneConfirmed, banned pgtype.Timestamptz
		deleted                                              pgtype.Timestamptz
		sso, anonymous                                       bool
		superAdmin                                           *bool
		now                                                  time.Time
	)
	if err := rows.Scan(&id, &email, &hash, &emailConfirmed, &invited, &confSent, &recoverySent, &emailChange,
		&lastSignIn, &appMeta, &appType, &userMeta, &created, &updated, &phone, &phoneConfirmed, &banned,
		&sso, &deleted, &anonymous, &aud, &role, &superAdmin, &now); err != nil {
		return record.User{}, fmt.Errorf("reading auth.users: %w", err)
	}
	u := record.User{
		UID:           id,
		Email:         nonEmpty(email),
		EmailVerified: emailConfirmed.Valid,
		PhoneNumber:   e164(phone),
		CreatedAt:     finite(created),
		LastSignInAt:  finite(lastSignIn),
		Password:      Credential(hash),
		Extra:         map[string]record.Value{"isSsoUser": record.Bool(sso), "isAnonymous": record.Bool(anonymous)},
	}
	if appMeta != nil && appType != nil && *appType == "object" {
		u.CustomClaims = appMeta
	} else if appMeta != nil {
		u.Extra["appMetadata"] = record.String(*appMeta)
	}
	if userMeta != nil {
		u.Extra["userMetadata"] = record.String(*userMeta)
		var m map[string]any
		if json.Unmarshal([]byte(*userMeta), &m) == nil {
			u.DisplayName = firstString(m, "full_name", "name")
			u.PhotoURL = firstString(m, "avatar_url", "picture")
		}
	}
	putStr(u.Extra, "aud", aud)
	putStr(u.Extra, "role", role)
	putStr(u.Extra, "emailChange", nonEmpty(emailChange))
	if superAdmin != nil {
		u.Extra["isSuperAdmin"] = record.Bool(*superAdmin)
	}
	for _, t := range []struct {
		name string
		ts   pgtype.Timestamptz
	}{
		{"emailConfirmedAt", emailConfirmed}, {"phoneConfirmedAt", phoneConfirmed}, {"invitedAt", invited},
		{"confirmationSentAt", confSent}, {"recoverySentAt", recoverySent}, {"updatedAt", updated},
		{"bannedUntil", banned}, {"deletedAt", deleted},
	} {
		putTime(u.Extra, t.name, t.ts)
	}
	switch {
	case deleted.Valid:
		u.Disabled = true
	case banned.Valid && banned.InfinityModifier == pgtype.Infinity:
		u.Disabled = true
	case banned.Valid && banned.InfinityModifier == pgtype.Finite && banned.Time.After(now):
		u.Disabled = true
	}
	return u, nil
}

// Credential turns an encrypted_password into a credential: nil for none
// (NULL, or empty: a pending invite, an anonymous user), the hash's own
// algorithm for the forms Supabase Auth verifies, UNKNOWN (kept verbatim)
// for anything else.
func Credential(hash *string) *passwords.Credential {
	if hash == nil || *hash == "" {
		return nil
	}
	h := *hash
	alg := passwords.Unknown
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		alg = passwords.Bcrypt
	case strings.HasPrefix(h, "$argon2id$"):
		alg = passwords.Argon2id
	case strings.HasPrefix(h, "$argon2i$"):
		alg = passwords.Argon2i
	case strings.HasPrefix(h, "$fbscrypt$"):
		alg = passwords.FirebaseScrypt
	}
	return &passwords.Credential{Algorithm: alg, Hash: h}
}

// readIdentities calls add for every identity of the users ids, by user
// then provider and provider id.
func readIdentities(ctx context.Context, tx pgx.Tx, ids []string, add func(uid string, p record.Provider)) error {
	rows, err := tx.Query(ctx, `SELECT i.user_id::text, i.id::text, i.provider, i.provider_id, i.email, i.identity_data::text,
			i.last_sign_in_at, i.created_at, i.updated_at
		FROM auth.identities i WHERE i.user_id = ANY($1::uuid[]) ORDER BY i.user_id, i.provider, i.provider_id`, ids)
	if err != nil {
		return fmt.Errorf("reading auth.identities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			uid, id, provider, providerID string
			email, data                   *string
			lastSignIn, created, updated  pgtype.Timestamptz
		)
		if err := rows.Scan(&uid, &id, &provider, &providerID, &email, &data, &lastSignIn, &created, &updated); err != nil {
			return fmt.Errorf("reading auth.identities: %w", err)
		}
		p := record.Provider{ProviderID: provider, RawID: providerID, Email: nonEmpty(email),
			Extra: map[string]record.Value{"identityId": record.String(id)}}
		putStr(p.Extra, "identityData", data)
		putTime(p.Extra, "lastSignInAt", lastSignIn)
		putTime(p.Extra, "createdAt", created)
		putTime(p.Extra, "updatedAt", updated)
		add(uid, p)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading auth.identities: %w", err)
	}
	return nil
}

// readFactors calls add for every MFA factor of the users ids, by user
// then creation. TOTP secrets are not read.
func readFactors(ctx context.Context, tx pgx.Tx, ids []string, add func(uid string, f record.MFAFactor)) error {
	rows, err := tx.Query(ctx, `SELECT f.user_id::text, f.id::text, f.friendly_name, f.factor_type::text, f.status::text,
			f.created_at, f.updated_at, f.secret IS NOT NULL AND f.secret <> '', f.phone, f.last_challenged_at,
			f.web_authn_credential::text, f.web_authn_aaguid::text
		FROM auth.mfa_factors f WHERE f.user_id = ANY($1::uuid[]) ORDER BY f.user_id, f.created_at, f.id`, ids)
	if err != nil {
		return fmt.Errorf("reading auth.mfa_factors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			uid, id, factorType, status      string
			name, phone, webauthn, aaguid    *string
			created, updated, lastChallenged pgtype.Timestamptz
			hasSecret                        bool
		)
		if err := rows.Scan(&uid, &id, &name, &factorType, &status, &created, &updated, &hasSecret, &phone,
			&lastChallenged, &webauthn, &aaguid); err != nil {
			return fmt.Errorf("reading auth.mfa_factors: %w", err)
		}
		f := record.MFAFactor{EnrollmentID: id, FactorID: factorType, DisplayName: nonEmpty(name), EnrolledAt: finite(created),
			Extra: map[string]record.Value{"status": record.String(status), "hasSecret": record.Bool(hasSecret)}}
		switch factorType {
		case "totp":
		case "phone":
			f.PhoneNumber = e164(phone)
		default:
			f.FactorID = "unknown"
			f.Extra["factorType"] = record.String(factorType)
		}
		putStr(f.Extra, "webAuthnCredential", webauthn)
		putStr(f.Extra, "webAuthnAaguid", aaguid)
		putTime(f.Extra, "updatedAt", updated)
		putTime(f.Extra, "lastChallengedAt", lastChallenged)
		add(uid, f)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading auth.mfa_factors: %w", err)
	}
	return nil
}

// nonEmpty is s, or nil when s is nil or empty.
func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

// e164 writes a Supabase phone (digits without "+") as the users table
// holds phones: "+" and the digits; nil for none.
func e164(phone *string) *string {
	if phone == nil || *phone == "" {
		return nil
	}
	p := *phone
	if !strings.HasPrefix(p, "+") {
		p = "+" + p
	}
	return &p
}

// finite is t, or the zero time when t is NULL or infinite.
func finite(t pgtype.Timestamptz) time.Time {
	if !t.Valid || t.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return t.Time
}

// putTime sets m[k] to t: a timestamp, "infinity" or "-infinity"; nothing
// for NULL.
func putTime(m map[string]record.Value, k string, t pgtype.Timestamptz) {
	switch {
	case !t.Valid:
	case t.InfinityModifier == pgtype.Infinity:
		m[k] = record.String("infinity")
	case t.InfinityModifier == pgtype.NegativeInfinity:
		m[k] = record.String("-infinity")
	default:
		m[k] = record.Timestamp(t.Time)
	}
}

func putStr(m map[string]record.Value, k string, s *string) {
	if s != nil {
		m[k] = record.String(*s)
	}
}

// firstString returns the first of keys whose value in m is a non-empty
// string.
func firstString(m map[string]any, keys ...string) *string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return &s
		}
	}
	return nil
}
