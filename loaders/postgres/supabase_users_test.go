package postgres_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// supabasePool is a fresh database with Supabase Auth's auth.users and
// auth.identities (supabasetest.AuthSchema).
func supabasePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := newPool(t)
	if _, err := pool.Exec(context.Background(), supabasetest.AuthSchema); err != nil {
		t.Fatalf("creating Supabase's auth schema: %v", err)
	}
	return pool
}

func newSupabaseUsers(t *testing.T, cfg postgres.SupabaseUsersConfig) *postgres.SupabaseUsers {
	t.Helper()
	s, err := postgres.NewSupabaseUsers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// badSupabaseUsers are users the Supabase sink rejects: by its own checks,
// and two PostgreSQL refuses (an address beyond varchar(255), a NUL in
// jsonb).
func badSupabaseUsers() []record.Record {
	return []record.Record{
		record.User{UID: "bad-hash", Email: sp("bh@example.com"), Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: "not*base64", Salt: testSalt}}.Record("bad-hash"),
		record.User{UID: "bad-claims", Email: sp("bc@example.com"), CustomClaims: sp(`[1]`)}.Record("bad-claims"),
		record.User{UID: "bad-invalid", Invalid: "line 9 has 30 columns"}.Record("bad-invalid"),
		record.User{UID: "bad-nul", Email: sp("nul@example.com"), DisplayName: sp("a\x00b")}.Record("bad-nul"),
		record.User{UID: "bad-long-email", Email: sp(strings.Repeat("x", 250) + "@example.com")}.Record("bad-long-email"),
		record.User{UID: "bad-nothing"}.Record("bad-nothing"),
	}
}

// storedSupabase digests auth.users and auth.identities by firebase_uid.
func storedSupabase(versions bool) func(t *testing.T, pool *pgxpool.Pool) map[string]string {
	return func(t *testing.T, pool *pgxpool.Pool) map[string]string {
		t.Helper()
		contents, vers := digestRows(t, pool, `
			SELECT u.raw_app_meta_data->>'firebase_uid', 'user ' || to_jsonb(u)::text, u.xmin::text FROM auth.users u
			UNION ALL SELECT u.raw_app_meta_data->>'firebase_uid', 'identity ' || to_jsonb(i)::text, i.xmin::text
				FROM auth.identities i JOIN auth.users u ON u.id = i.user_id
			ORDER BY 1, 2`)
		if versions {
			return vers
		}
		return contents
	}
}

