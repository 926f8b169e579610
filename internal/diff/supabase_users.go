package diff

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// SupabaseUsers adapts user records (record.User) and Supabase Auth's
// tables as loaders/postgres.SupabaseUsers writes them (auth.users and
// auth.identities) to the engine.
//
// A user is one item keyed by its auth.users id (the UUID the sink derives
// from the tenant and uid) and labelled with its uid. The source side is
// the record laid out by the sink itself (postgres.SupabaseUsers.Layout:
// the same code, e-mail confirmation rule and shared hash parameters as
// migrate), so records the sink would reject are reported with its
// reason, and a uid an export file holds again is reported as migrate's
// reject (postgres.RepeatedUIDReason). Compared fields: email, phone,
// emailConfirmedAt, phoneConfirmedAt, lastSignInAt, createdAt, bannedUntil,
// encryptedPassword (a SHA-256 digest of the "$fbscrypt$…" string, never
// the string), appMetaData and userMetaData (JSON, exact up to key order
// and spacing) and identities (provider, providerId, identityData, in key
// order). Identities the target has beyond the user's show as a
// difference: the load deletes those of the providers it writes when it
// loads the user again, but not others (a provider linked on Supabase).
//
// Only users the load marks as Firebase's (raw_app_meta_data holds
// authexport.FirebaseUIDKey) are target rows: others are Supabase's own
// and neither compared nor counted. Users are always looked up by id (an
// id's order is not the source's uid order), 500 at a time; Firebase
// users of auth.users the source no longer has are counted extra and
// named by uid (ExtraNamer: verify keeps the ids it looked up in a
// temporary table, so its role must be allowed to create one).
type SupabaseUsers struct {
	sink   *postgres.SupabaseUsers
	schema string
	table  string      // the report's table name: schema.users
	seen   occurrences // keyed by id
}

var (
	_ KeyLookup  = (*SupabaseUsers)(nil)
	_ KeyScanner = (*SupabaseUsers)(nil)
	_ ExtraNamer = (*SupabaseUsers)(nil)
)

// NamesExtras is true: a Firebase user that Supabase still holds and the
// source no longer has is named, not only counted (see SupabaseUsers).
func (a *SupabaseUsers) NamesExtras() bool { return true }

// NewSupabaseUsers prepares comparing users with the Supabase Auth tables
// the sink of cfg writes; it fails where postgres.NewSupabaseUsers does.
func NewSupabaseUsers(cfg postgres.SupabaseUsersConfig) (*SupabaseUsers, error) {
	sink, err := postgres.NewSupabaseUsers(cfg)
	if err != nil {
		return nil, err
	}
	return &SupabaseUsers{sink: sink, schema: sink.Schema(), table: sink.Schema() + ".users"}, nil
}

// Kind is "user".
func (a *SupabaseUsers) Kind() string { return string(record.KindUser) }

// Tables is auth.users, named with its schema.
func (a *SupabaseUsers) Tables() []string { return []string{a.table} }

// StreamTables is auth.users for the one stream of users.
func (a *SupabaseUsers) StreamTables(string) []string { return []string{a.table} }

// Ordered is false: users are looked up by id.
func (a *SupabaseUsers) Ordered(string) bool { return false }

// Route lays the user out as the sink would.
func (a *SupabaseUsers) Route(rec record.Record) Routed {
	l, reason := a.sink.Layout(rec)
	if reason != "" {
		return Routed{Table: a.table, Reject: reason}
	}
	if reason := a.seen.repeated(l.ID, l.UID, l.Position); reason != "" {
		return Routed{Table: a.table, Reject: reason}
	}
	f := map[string]record.Value{}
	putString(f, "email", l.Email)
	putString(f, "phone", l.Phone)
	if l.EncryptedPassword != nil {
		f["encryptedPassword"] = passwordDigest(*l.EncryptedPassword)
	}
	for name, t := range map[string]*time.Time{"emailConfirmedAt": l.EmailConfirmedAt, "phoneConfirmedAt": l.PhoneConfirmedAt,
		"lastSignInAt": l.LastSignInAt, "createdAt": l.CreatedAt, "bannedUntil": l.BannedUntil} {
		if t != nil {
			f[name] = record.Timestamp(*t)
		}
	}
	f["appMetaData"] = supabaseJSON(l.AppMetaData)
	f["userMetaData"] = supabaseJSON(l.UserMetaData)
	var idents [][3]string
	for _, id := range l.Identities {
		idents = append(idents, [3]string{id.Provider, id.ProviderID, id.IdentityData})
	}
	if v, ok := identitiesValue(idents); ok {
		f["identities"] = v
	}
	return Routed{Table: a.table, Item: Item{Key: []string{l.ID}, Label: l.UID, Fields: f}}
}

