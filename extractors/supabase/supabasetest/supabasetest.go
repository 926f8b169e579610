// Package supabasetest makes databases that play a Supabase project's for
// tests: a fresh PostgreSQL database with the auth and storage tables of
// schema.sql, users seeded as Supabase Auth writes them (bcrypt "$2a$10$"
// hashes of known passwords, identities, MFA factors, soft-deleted,
// anonymous, banned and SSO users), and a Storage bucket whose bytes are in
// MinIO at bucket = bucket id, key = object name, as Storage's S3 endpoint
// serves them.
package supabasetest

import (
	"context"
	_ "embed"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// AuthSchema is the DDL of Supabase Auth's auth.users and auth.identities
// with the constraints and unique indexes that refuse what a loader may
// write: the target of migrate --users-target supabase.
//
//go:embed auth.sql
var AuthSchema string

//go:embed schema.sql
var moreSchema string

// Schema is the DDL of the auth and storage tables: AuthSchema, then
// auth.mfa_factors, storage.buckets and storage.objects.
var Schema = AuthSchema + "\n" + moreSchema

// Project is a database playing a Supabase project's.
type Project struct {
	DSN  string
	Pool *pgxpool.Pool
}

// NewProject creates a fresh database with Schema, dropped when the test
// ends.
func NewProject(t testing.TB) *Project {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("supabasetest: connecting: %v", err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), Schema); err != nil {
		t.Fatalf("supabasetest: creating the auth and storage tables: %v", err)
	}
	return &Project{DSN: dsn, Pool: pool}
}

// Exec runs sql on the project's database.
func (p *Project) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := p.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("supabasetest: %v\n%s", err, sql)
	}
}

// Pairs runs sql, a query of two text columns, and returns its rows as a
// map from the first column to the second.
func (p *Project) Pairs(t testing.TB, sql string) map[string]string {
	t.Helper()
	rows, err := p.Pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("supabasetest: %v\n%s", err, sql)
	}
	m, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv [2]string, err error) {
		err = r.Scan(&kv[0], &kv[1])
		return kv, err
	})
	if err != nil {
		t.Fatalf("supabasetest: %v\n%s", err, sql)
	}
	out := make(map[string]string, len(m))
	for _, kv := range m {
		out[kv[0]] = kv[1]
	}
	return out
}

// Known user ids of SeedUsers, each a kind of user to design for.
const (
	UIDAlice     = "0a1e4c3e-0000-4000-8000-000000000001" // e-mail + password, google identity, TOTP and phone factors, big numbers in metadata
	UIDBob       = "0b0b0000-0000-4000-8000-000000000002" // phone + password, confirmed phone, a WebAuthn factor
	UIDBanned    = "b4000000-0000-4000-8000-000000000003" // banned for a century ("permanent")
	UIDDeleted   = "de1e7ed0-0000-4000-8000-000000000004" // soft-deleted: obfuscated e-mail, NULL password
	UIDAnonymous = "a0000000-0000-4000-8000-000000000005" // anonymous: empty password, no e-mail
	UIDSSO       = "55000000-0000-4000-8000-000000000006" // SSO user, sso:… identity, no password
	UIDInvited   = "1a000000-0000-4000-8000-000000000007" // pending invite: empty password
	UIDArgon     = "a2000000-0000-4000-8000-000000000008" // imported argon2id hash
	UIDBanEnded  = "be000000-0000-4000-8000-000000000009" // a ban that has ended
	UIDBcrypt2b  = "2b000000-0000-4000-8000-00000000000a" // imported "$2b$12$" bcrypt hash
)

// Special is the number of users SeedUsers inserts besides the extra ones.
const Special = 10

// Passwords of the seeded users who have one: uid → password.
var Passwords = map[string]string{
	UIDAlice: "correct horse battery", UIDBob: "hunter2", UIDBanned: "banned-but-known",
	UIDArgon: ArgonPassword, UIDBanEnded: "forgiven", UIDBcrypt2b: "imported-2b",
}

// ArgonPassword is UIDArgon's password; its hash is an argon2id PHC
// string, as an import into Supabase Auth leaves it.
const ArgonPassword = "imported-argon"