func TestSupabaseUsersPrepareRefuses(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	s := newSupabaseUsers(t, postgres.SupabaseUsersConfig{})
	err := s.Prepare(ctx, pool)
	if err == nil || !strings.Contains(err.Error(), "table auth.users does not exist") {
		t.Fatalf("Prepare without Supabase's tables: %v", err)
	}
	pool = supabasePool(t)
	if _, err := pool.Exec(ctx, `ALTER TABLE auth.users DROP COLUMN banned_until, DROP COLUMN is_anonymous`); err != nil {
		t.Fatal(err)
	}
	err = s.Prepare(ctx, pool)
	if err == nil || !strings.Contains(err.Error(), "auth.users has no column banned_until, is_anonymous") {
		t.Fatalf("Prepare with columns missing: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users' AND column_name IN ('banned_until', 'is_anonymous')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("Prepare altered auth.users: %d, %v", n, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname = 'baasmigrate'`); n != 0 {
		t.Fatalf("a refused Prepare created the state schema")
	}
}

// PlannedDDL lists the position table Prepare creates in the state schema,
// and creates nothing; after Prepare it lists nothing.
func TestSupabaseUsersPlannedDDL(t *testing.T) {
	ctx := context.Background()
	pool := supabasePool(t)
	s := newSupabaseUsers(t, postgres.SupabaseUsersConfig{})
	stmts, err := s.PlannedDDL(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var sqls []string
	for _, st := range stmts {
		sqls = append(sqls, st.SQL)
	}
	all := strings.Join(sqls, "\n")
	if len(stmts) != 3 || !strings.Contains(all, `CREATE SCHEMA IF NOT EXISTS "baasmigrate"`) ||
		!strings.Contains(all, `CREATE TABLE IF NOT EXISTS "baasmigrate"."supabase_user_positions"`) || strings.Contains(all, "auth") {
		t.Fatalf("planned DDL:\n%s", all)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname = 'baasmigrate'`); n != 0 {
		t.Fatalf("PlannedDDL created the state schema")
	}
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatalf("a second Prepare: %v", err)
	}
	if stmts, err := s.PlannedDDL(ctx, pool); err != nil || len(stmts) != 0 {
		t.Fatalf("planned DDL after Prepare: %v, %v", stmts, err)
	}
}

func bcryptOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

type supabaseUserRow struct {
	ID, Aud, Role, Instance, Password string
	Email, Phone                      *string
	EmailAt, PhoneAt, Banned, Created *time.Time
	App, Meta                         map[string]any
}

func readSupabaseUser(t *testing.T, pool *pgxpool.Pool, uid string) supabaseUserRow {
	t.Helper()
	var r supabaseUserRow
	var app, meta string
	err := pool.QueryRow(context.Background(), `SELECT id::text, aud, role, instance_id::text, encrypted_password, email, phone,
		email_confirmed_at, phone_confirmed_at, banned_until, created_at, raw_app_meta_data::text, raw_user_meta_data::text
		FROM auth.users WHERE id = $1::uuid`, authexport.SupabaseID("", uid)).Scan(&r.ID, &r.Aud, &r.Role, &r.Instance, &r.Password,
		&r.Email, &r.Phone, &r.EmailAt, &r.PhoneAt, &r.Banned, &r.Created, &app, &meta)
	if err != nil {
		t.Fatalf("reading user %s: %v", uid, err)
	}
	dec := json.NewDecoder(strings.NewReader(app))
	dec.UseNumber()
	if err := dec.Decode(&r.App); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(meta), &r.Meta); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSupabaseUsersFields(t *testing.T) {
	ctx := context.Background()
	pool := supabasePool(t)
	created := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	users := []record.User{
		{UID: "alice", Email: sp("Alice@Example.COM"), EmailVerified: false, CreatedAt: created, DisplayName: sp("Alice"),
			CustomClaims: sp(`{"big":12345678901234567890,"role":"admin"}`),
			Password:     &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt},
			Providers: []record.Provider{{ProviderID: "password", RawID: "Alice@Example.COM"},
				{ProviderID: "google.com", RawID: "g-1", Email: sp("alice@gmail.com")}, {ProviderID: "microsoft.com", RawID: "ms-1"},
				{ProviderID: "oidc.corp", RawID: "c-1"}}},
		{UID: "phone-only", PhoneNumber: sp("+1 555 0100"), Disabled: true, CreatedAt: created},
		{UID: "dup", Email: sp("alice@example.com"), CreatedAt: created.Add(time.Hour)},
		{UID: "taken-google", Email: sp("t@example.com"), Providers: []record.Provider{{ProviderID: "google.com", RawID: "g-1"}}},
		{UID: "bcrypt", Email: sp("b@example.com"), Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: bcryptOf(t, "secret pw")}},
		{UID: "long-hash", Email: sp("l@example.com"), Password: &passwords.Credential{Algorithm: "BCRYPT", Hash: "$2b$10$" + strings.Repeat("a", 300)}},
	}
	var recs []record.Record
	for _, u := range users {
		recs = append(recs, u.Record(u.UID))
	}
	s := newSupabaseUsers(t, postgres.SupabaseUsersConfig{SharedHash: testShared(t), EmailConfirm: authexport.ConfirmVerified})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	out := writeUsers(t, pool, s, recs...)
	for i, want := range map[int]string{2: "e-mail address (lower-cased", 3: "google identity \"g-1\" is also user", 5: "cannot be written in a form Supabase Auth verifies"} {
		if !strings.Contains(out.Rejects[i], want) {
			t.Errorf("record %d: reject %q, want one saying %q", i, out.Rejects[i], want)
		}
	}
	if len(out.Rejects) != 3 {
		t.Errorf("rejects %v; want 3", out.Rejects)
	}
	a := readSupabaseUser(t, pool, "alice")
	if a.Aud != "authenticated" || a.Role != "authenticated" || a.Instance != postgres.SupabaseInstanceID || *a.Email != "alice@example.com" {
		t.Errorf("alice: %+v", a)
	}
	if a.EmailAt != nil {
		t.Errorf("alice's unverified address is confirmed with --email-confirm verified")
	}
	if ok, err := passwords.Verify(*postgres.SupabaseCredential(a.Password), []byte("user1password")); !ok || err != nil {
		t.Errorf("alice's $fbscrypt$ hash does not verify: %v %v", ok, err)
	}
	if ok, _ := passwords.Verify(*postgres.SupabaseCredential(a.Password), []byte("user1passwore")); ok {
		t.Errorf("alice's hash verifies a wrong password")
	}
	if a.App["big"] != json.Number("12345678901234567890") || a.App["role"] != "admin" || a.App["firebase_uid"] != "alice" ||
		a.App["provider"] != "email" || fmt.Sprint(a.App["providers"]) != "[email google azure]" || a.Meta["display_name"] != "Alice" {
		t.Errorf("alice's metadata: app %v, user %v", a.App, a.Meta)
	}
	rows, err := pool.Query(ctx, `SELECT provider || ':' || provider_id || ':' || (identity_data->>'sub') FROM auth.identities WHERE user_id = $1::uuid ORDER BY 1`, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	idents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("[azure:ms-1:ms-1 email:%s:%s google:g-1:g-1]", a.ID, a.ID); fmt.Sprint(idents) != want {
		t.Errorf("alice's identities %v; want %s", idents, want)
	}
	b := readSupabaseUser(t, pool, "bcrypt")
	if ok, err := passwords.Verify(*postgres.SupabaseCredential(b.Password), []byte("secret pw")); !ok || err != nil {
		t.Errorf("the bcrypt hash does not verify: %v %v", ok, err)
	}
	if ok, _ := passwords.Verify(*postgres.SupabaseCredential(b.Password), []byte("secret pW")); ok {
		t.Errorf("the bcrypt hash verifies a wrong password")
	}
	warnings, err := s.Warnings(ctx, pool)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "1 user(s) signed in at Firebase with oidc.corp") || !strings.Contains(warnings[0], "alice") {
		t.Errorf("warnings %q, %v; want one about alice's oidc.corp", warnings, err)
	}
	p := readSupabaseUser(t, pool, "phone-only")
	if p.Phone == nil || *p.Phone != "15550100" || p.PhoneAt == nil || !p.PhoneAt.Equal(created) || p.Banned == nil || p.Banned.Before(time.Now().AddDate(100, 0, 0)) || p.Password != "" {
		t.Errorf("phone-only: %+v", p)
	}
	// The same batch again changes nothing.
	var before string
	if err := pool.QueryRow(ctx, `SELECT string_agg(xmin::text, ',' ORDER BY id) FROM auth.users`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	again := writeUsers(t, pool, newSupabaseUsers(t, postgres.SupabaseUsersConfig{SharedHash: testShared(t), EmailConfirm: authexport.ConfirmVerified}), recs...)
	var after string
	if err := pool.QueryRow(ctx, `SELECT string_agg(xmin::text, ',' ORDER BY id) FROM auth.users`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after || len(again.Changed) != 0 || len(again.Rejects) != 3 {
		t.Errorf("a re-run rewrote rows (xmin %s → %s) or changed %v, rejects %v", before, after, again.Changed, again.Rejects)
	}
	// The default confirms every address.
	writeUsers(t, pool, newSupabaseUsers(t, postgres.SupabaseUsersConfig{SharedHash: testShared(t)}), recs[0])
	if a := readSupabaseUser(t, pool, "alice"); a.EmailAt == nil || !a.EmailAt.Equal(created) {
		t.Errorf("with --email-confirm all, alice's email_confirmed_at is %v", a.EmailAt)
	}
}

// A uid an export file holds twice is loaded into auth.users from its
// first occurrence only; every later occurrence — in the same batch or a
// batch committed apart, by another sink (another process, a resumed run
// after a kill) — is rejected naming both positions, never written over
// it. A retried batch (the same occurrence at the same position) and a
// new run of the file are not duplicates. The positions are kept in the
// tool's state schema, not in Supabase's auth schema.
func TestSupabaseUsersSameUIDTwiceInAFile(t *testing.T) {
	ctx := context.Background()
	pool := supabasePool(t)
	newSink := func() *postgres.SupabaseUsers {
		s := newSupabaseUsers(t, postgres.SupabaseUsersConfig{})
		if err := s.Prepare(ctx, pool); err != nil {
			t.Fatal(err)
		}
		return s
	}
	newSink()
	const file = "/exports/users.json"
	at := func(uid, email, read string, rec, line int64) record.Record {
		u := record.User{UID: uid, Email: sp(email), Position: &record.Position{File: file, Read: read, Record: rec, Line: line}}
		return u.Record(fmt.Sprint(rec))
	}
	email := func(uid string) string {
		t.Helper()
		r := readSupabaseUser(t, pool, uid)
		if r.Email == nil {
			return ""
		}
		return *r.Email
	}

	// Run 1, batch 1: u1 and u2.
	out := writeUsers(t, pool, newSink(), at("u1", "first@x.io", "R1", 1, 2), at("u2", "two@x.io", "R1", 2, 5))
	wantRejects(t, out, nil)
	// Batch 2, another sink: u1 again, then u3 twice.
	out = writeUsers(t, pool, newSink(), at("u1", "second@x.io", "R1", 3, 9), at("u3", "three@x.io", "R1", 4, 12), at("u3", "other@x.io", "R1", 5, 15))
	wantRejects(t, out, map[int][]string{
		0: {`uid "u1" appears more than once in /exports/users.json`, "record 3 (line 9)", "record 1 (line 2)"},
		2: {`uid "u3"`, "record 5 (line 15)", "record 4 (line 12)"},
	})
	if email("u1") != "first@x.io" || email("u3") != "three@x.io" {
		t.Fatalf("a later occurrence overwrote the first: u1 %s, u3 %s", email("u1"), email("u3"))
	}
	if n := count(t, pool, `SELECT count(*) FROM auth.users`); n != 3 {
		t.Fatalf("%d users in auth.users, want 3", n)
	}
	// A retried batch (a resumed run) holds the same occurrences: not
	// duplicates, and nothing changes.
	out = writeUsers(t, pool, newSink(), at("u1", "first@x.io", "R1", 1, 2), at("u3", "three@x.io", "R1", 4, 12))
	wantRejects(t, out, nil)
	if len(out.Changed) != 0 {
		t.Fatalf("a retried batch changed %v", out.Changed)
	}
	w, err := newSink().Warnings(ctx, pool)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], `2 uid(s)`) || !strings.Contains(w[0], `"u1": record 1 (line 2) migrated, record 3 (line 9) rejected`) {
		t.Fatalf("warnings = %q, %v; want one naming u1 and u3 and where they are", w, err)
	}

	// Run 2 of the (changed) file: u1 at record 3 is its first occurrence now.
	out = writeUsers(t, pool, newSink(), at("u1", "second@x.io", "R2", 3, 9), at("u3", "three@x.io", "R2", 1, 1))
	wantRejects(t, out, nil)
	if email("u1") != "second@x.io" {
		t.Fatalf("run 2 did not load u1 from its own first occurrence: %s", email("u1"))
	}
	if w, err := newSink().Warnings(ctx, pool); err != nil || len(w) != 0 {
		t.Fatalf("warnings after run 2 without duplicates: %q, %v", w, err)
	}

	// Users from the API have no position: a load from it forgets the
	// file's positions of the uid.
	api := record.User{UID: "u1", Email: sp("api@x.io")}
	out = writeUsers(t, pool, newSink(), api.Record("u1"))
	wantRejects(t, out, nil)
	if email("u1") != "api@x.io" {
		t.Fatalf("the API's u1 was not loaded: %s", email("u1"))
	}
	if n := count(t, pool, `SELECT count(*) FROM baasmigrate.supabase_user_positions WHERE uid = 'u1'`); n != 0 {
		t.Fatalf("%d stale positions of u1", n)
	}
	// Nothing of the sink's own is in Supabase's schema.
	if n := count(t, pool, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'auth' AND c.relkind IN ('r', 'v') AND c.relname NOT IN ('users', 'identities')`); n != 0 {
		t.Fatalf("%d tables or views of the sink in schema auth", n)
	}
}

// identitiesOf lists a user's auth.identities as provider:provider_id,
// sorted; a user id stands as "self".
func identitiesOf(t *testing.T, pool *pgxpool.Pool, id string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT provider || ':' || CASE WHEN provider_id = user_id::text THEN 'self' ELSE provider_id END
		FROM auth.identities WHERE user_id = $1::uuid ORDER BY 1`, id)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(ids, " ")
}

// A user loaded again after its Firebase providers changed (a provider
// unlinked, the phone number or the e-mail address removed, an identity
// moved to another user) keeps only the identities the source still
// has: the ones the sink wrote and the source dropped are deleted in the
// batch's transaction, with the user's row. Identities of providers the
// sink does not map, and every identity of users without a firebase_uid
// (Supabase's own), are never touched; a user rejected keeps its
// identities as they were.
func TestSupabaseUsersStaleIdentities(t *testing.T) {
	ctx := context.Background()
	pool := supabasePool(t)
	newSink := func() *postgres.SupabaseUsers {
		s := newSupabaseUsers(t, postgres.SupabaseUsersConfig{SharedHash: testShared(t)})
		if err := s.Prepare(ctx, pool); err != nil {
			t.Fatal(err)
		}
		return s
	}
	pw := &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt}
	full := record.User{UID: "ann", Email: sp("ann@example.com"), PhoneNumber: sp("+15550001"), Password: pw,
		Providers: []record.Provider{{ProviderID: "password", RawID: "ann@example.com"}, {ProviderID: "phone", RawID: "+15550001"},
			{ProviderID: "google.com", RawID: "g-ann"}, {ProviderID: "github.com", RawID: "gh-ann"}}}
	bob := record.User{UID: "bob", Email: sp("bob@example.com"), Password: pw,
		Providers: []record.Provider{{ProviderID: "password", RawID: "bob@example.com"}, {ProviderID: "apple.com", RawID: "a-bob"}}}
	cid := authexport.SupabaseID("", "carl")
	carl := record.User{UID: "carl", Email: sp("carl@example.com"), Password: pw}
	out := writeUsers(t, pool, newSink(), full.Record("ann"), bob.Record("bob"), carl.Record("carl"))
	wantRejects(t, out, nil)
	ann, bid := authexport.SupabaseID("", "ann"), authexport.SupabaseID("", "bob")
	if got := identitiesOf(t, pool, ann); got != "email:self github:gh-ann google:g-ann phone:self" {
		t.Fatalf("ann's identities after the first load: %s", got)
	}
	// Supabase's own: a user without firebase_uid with identities of
	// mapped providers, and an identity of a provider the sink does not
	// map (linked on Supabase) on a migrated user.
	const own = "33333333-3333-3333-3333-333333333333"
	for _, q := range []string{
		`INSERT INTO auth.users (instance_id, id, aud, role, email, raw_app_meta_data) VALUES
			('00000000-0000-0000-0000-000000000000', '` + own + `', 'authenticated', 'authenticated', 'own@supabase.test', '{"provider": "email"}')`,
		`INSERT INTO auth.identities (provider_id, user_id, identity_data, provider) VALUES
			('` + own + `', '` + own + `', '{"sub": "x"}', 'email'), ('g-own', '` + own + `', '{"sub": "g-own"}', 'google'),
			('d-ann', '` + ann + `', '{"sub": "d-ann"}', 'discord')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	// ann unlinks GitHub and drops her phone number; bob's Apple identity
	// moves to carl in the same batch.
	noPhone := full
	noPhone.PhoneNumber = nil
	noPhone.Providers = []record.Provider{{ProviderID: "password", RawID: "ann@example.com"}, {ProviderID: "google.com", RawID: "g-ann"}}
	bob2 := bob
	bob2.Providers = bob.Providers[:1]
	carl2 := carl
	carl2.Providers = []record.Provider{{ProviderID: "apple.com", RawID: "a-bob"}}
	out = writeUsers(t, pool, newSink(), noPhone.Record("ann"), bob2.Record("bob"), carl2.Record("carl"))
	wantRejects(t, out, nil)
	if got := identitiesOf(t, pool, ann); got != "discord:d-ann email:self google:g-ann" {
		t.Errorf("ann's identities without GitHub and phone: %s", got)
	}
	if got := identitiesOf(t, pool, bid); got != "email:self" {
		t.Errorf("bob's identities without Apple: %s", got)
	}
	if got := identitiesOf(t, pool, cid); got != "apple:a-bob email:self" {
		t.Errorf("carl's identities with bob's Apple identity: %s", got)
	}
	if out.Changed["auth.identities"] < 4 { // 3 deleted, 1 inserted
		t.Errorf("changed %v; want the deleted identities counted", out.Changed)
	}

	// ann drops her e-mail address for a phone number; a rejected user
	// (bob, now with carl's address) keeps its identities.
	phoneOnly := record.User{UID: "ann", PhoneNumber: sp("+15550002"), Providers: []record.Provider{{ProviderID: "phone", RawID: "+15550002"}}}
	bob3 := bob2
	bob3.Email = sp("carl@example.com")
	bob3.Providers = nil
	out = writeUsers(t, pool, newSink(), phoneOnly.Record("ann"), bob3.Record("bob"))
	wantRejects(t, out, map[int][]string{1: {"e-mail address"}})
	if got := identitiesOf(t, pool, ann); got != "discord:d-ann phone:self" {
		t.Errorf("ann's identities with only a phone number: %s", got)
	}
	if got := identitiesOf(t, pool, bid); got != "email:self" {
		t.Errorf("rejected bob's identities: %s", got)
	}
	if got := identitiesOf(t, pool, own); got != "email:self google:g-own" {
		t.Errorf("Supabase's own user's identities: %s", got)
	}
	// Nothing changes on a re-run.
	again := writeUsers(t, pool, newSink(), phoneOnly.Record("ann"), bob2.Record("bob"), carl2.Record("carl"))
	wantRejects(t, again, nil)
	if len(again.Changed) != 0 {
		t.Errorf("a re-run changed %v", again.Changed)
	}
}

// Each OAuth provider Firebase knows gets an identity under Supabase
// Auth's name for it (google.com, apple.com, github.com, facebook.com,
// twitter.com, microsoft.com → google, apple, github, facebook, twitter,
// azure), with the provider's user id as provider_id and sub; a 128-byte
// uid (Firebase's longest) loads under its derived id with the uid in
// raw_app_meta_data; a Firebase scrypt hash whose "$fbscrypt$" form is
// longer than encrypted_password's 255 characters rejects the user with
// that reason rather than storing what Supabase cannot verify.
func TestSupabaseUsersProviderNamesAndLimits(t *testing.T) {
	ctx := context.Background()
	pool := supabasePool(t)
	s := newSupabaseUsers(t, postgres.SupabaseUsersConfig{SharedHash: testShared(t)})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	uid := strings.Repeat("u", 127) + "Z"
	u := record.User{UID: uid, Email: sp("many@example.com"), Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt}}
	want := map[string]string{"google.com": "google", "apple.com": "apple", "github.com": "github", "facebook.com": "facebook",
		"twitter.com": "twitter", "microsoft.com": "azure"}
	var wantIdents []string
	for fb, name := range want {
		u.Providers = append(u.Providers, record.Provider{ProviderID: fb, RawID: "id-" + name})
		wantIdents = append(wantIdents, name+":id-"+name+":id-"+name)
	}
	u.Providers = append(u.Providers, record.Provider{ProviderID: "password", RawID: "many@example.com"})
	longSalt := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 64)))
	long := record.User{UID: "long-salt", Email: sp("ls@example.com"), Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: longSalt}}
	out := writeUsers(t, pool, s, u.Record(uid), long.Record("long-salt"))
	wantRejects(t, out, map[int][]string{1: {"longer than the 255 characters of auth.users.encrypted_password"}})
	id := authexport.SupabaseID("", uid)
	r := readSupabaseUser(t, pool, uid)
	if r.ID != id || r.App["firebase_uid"] != uid {
		t.Errorf("the 128-byte uid: id %s (want %s), firebase_uid %v", r.ID, id, r.App["firebase_uid"])
	}
	rows, err := pool.Query(ctx, `SELECT provider || ':' || provider_id || ':' || (identity_data->>'sub') FROM auth.identities
		WHERE user_id = $1::uuid AND provider <> 'email' ORDER BY 1`, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(wantIdents)
	if strings.Join(got, " ") != strings.Join(wantIdents, " ") {
		t.Errorf("identities %v; want %v", got, wantIdents)
	}
	if n := count(t, pool, `SELECT count(*) FROM auth.users WHERE raw_app_meta_data->>'firebase_uid' = 'long-salt'`); n != 0 {
		t.Errorf("the user with a hash too long for encrypted_password was loaded")
	}
}
