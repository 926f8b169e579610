package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// StoredUser is a user as the users sink's tables hold it, read back for
// the tools that work with migrated users (auth verify-password, auth
// export).
type StoredUser struct {
	// User holds the identity, addresses, flags, times, custom claims,
	// provider identities (ProviderID, RawID, Email, DisplayName) and the
	// password credential. MFA factors, the extra fields and positions are
	// not read.
	//
	// User.Password is the credential ready for passwords.Verify: the
	// source's text (a Firebase scrypt hash and salt, stored as bytes, in
	// padded standard base64), and as Params the user's own parameters
	// over the shared ones of the hash_configs row it refers to. Those can
	// hold secrets (Firebase scrypt's signer key): never print them.
	record.User
	// HashConfigID is the hash_configs row the credential refers to; ""
	// when it refers to none (for Firebase scrypt: migrate was given no
	// hash parameters, so the hash cannot be verified).
	HashConfigID string
}

// NoUserError is ReadUser's error for a uid the table does not hold.
type NoUserError struct{ UID, Schema string }

func (e *NoUserError) Error() string {
	return fmt.Sprintf("no user with uid %q in schema %q", e.UID, e.Schema)
}

// ReadUser returns the user uid of the users tables in schema, or a
// *NoUserError.
func ReadUser(ctx context.Context, db loaders.DB, schema, uid string) (*StoredUser, error) {
	var found *StoredUser
	err := readUsers(ctx, db, schema, ` AND u.uid = $1`, []any{uid}, func(u *StoredUser) error {
		found = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, &NoUserError{UID: uid, Schema: schema}
	}
	return found, nil
}

// EachUser calls fn with every user of the users tables in schema, oldest
// first (creation time, then uid; users without one last), and stops at
// fn's first error, which it returns.
func EachUser(ctx context.Context, db loaders.DB, schema string, fn func(*StoredUser) error) error {
	return readUsers(ctx, db, schema, ` ORDER BY u.created_at NULLS LAST, u.uid`, nil, fn)
}

// CheckUsersTables returns the error EachUser would return before reading
// any user: tables missing, or hash_configs not readable by this role.
// Tables of an earlier layout, not upgraded yet, are read as they are.
func CheckUsersTables(ctx context.Context, db loaders.DB, schema string) error {
	_, err := readHashConfigs(ctx, db, schema)
	return err
}

// hashConfig is one row of hash_configs.
type hashConfig struct {
	algorithm string
	params    map[string]string
}

// readHashConfigs reads every row of hash_configs by id, of the current
// layout or of an earlier one (see HashConfigExprs).
func readHashConfigs(ctx context.Context, db loaders.DB, schema string) (map[string]hashConfig, error) {
	hc := pgx.Identifier{schema, HashConfigsTable}.Sanitize()
	alg, params, err := HashConfigExprs(ctx, db, schema, "h")
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT h.id, `+alg+`, (`+params+`)::text FROM `+hc+` h`)
	if err != nil {
		return nil, fmt.Errorf("reading the hash parameters in schema %q (did migrate --only users run?): %w", schema, err)
	}
	out := map[string]hashConfig{}
	var id, text string
	var c hashConfig
	_, err = pgx.ForEachRow(rows, []any{&id, &c.algorithm, &text}, func() error {
		p := map[string]string{}
		if err := json.Unmarshal([]byte(text), &p); err != nil {
			return fmt.Errorf("the stored hash parameters %s are not an object of text", id) // never the values
		}
		out[id] = hashConfig{algorithm: c.algorithm, params: p}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the hash parameters in schema %q: %w", schema, err)
	}
	return out, nil
}

// readUsers reads users rows (the query's further condition, starting with
// AND, or its ORDER BY appended) and hands each, with its providers and
// credential, to fn. Users soft deletes marked are left out.
func readUsers(ctx context.Context, db loaders.DB, schema, tail string, args []any, fn func(*StoredUser) error) error {
	configs, err := readHashConfigs(ctx, db, schema)
	if err != nil {
		return err
	}
	// Tables of the first layout have no per-user parameters.
	userParams := "NULL::text"
	if ok, err := ColumnExists(ctx, db, schema, UsersTable, "password_parameters"); err != nil {
		return err
	} else if ok {
		userParams = "u.password_parameters::text"
	}
	live, err := LiveRows(ctx, db, schema, UsersTable, "u")
	if err != nil {
		return err
	}
	u := pgx.Identifier{schema, UsersTable}.Sanitize()
	p := pgx.Identifier{schema, ProvidersTable}.Sanitize()
	rows, err := db.Query(ctx, `SELECT u.uid, coalesce(u.tenant_id, ''), u.email, u.phone_number, u.display_name, u.photo_url,
			u.email_verified, u.disabled, u.created_at, u.last_sign_in_at, u.last_refresh_at, u.password_updated_at, u.tokens_valid_after,
			u.custom_claims::text, u.password_algorithm, u.password_hash, u.password_salt, u.password_hash_verbatim,
			u.password_salt_verbatim, u.password_version, coalesce(u.hash_config_id, ''), `+userParams+`,
			coalesce((SELECT json_agg(json_build_object('provider_id', provider_id, 'provider_uid', provider_uid,
				'email', email, 'display_name', display_name) ORDER BY provider_id, provider_uid) FROM `+p+` WHERE uid = u.uid), '[]')
		FROM `+u+` u WHERE `+live+tail, args...)
	if err != nil {
		return fmt.Errorf("reading users in schema %q: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			x                                         StoredUser
			created, signIn, refresh, pwAt, valid     *time.Time
			algorithm, hashText, saltText, userParams *string
			hash, salt                                []byte
			version                                   *int64
			providers                                 []byte
		)
		if err := rows.Scan(&x.UID, &x.TenantID, &x.Email, &x.PhoneNumber, &x.DisplayName, &x.PhotoURL,
			&x.EmailVerified, &x.Disabled, &created, &signIn, &refresh, &pwAt, &valid,
			&x.CustomClaims, &algorithm, &hash, &salt, &hashText, &saltText, &version, &x.HashConfigID, &userParams,
			&providers); err != nil {
			return fmt.Errorf("reading users in schema %q: %w", schema, err)
		}
		for _, t := range []struct {
			from *time.Time
			to   *time.Time
		}{{created, &x.CreatedAt}, {signIn, &x.LastSignInAt}, {refresh, &x.LastRefreshAt}, {pwAt, &x.PasswordUpdatedAt}, {valid, &x.ValidSince}} {
			if t.from != nil {
				*t.to = *t.from
			}
		}
		var provs []struct {
			ProviderID  string  `json:"provider_id"`
			ProviderUID string  `json:"provider_uid"`
			Email       *string `json:"email"`
			DisplayName *string `json:"display_name"`
		}
		if err := json.Unmarshal(providers, &provs); err != nil {
			return fmt.Errorf("reading the providers of %q: %w", x.UID, err)
		}
		for _, pr := range provs {
			x.Providers = append(x.Providers, record.Provider{ProviderID: pr.ProviderID, RawID: pr.ProviderUID, Email: pr.Email, DisplayName: pr.DisplayName})
		}
		if algorithm != nil {
			c := &passwords.Credential{Algorithm: *algorithm, Version: version}
			if hash != nil {
				c.Hash, c.Salt = base64.StdEncoding.EncodeToString(hash), base64.StdEncoding.EncodeToString(salt)
			} else {
				c.Hash, c.Salt = deref(hashText), deref(saltText)
			}
			params := map[string]string{}
			if hc, ok := configs[x.HashConfigID]; ok && hc.algorithm == c.Algorithm {
				for k, v := range hc.params {
					params[k] = v
				}
			}
			if userParams != nil {
				var own map[string]string
				if err := json.Unmarshal([]byte(*userParams), &own); err != nil {
					return fmt.Errorf("the password parameters of %q are not an object of text", x.UID) // never the values
				}
				for k, v := range own {
					params[k] = v
				}
			}
			if len(params) > 0 {
				c.Params = params
			}
			x.Password = c
		}
		if err := fn(&x); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading users in schema %q: %w", schema, err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