// Argon2id returns an argon2id PHC hash of password (m=64 KiB, t=3, p=1).
func Argon2id(password string) string {
	salt := []byte("somesaltsomesalt")
	key := argon2.IDKey([]byte(password), salt, 3, 64, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=64,t=3,p=1$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key))
}

// Bcrypt returns a "$2a$10$" hash of password, as Supabase Auth writes it.
func Bcrypt(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(h), "$2a$10$") {
		t.Fatalf("bcrypt wrote %.7s…, not $2a$10$", h)
	}
	return string(h)
}

// bcrypt2b returns a "$2b$12$" hash of password, as imports from other
// systems leave them (Go writes "$2a$"; the two differ only in the name).
func bcrypt2b(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		t.Fatal(err)
	}
	return "$2b$" + strings.TrimPrefix(string(h), "$2a$")
}

// SeedUsers inserts the users named by the UID constants, and extra more
// ordinary users (e-mail + bcrypt password, an email identity) whose
// passwords are "extra-password"; it returns every seeded uid.
func (p *Project) SeedUsers(t testing.TB, extra int) []string {
	t.Helper()
	ins := `INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
		last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, phone, phone_confirmed_at,
		banned_until, is_sso_user, deleted_at, is_anonymous)
		VALUES ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb,
		$9, $9, $10, $11, $12, $13, $14, $15)`
	at := func(s string) *time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &tm
	}
	str := func(s string) *string { return &s }
	created := at("2024-03-01T10:00:00.123456Z")
	users := []struct {
		id                 string
		email, hash        *string
		confirmed, invited *time.Time
		lastSignIn         *time.Time
		app, user          string
		phone              *string
		phoneConfirmed     *time.Time
		banned, deleted    *time.Time
		sso, anonymous     bool
	}{
		{id: UIDAlice, email: str("alice@example.com"), hash: str(Bcrypt(t, Passwords[UIDAlice])), confirmed: at("2024-03-01T10:05:00Z"),
			lastSignIn: at("2024-06-01T08:00:00.5Z"),
			app:        `{"provider": "email", "providers": ["email", "google"], "plan": "pro", "quota": 12345678901234567890, "ratio": 1.10}`,
			user:       `{"full_name": "Alice Ünïcode", "avatar_url": "https://example.com/a.png", "big": 9007199254740993, "nested": {"x": [1, 2.50]}}`},
		{id: UIDBob, hash: str(Bcrypt(t, Passwords[UIDBob])), phone: str("15551234567"), phoneConfirmed: at("2024-03-02T00:00:00Z"),
			app: `{"provider": "phone", "providers": ["phone"]}`, user: `{}`},
		{id: UIDBanned, email: str("banned@example.com"), hash: str(Bcrypt(t, Passwords[UIDBanned])), confirmed: created,
			banned: at("2124-03-01T00:00:00Z"), app: `{"provider": "email", "providers": ["email"]}`, user: `{}`},
		{id: UIDDeleted, email: str("b3f1c0de@deleted.invalid"), confirmed: created, deleted: at("2024-05-05T05:05:05Z"),
			app: `{"provider": "email", "providers": ["email"]}`, user: `{}`},
		{id: UIDAnonymous, hash: str(""), anonymous: true, app: `{}`, user: `{}`},
		{id: UIDSSO, email: str("carol@corp.example"), confirmed: created, sso: true,
			app: `{"provider": "sso:2f9e8d7c-0000-4000-8000-0000000000aa", "providers": ["sso:2f9e8d7c-0000-4000-8000-0000000000aa"]}`, user: `{}`},
		{id: UIDInvited, email: str("invitee@example.com"), hash: str(""), invited: at("2024-04-04T04:04:04Z"),
			app: `{"provider": "email", "providers": ["email"]}`, user: `{}`},
		{id: UIDArgon, email: str("imported@example.com"), hash: str(Argon2id(ArgonPassword)), confirmed: created,
			app: `{"provider": "email", "providers": ["email"]}`, user: `{"name": "Imported"}`},
		{id: UIDBcrypt2b, email: str("imported-2b@example.com"), hash: str(bcrypt2b(t, Passwords[UIDBcrypt2b])), confirmed: created,
			app: `{"provider": "email", "providers": ["email"]}`, user: `{}`},
		{id: UIDBanEnded, email: str("forgiven@example.com"), hash: str(Bcrypt(t, Passwords[UIDBanEnded])), confirmed: created,
			banned: at("2020-01-01T00:00:00Z"), app: `{"provider": "email", "providers": ["email"]}`, user: `{}`},
	}
	ids := make([]string, 0, len(users)+extra)
	for _, u := range users {
		p.Exec(t, ins, u.id, u.email, u.hash, u.confirmed, u.invited, u.lastSignIn, u.app, u.user, created,
			u.phone, u.phoneConfirmed, u.banned, u.sso, u.deleted, u.anonymous)
		ids = append(ids, u.id)
	}
	identity := `INSERT INTO auth.identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4::jsonb, $5, $6, $6, $6)`
	p.Exec(t, identity, "1d000000-0000-4000-8000-0000000000a1", UIDAlice, UIDAlice,
		`{"sub": "`+UIDAlice+`", "email": "alice@example.com", "email_verified": true}`, "email", created)
	p.Exec(t, identity, "1d000000-0000-4000-8000-0000000000a2", "104729384756102938475", UIDAlice,
		`{"sub": "104729384756102938475", "email": "Alice@Gmail.com", "name": "Alice G", "iss": "https://accounts.google.com"}`, "google", created)
	p.Exec(t, identity, "1d000000-0000-4000-8000-0000000000b1", UIDBob, UIDBob,
		`{"sub": "`+UIDBob+`", "phone": "15551234567"}`, "phone", created)
	p.Exec(t, identity, "1d000000-0000-4000-8000-0000000000c1", "carol@corp.example", UIDSSO,
		`{"sub": "carol@corp.example", "email": "carol@corp.example", "custom_claims": {"groups": ["eng"]}}`, "sso:2f9e8d7c-0000-4000-8000-0000000000aa", created)
	p.Exec(t, identity, "1d000000-0000-4000-8000-0000000000d1", "b3f1c0de", UIDDeleted, `{"sub": "b3f1c0de"}`, "email", created)
	factor := `INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret, phone)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)`
	p.Exec(t, factor, "fa000000-0000-4000-8000-000000000001", UIDAlice, "Authenticator", "totp", "verified",
		at("2024-03-05T00:00:00Z"), "JBSWY3DPEHPK3PXP", nil)
	p.Exec(t, factor, "fa000000-0000-4000-8000-000000000002", UIDAlice, "Phone", "phone", "unverified",
		at("2024-03-06T00:00:00Z"), nil, "15559876543")
	p.Exec(t, `INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, web_authn_credential, web_authn_aaguid)
		VALUES ('fa000000-0000-4000-8000-000000000003', $1, 'Security key', 'webauthn', 'verified', $2, $2,
		'{"ID": "a2V5LWlk", "PublicKey": "cHVibGljLWtleQ==", "AttestationType": "none"}', 'ee882879-721c-4913-9775-3dfcce97072a')`,
		UIDBob, at("2024-03-07T00:00:00Z"))
	pw := Bcrypt(t, "extra-password")
	for i := range extra {
		id := fmt.Sprintf("%08x-%04x-4%03x-8000-%012x", rand.Uint32(), i%0x10000, i%0x1000, i)
		p.Exec(t, ins, id, fmt.Sprintf("user%d@example.com", i), pw, created, nil, nil,
			`{"provider": "email", "providers": ["email"]}`, fmt.Sprintf(`{"n": %d}`, i), created, nil, nil, nil, false, nil, false)
		p.Exec(t, identity, fmt.Sprintf("2d%06x-0000-4000-8000-%012x", i, i), id, id, `{"sub": "`+id+`"}`, "email", created)
		ids = append(ids, id)
	}
	return ids
}