// firebaseUID is the raw_app_meta_data key of migrated users' uid, as an
// SQL literal.
var firebaseUID = textLiteral(authexport.FirebaseUIDKey)

func putString(f map[string]record.Value, name string, s *string) {
	if s != nil {
		f[name] = record.String(*s)
	}
}

// passwordDigest stands for an encrypted_password in the compared
// content, so that the string itself is never part of an item.
func passwordDigest(s string) record.Value {
	sum := sha256.Sum256([]byte(s))
	return record.Bytes(sum[:])
}

// supabaseJSON is a jsonb value as canonical text (see canonicalJSON).
func supabaseJSON(text string) record.Value {
	if c, ok := canonicalJSON([]byte(text)); ok {
		return record.String(c)
	}
	return record.String(text)
}

// identitiesValue folds identities (provider, provider_id, identity_data
// text) into one list in key order; false when there are none.
func identitiesValue(idents [][3]string) (record.Value, bool) {
	if len(idents) == 0 {
		return record.Value{}, false
	}
	sortIdents(idents)
	vals := make([]record.Value, len(idents))
	for i, id := range idents {
		vals[i] = record.Map(map[string]record.Value{
			"provider": record.String(id[0]), "providerId": record.String(id[1]), "identityData": supabaseJSON(id[2]),
		})
	}
	return record.Array(vals...), true
}

func sortIdents(idents [][3]string) {
	for i := 1; i < len(idents); i++ {
		for j := i; j > 0 && (idents[j][0] < idents[j-1][0] || idents[j][0] == idents[j-1][0] && idents[j][1] < idents[j-1][1]); j-- {
			idents[j], idents[j-1] = idents[j-1], idents[j]
		}
	}
}

// selectSQL reads the Firebase users of auth.users with their identities
// as JSON text; a condition is appended with AND.
func (a *SupabaseUsers) selectSQL() string {
	users := pgx.Identifier{a.schema, "users"}.Sanitize()
	idents := pgx.Identifier{a.schema, "identities"}.Sanitize()
	return `SELECT u.id::text, u.raw_app_meta_data->>` + firebaseUID + `, u.email, u.phone, u.encrypted_password,
		u.email_confirmed_at, u.phone_confirmed_at, u.last_sign_in_at, u.created_at, u.banned_until,
		u.raw_app_meta_data::text, u.raw_user_meta_data::text,
		(SELECT json_agg(json_build_array(i.provider, i.provider_id, i.identity_data::text))::text FROM ` + idents + ` i WHERE i.user_id = u.id)
		FROM ` + users + ` u WHERE u.raw_app_meta_data ? ` + firebaseUID
}

// scanItem rebuilds a user from a row of selectSQL.
func (a *SupabaseUsers) scanItem(rows pgx.Row) (Item, error) {
	var id, uid string
	var email, phone, pw, app, meta, idents *string
	var emailAt, phoneAt, lastAt, created, banned *time.Time
	if err := rows.Scan(&id, &uid, &email, &phone, &pw, &emailAt, &phoneAt, &lastAt, &created, &banned, &app, &meta, &idents); err != nil {
		return Item{}, fmt.Errorf("reading %s: %w", a.table, err)
	}
	f := map[string]record.Value{}
	putString(f, "email", email)
	putString(f, "phone", phone)
	if pw != nil {
		f["encryptedPassword"] = passwordDigest(*pw)
	}
	for name, t := range map[string]*time.Time{"emailConfirmedAt": emailAt, "phoneConfirmedAt": phoneAt,
		"lastSignInAt": lastAt, "createdAt": created, "bannedUntil": banned} {
		if t != nil {
			f[name] = record.Timestamp(t.UTC())
		}
	}
	if app != nil {
		f["appMetaData"] = supabaseJSON(*app)
	}
	if meta != nil {
		f["userMetaData"] = supabaseJSON(*meta)
	}
	if idents != nil {
		var rows [][3]string
		if err := json.Unmarshal([]byte(*idents), &rows); err != nil {
			return Item{}, fmt.Errorf("reading the identities of user %q: %w", uid, err)
		}
		if v, ok := identitiesValue(rows); ok {
			f["identities"] = v
		}
	}
	return Item{Key: []string{id}, Label: uid, Fields: f}, nil
}

