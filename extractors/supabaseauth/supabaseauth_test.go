package supabaseauth

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

func newExtractor(t *testing.T, cfg plugin.Config) *Extractor {
	t.Helper()
	ex, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr(s string) *string { return &s }

// readAll reads every user the extractor plans, in order.
func readAll(t *testing.T, ex extractors.Extractor, partitions int) []record.Record {
	t.Helper()
	_, streams, err := extractors.PlanSnapshot(context.Background(), ex, partitions)
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Record
	for _, s := range streams {
		for _, p := range s.Partitions {
			if err := ex.Read(context.Background(), p, s.ReadTime, "", func(r record.Record) error {
				out = append(out, r)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// want builds the records the seeded users should give: what each column
// of the fixture maps to (docs/sources.md, Supabase). Hashes are those
// seeded, read from the database (bcrypt salts are random).
func want(t *testing.T, p *supabasetest.Project, extra []string) map[string]record.Record {
	hashes := p.Pairs(t, `SELECT id::text, encrypted_password FROM auth.users WHERE encrypted_password <> ''`)
	created := ts("2024-03-01T10:00:00.123456Z")
	base := func(uid string, extra map[string]record.Value) record.User {
		x := map[string]record.Value{"aud": record.String("authenticated"), "role": record.String("authenticated"),
			"isAnonymous": record.Bool(false), "isSsoUser": record.Bool(false), "updatedAt": record.Timestamp(created),
			"userMetadata": record.String("{}")}
		for k, v := range extra {
			x[k] = v
		}
		u := record.User{UID: uid, CreatedAt: created, Extra: x, CustomClaims: ptr(`{"provider": "email", "providers": ["email"]}`)}
		if h, ok := hashes[uid]; ok {
			alg := passwords.Bcrypt
			if uid == supabasetest.UIDArgon {
				alg = passwords.Argon2id
			}
			u.Password = &passwords.Credential{Algorithm: alg, Hash: h}
		}
		return u
	}
	identity := func(id, provider, rawID, data string, email *string) record.Provider {
		return record.Provider{ProviderID: provider, RawID: rawID, Email: email, Extra: map[string]record.Value{
			"identityId": record.String(id), "identityData": record.String(data), "lastSignInAt": record.Timestamp(created),
			"createdAt": record.Timestamp(created), "updatedAt": record.Timestamp(created)}}
	}
	confirmed := record.Timestamp(created)
	var users []record.User

	alice := base(supabasetest.UIDAlice, map[string]record.Value{"emailConfirmedAt": record.Timestamp(ts("2024-03-01T10:05:00Z")),
		"userMetadata": record.String(`{"big": 9007199254740993, "nested": {"x": [1, 2.50]}, "full_name": "Alice Ünïcode", "avatar_url": "https://example.com/a.png"}`)})
	alice.Email, alice.EmailVerified = ptr("alice@example.com"), true
	alice.DisplayName, alice.PhotoURL = ptr("Alice Ünïcode"), ptr("https://example.com/a.png")
	alice.LastSignInAt = ts("2024-06-01T08:00:00.5Z")
	// Numbers beyond 2^53 and a decimal's scale stay exact.
	alice.CustomClaims = ptr(`{"plan": "pro", "quota": 12345678901234567890, "ratio": 1.10, "provider": "email", "providers": ["email", "google"]}`)
	alice.Providers = []record.Provider{
		identity("1d000000-0000-4000-8000-0000000000a1", "email", supabasetest.UIDAlice,
			`{"sub": "`+supabasetest.UIDAlice+`", "email": "alice@example.com", "email_verified": true}`, ptr("alice@example.com")),
		identity("1d000000-0000-4000-8000-0000000000a2", "google", "104729384756102938475",
			`{"iss": "https://accounts.google.com", "sub": "104729384756102938475", "name": "Alice G", "email": "Alice@Gmail.com"}`, ptr("alice@gmail.com")),
	}
	alice.MFA = []record.MFAFactor{
		{EnrollmentID: "fa000000-0000-4000-8000-000000000001", FactorID: "totp", DisplayName: ptr("Authenticator"), EnrolledAt: ts("2024-03-05T00:00:00Z"),
			Extra: map[string]record.Value{"status": record.String("verified"), "hasSecret": record.Bool(true), "updatedAt": record.Timestamp(ts("2024-03-05T00:00:00Z"))}},
		{EnrollmentID: "fa000000-0000-4000-8000-000000000002", FactorID: "phone", DisplayName: ptr("Phone"), PhoneNumber: ptr("+15559876543"),
			EnrolledAt: ts("2024-03-06T00:00:00Z"),
			Extra:      map[string]record.Value{"status": record.String("unverified"), "hasSecret": record.Bool(false), "updatedAt": record.Timestamp(ts("2024-03-06T00:00:00Z"))}},
	}
	users = append(users, alice)

	bob := base(supabasetest.UIDBob, map[string]record.Value{"phoneConfirmedAt": record.Timestamp(ts("2024-03-02T00:00:00Z"))})
	bob.PhoneNumber, bob.CustomClaims = ptr("+15551234567"), ptr(`{"provider": "phone", "providers": ["phone"]}`)
	bob.Providers = []record.Provider{identity("1d000000-0000-4000-8000-0000000000b1", "phone", supabasetest.UIDBob,
		`{"sub": "`+supabasetest.UIDBob+`", "phone": "15551234567"}`, nil)}
	bob.MFA = []record.MFAFactor{{EnrollmentID: "fa000000-0000-4000-8000-000000000003", FactorID: "unknown", DisplayName: ptr("Security key"),
		EnrolledAt: ts("2024-03-07T00:00:00Z"), Extra: map[string]record.Value{"status": record.String("verified"), "hasSecret": record.Bool(false),
			"updatedAt": record.Timestamp(ts("2024-03-07T00:00:00Z")), "factorType": record.String("webauthn"),
			"webAuthnCredential": record.String(`{"ID": "a2V5LWlk", "PublicKey": "cHVibGljLWtleQ==", "AttestationType": "none"}`),
			"webAuthnAaguid":     record.String("ee882879-721c-4913-9775-3dfcce97072a")}}}
	users = append(users, bob)

	banned := base(supabasetest.UIDBanned, map[string]record.Value{"emailConfirmedAt": confirmed, "bannedUntil": record.Timestamp(ts("2124-03-01T00:00:00Z"))})
	banned.Email, banned.EmailVerified, banned.Disabled = ptr("banned@example.com"), true, true
	users = append(users, banned)

	deleted := base(supabasetest.UIDDeleted, map[string]record.Value{"emailConfirmedAt": confirmed, "deletedAt": record.Timestamp(ts("2024-05-05T05:05:05Z"))})
	deleted.Email, deleted.EmailVerified, deleted.Disabled = ptr("b3f1c0de@deleted.invalid"), true, true
	deleted.Providers = []record.Provider{identity("1d000000-0000-4000-8000-0000000000d1", "email", "b3f1c0de", `{"sub": "b3f1c0de"}`, nil)}
	users = append(users, deleted)

	anon := base(supabasetest.UIDAnonymous, map[string]record.Value{"isAnonymous": record.Bool(true)})
	anon.CustomClaims = ptr(`{}`)
	users = append(users, anon)

	sso := base(supabasetest.UIDSSO, map[string]record.Value{"emailConfirmedAt": confirmed, "isSsoUser": record.Bool(true)})
	sso.Email, sso.EmailVerified = ptr("carol@corp.example"), true
	sso.CustomClaims = ptr(`{"provider": "sso:2f9e8d7c-0000-4000-8000-0000000000aa", "providers": ["sso:2f9e8d7c-0000-4000-8000-0000000000aa"]}`)
	sso.Providers = []record.Provider{identity("1d000000-0000-4000-8000-0000000000c1", "sso:2f9e8d7c-0000-4000-8000-0000000000aa", "carol@corp.example",
		`{"sub": "carol@corp.example", "email": "carol@corp.example", "custom_claims": {"groups": ["eng"]}}`, ptr("carol@corp.example"))}
	users = append(users, sso)

	invited := base(supabasetest.UIDInvited, map[string]record.Value{"invitedAt": record.Timestamp(ts("2024-04-04T04:04:04Z"))})
	invited.Email = ptr("invitee@example.com")
	users = append(users, invited)

	argon := base(supabasetest.UIDArgon, map[string]record.Value{"emailConfirmedAt": confirmed, "userMetadata": record.String(`{"name": "Imported"}`)})
	argon.Email, argon.EmailVerified, argon.DisplayName = ptr("imported@example.com"), true, ptr("Imported")
	users = append(users, argon)

	ended := base(supabasetest.UIDBanEnded, map[string]record.Value{"emailConfirmedAt": confirmed, "bannedUntil": record.Timestamp(ts("2020-01-01T00:00:00Z"))})
	ended.Email, ended.EmailVerified = ptr("forgiven@example.com"), true
	users = append(users, ended)

	b2 := base(supabasetest.UIDBcrypt2b, map[string]record.Value{"emailConfirmedAt": confirmed})
	b2.Email, b2.EmailVerified = ptr("imported-2b@example.com"), true
	users = append(users, b2)

	for i, id := range extra {
		u := base(id, map[string]record.Value{"emailConfirmedAt": confirmed, "userMetadata": record.String(fmt.Sprintf(`{"n": %d}`, i))})
		u.Email, u.EmailVerified = ptr(fmt.Sprintf("user%d@example.com", i)), true
		u.Providers = []record.Provider{identity(fmt.Sprintf("2d%06x-0000-4000-8000-%012x", i, i), "email", id, `{"sub": "`+id+`"}`, nil)}
		users = append(users, u)
	}
	out := map[string]record.Record{}
	for _, u := range users {
		out[u.UID] = u.Record("")
	}
	return out
}

func TestConformance(t *testing.T) {
	p := supabasetest.NewProject(t)
	ids := p.SeedUsers(t, 40)
	wantRecs := want(t, p, ids[supabasetest.Special:])
	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			return newExtractor(t, plugin.Config{"supabase-db": p.DSN, "supabase-page-size": "4"})
		},
		Want:  wantRecs,
		Times: true,
		Unreachable: func(t *testing.T) extractors.Extractor {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return newExtractor(t, plugin.Config{"supabase-db": "postgres://u:p@" + addr + "/db?sslmode=disable",
				"retry-attempts": "1", "source-timeout": "2s"})
		},
	})
}

// TestPasswordsVerify: the bcrypt hashes Supabase Auth wrote (and an
// imported argon2id one) verify their passwords and refuse others; users
// without one have none.
func TestPasswordsVerify(t *testing.T) {
	p := supabasetest.NewProject(t)
	p.SeedUsers(t, 0)
	byUID := map[string]record.User{}
	for _, r := range readAll(t, newExtractor(t, plugin.Config{"supabase-db": p.DSN}), 2) {
		u, err := record.UserFrom(r)
		if err != nil {
			t.Fatal(err)
		}
		byUID[u.UID] = u
	}
	for uid, pw := range supabasetest.Passwords {
		c := byUID[uid].Password
		if c == nil {
			t.Fatalf("%s: no password", uid)
		}
		if ok, err := passwords.Verify(*c, []byte(pw)); !ok || err != nil {
			t.Errorf("%s: the right password: %v, %v", uid, ok, err)
		}
		if ok, err := passwords.Verify(*c, []byte(pw+"x")); ok || err != nil {
			t.Errorf("%s: a wrong password: %v, %v", uid, ok, err)
		}
	}
	for _, uid := range []string{supabasetest.UIDAnonymous, supabasetest.UIDInvited, supabasetest.UIDDeleted, supabasetest.UIDSSO} {
		if byUID[uid].Password != nil {
			t.Errorf("%s: has a password %s, want none", uid, byUID[uid].Password.Algorithm)
		}
	}
}

// TestSkipOptions: skip leaves soft-deleted and anonymous users out, and
// counts agree with what is read; the settings are the run's.
func TestSkipOptions(t *testing.T) {
	p := supabasetest.NewProject(t)
	p.SeedUsers(t, 3)
	for _, c := range []struct {
		deleted, anonymous string
		without            []string
	}{
		{Keep, Keep, nil},
		{Skip, Keep, []string{supabasetest.UIDDeleted}},
		{Keep, Skip, []string{supabasetest.UIDAnonymous}},
		{Skip, Skip, []string{supabasetest.UIDDeleted, supabasetest.UIDAnonymous}},
	} {
		ex := newExtractor(t, plugin.Config{"supabase-db": p.DSN, DeletedOption.Name: c.deleted, AnonymousOption.Name: c.anonymous})
		got := map[string]bool{}
		for _, r := range readAll(t, ex, 3) {
			got[r.Key] = true
		}
		if n := supabasetest.Special + 3 - len(c.without); len(got) != n {
			t.Errorf("deleted=%s anonymous=%s: %d users, want %d", c.deleted, c.anonymous, len(got), n)
		}
		for _, uid := range c.without {
			if got[uid] {
				t.Errorf("deleted=%s anonymous=%s: %s was read", c.deleted, c.anonymous, uid)
			}
		}
		_, streams, err := extractors.PlanSnapshot(context.Background(), ex, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := ex.Count(context.Background(), streams[0]); err != nil || n != int64(len(got)) {
			t.Errorf("Count = %d, %v; read %d", n, err, len(got))
		}
		if s := ex.RunSettings(); s[DeletedOption.Name] != c.deleted || s[AnonymousOption.Name] != c.anonymous {
			t.Errorf("RunSettings = %v", s)
		}
	}
	if _, err := New(context.Background(), plugin.Config{"supabase-db": p.DSN, DeletedOption.Name: "drop"}); err == nil {
		t.Error("--supabase-deleted-users drop was accepted")
	}
}

// TestCredential maps every form of encrypted_password.
func TestCredential(t *testing.T) {
	for h, alg := range map[string]string{
		"": "", "$2a$10$abc": passwords.Bcrypt, "$2b$12$abc": passwords.Bcrypt, "$2y$10$abc": passwords.Bcrypt,
		"$argon2id$v=19$x": passwords.Argon2id, "$argon2i$v=19$x": passwords.Argon2i,
		"$fbscrypt$v=1,n=14,r=8,p=1,sk=a$b$c": passwords.FirebaseScrypt, "plain-md5-ish": passwords.Unknown,
	} {
		c := Credential(&h)
		switch {
		case alg == "" && c != nil:
			t.Errorf("%q: %v, want no credential", h, c.Algorithm)
		case alg != "" && (c == nil || c.Algorithm != alg || c.Hash != h || c.Salt != ""):
			t.Errorf("%q: %+v, want %s with the hash verbatim", h, c, alg)
		}
	}
	if Credential(nil) != nil {
		t.Error("NULL gave a credential")
	}
}