// Object is an object of the seeded bucket.
type Object struct {
	Name string
	Data []byte
	// Multipart uploads it in 5 MiB parts (its eTag is then "<md5>-<parts>").
	Multipart    bool
	ContentType  string
	UserMetadata string // JSON, "" for NULL
	Owner        string // uuid, "" for none
}

// Objects returns a set of objects to design for: names the current
// Storage API refuses (non-ASCII, "%", spaces), folders and their
// .emptyFolderPlaceholder, an empty object, a multipart upload, and n
// small ones.
func Objects(n int) []Object {
	r := rand.New(rand.NewPCG(1, 2))
	data := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	}
	objs := []Object{
		{Name: "avatars/alice.png", Data: data(2048), ContentType: "image/png", Owner: UIDAlice, UserMetadata: `{"source": "camera", "width": 640}`},
		{Name: "docs/.emptyFolderPlaceholder", Data: nil, ContentType: "application/octet-stream"},
		{Name: "docs/ünïcödé résumé.pdf", Data: data(3000), ContentType: "application/pdf", Owner: UIDBob},
		{Name: "docs/100% done.txt", Data: []byte("all of it\n"), ContentType: "text/plain;charset=UTF-8"},
		{Name: "empty.bin", Data: []byte{}, ContentType: "application/octet-stream"},
		{Name: "videos/big.mp4", Data: data(6<<20 + 123), Multipart: true, ContentType: "video/mp4", Owner: UIDAlice},
		{Name: "日本語/ファイル.txt", Data: []byte("こんにちは"), ContentType: "text/plain"},
	}
	for i := range n {
		objs = append(objs, Object{Name: fmt.Sprintf("bulk/%04d.dat", i), Data: data(100 + r.IntN(2000)), ContentType: "application/octet-stream"})
	}
	return objs
}