func (a *SupabaseUsers) exists(ctx context.Context, tx pgx.Tx, table string) (bool, error) {
	if table != a.table {
		return false, nil
	}
	return postgres.TableExists(ctx, tx, a.schema, "users")
}

// Open opens a cursor over the Firebase users of auth.users by id, or
// returns nil when the table does not exist.
func (a *SupabaseUsers) Open(ctx context.Context, tx pgx.Tx, table string) (TargetCursor, error) {
	ok, err := a.exists(ctx, tx, table)
	if err != nil || !ok {
		return nil, err
	}
	c, err := postgres.OpenCursor(ctx, tx, "diff_supabase_users", a.selectSQL()+` ORDER BY u.id::text COLLATE "C"`, 500)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", a.table, err)
	}
	return &supabaseCursor{a: a, c: c}, nil
}

type supabaseCursor struct {
	a *SupabaseUsers
	c *postgres.Cursor
}

func (c *supabaseCursor) Next(ctx context.Context) (Item, bool, error) {
	vals, ok, err := c.c.Next(ctx)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("reading %s: %w", c.a.table, err)
		}
		return Item{}, false, err
	}
	it, err := c.a.scanItem(valuesRow(vals))
	return it, err == nil, err
}

// valuesRow scans values pgx already decoded.
type valuesRow []any

func (v valuesRow) Scan(dest ...any) error {
	if len(dest) != len(v) {
		return fmt.Errorf("%d columns, want %d", len(v), len(dest))
	}
	for i, d := range dest {
		switch p := d.(type) {
		case *string:
			s, _ := v[i].(string)
			*p = s
		case **string:
			if s, ok := v[i].(string); ok {
				*p = &s
			}
		case **time.Time:
			if t, ok := v[i].(time.Time); ok {
				*p = &t
			}
		default:
			return fmt.Errorf("column %d: cannot scan into %T", i, d)
		}
	}
	return nil
}

// Lookup returns the target users of keys (auth.users ids), by KeyString
// of their key.
func (a *SupabaseUsers) Lookup(ctx context.Context, tx pgx.Tx, table string, keys [][]string) (map[string]Item, error) {
	out := map[string]Item{}
	ok, err := a.exists(ctx, tx, table)
	if err != nil || !ok || len(keys) == 0 {
		return out, err
	}
	return lookupUsers(ctx, tx, a.table, a.selectSQL()+` AND u.id::text = ANY($1::text[])`, keys,
		func(rows pgx.Rows) (Item, error) { return a.scanItem(rows) })
}

// Count returns the number of Firebase users in auth.users; 0 when it
// does not exist.
func (a *SupabaseUsers) Count(ctx context.Context, tx pgx.Tx, table string) (int64, error) {
	ok, err := a.exists(ctx, tx, table)
	if err != nil || !ok {
		return 0, err
	}
	var n int64
	err = tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{a.schema, "users"}.Sanitize()+` u WHERE u.raw_app_meta_data ? `+firebaseUID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", a.table, err)
	}
	return n, nil
}

// ScanUnseen calls fn with every Firebase user of auth.users whose id is
// not in seen (see KeyScanner).
func (a *SupabaseUsers) ScanUnseen(ctx context.Context, tx pgx.Tx, table string, seen pgx.Identifier, fn func(Item) error) error {
	ok, err := a.exists(ctx, tx, table)
	if err != nil || !ok {
		return err
	}
	c, err := postgres.OpenCursor(ctx, tx, "diff_supabase_unseen", a.selectSQL()+
		" AND NOT EXISTS (SELECT 1 FROM "+seen.Sanitize()+" s WHERE s.tbl = "+textLiteral(a.table)+" AND s.k = jsonb_build_array(u.id::text))", 500)
	if err != nil {
		return fmt.Errorf("reading %s: %w", a.table, err)
	}
	return eachItem(ctx, c, a.table, func(vals []any) (Item, error) { return a.scanItem(valuesRow(vals)) }, fn)
}