// Storage is a bucket of the seeded project with its bytes in MinIO.
type Storage struct {
	Bucket   string
	Endpoint string // MinIO's URL: plays Storage's S3 endpoint
	Region   string
	// AccessKey and SecretKey are MinIO's; tests pass them as
	// SUPABASE_S3_ACCESS_KEY_ID and SUPABASE_S3_SECRET_ACCESS_KEY.
	AccessKey, SecretKey string
	Client               *minio.Client
}

// SeedStorage creates a bucket with a unique id, in storage.buckets and in
// MinIO (removed when the test ends), uploads objs to MinIO at bucket id /
// name, and inserts their storage.objects rows with the metadata Storage
// writes (eTag as MinIO returned it, size, mimetype, cacheControl,
// lastModified, contentLength, httpStatusCode).
func (p *Project) SeedStorage(t testing.TB, objs []Object) *Storage {
	t.Helper()
	cfg, client, name := testenv.NewS3Bucket(t, "sb-"+t.Name())
	s := &Storage{Bucket: name, Endpoint: cfg.Endpoint, Region: cfg.Region, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Client: client}
	p.Exec(t, `INSERT INTO storage.buckets (id, name, public) VALUES ($1, $1, false)`, s.Bucket)
	for _, o := range objs {
		s.Put(t, p, o)
	}
	return s
}

// Put uploads o to MinIO and writes its storage.objects row (replacing
// one of the same name).
func (s *Storage) Put(t testing.TB, p *Project, o Object) {
	t.Helper()
	info := testenv.PutS3Object(t, s.Client, s.Bucket, o.Name, o.Data, o.Multipart,
		minio.PutObjectOptions{ContentType: o.ContentType, CacheControl: "max-age=3600"})
	meta := fmt.Sprintf(`{"eTag": "\"%s\"", "size": %d, "mimetype": %q, "cacheControl": "max-age=3600", "lastModified": %q, "contentLength": %d, "httpStatusCode": 200}`,
		info.ETag, len(o.Data), o.ContentType, info.LastModified.UTC().Format(time.RFC3339Nano), len(o.Data))
	var owner, userMeta any
	if o.Owner != "" {
		owner = o.Owner
	}
	if o.UserMetadata != "" {
		userMeta = o.UserMetadata
	}
	p.Exec(t, `INSERT INTO storage.objects (bucket_id, name, owner, owner_id, metadata, user_metadata, created_at, updated_at)
		VALUES ($1, $2, $3::uuid, $3::text, $4::jsonb, $5::jsonb, '2024-07-01T12:00:00.25Z', '2024-07-02T12:00:00.75Z')
		ON CONFLICT (bucket_id, name) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = now()`,
		s.Bucket, o.Name, owner, meta, userMeta)
}
