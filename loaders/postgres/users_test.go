package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/firebaseauth"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

const (
	testSignerKey = scrypttest.SignerKey
	testHash      = scrypttest.Hash
	testSalt      = scrypttest.Salt
)

func strp(s string) *string { return &s }

func testParams(t *testing.T) firebasescrypt.Params {
	t.Helper()
	p, err := firebasescrypt.ParseParams(testSignerKey, "Bw==", 8, 14)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testShared is testParams as the sink's shared credential.
func testShared(t *testing.T) *passwords.Credential {
	t.Helper()
	p := testParams(t)
	return &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Params: passwords.FirebaseScryptParams(p)}
}

// writeUsers writes recs with sink s in one committed transaction.
func writeUsers(t *testing.T, pool *pgxpool.Pool, s loaders.Sink, recs ...record.Record) loaders.Outcome {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	out, err := s.Write(ctx, tx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(out.Tables) != len(recs) {
		t.Fatalf("%d outcomes for %d records", len(out.Tables), len(recs))
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func alice() record.User {
	return record.User{
		UID: "Alice", Email: strp("alice@example.com"), EmailVerified: true, DisplayName: strp(""),
		CreatedAt:    time.UnixMilli(1600000000123).UTC(),
		CustomClaims: strp(`{"admin":true,"big":12345678901234567890,"f":1.0}`),
		Password:     &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt},
		Providers: []record.Provider{
			{ProviderID: "google.com", RawID: "g1", Email: strp("alice@gmail.com")},
			{ProviderID: "password", RawID: "alice@example.com"},
		},
		MFA:   []record.MFAFactor{{EnrollmentID: "m1", FactorID: "phone", PhoneNumber: strp("+15555550100"), EnrolledAt: time.UnixMilli(1700000000000).UTC()}},
		Extra: map[string]record.Value{"screenName": record.String("al")},
	}
}

func TestUsersLoadReRunAndChildRowSync(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{Schema: "fb auth", SharedHash: testShared(t)})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx, pool); err != nil { // idempotent
		t.Fatal(err)
	}
	a := alice()
	bob := record.User{UID: "bob", Email: strp("BOB@example.com"), Disabled: true,
		Providers: []record.Provider{{ProviderID: "github.com", RawID: "42"}}}
	emu := record.User{UID: "emu", Password: &passwords.Credential{Algorithm: passwords.EmulatorFake, Hash: "fakeHash:salt=s:password=p", Salt: "s"}}
	v := int64(3)
	unk := record.User{UID: "unk", Password: &passwords.Credential{Algorithm: passwords.Unknown, Hash: "$2a$whatever", Salt: "", Version: &v}}
	recs := []record.Record{a.Record("1"), bob.Record("2"), emu.Record("3"), unk.Record("4")}

	out := writeUsers(t, pool, s, recs...)
	if len(out.Rejects) != 0 {
		t.Fatalf("rejects: %v", out.Rejects)
	}
	users, provs, mfa := `"fb auth".users`, `"fb auth".provider_identities`, `"fb auth".mfa_factors`
	if out.Changed["fb auth.users"] != 4 || out.Changed["fb auth.provider_identities"] != 3 || out.Changed["fb auth.mfa_factors"] != 1 {
		t.Fatalf("first load changed %v", out.Changed)
	}
	// Exact values, hash bytes and the parameters' reference included.
	var (
		hash, salt                        []byte
		claims, extra, alg, cfgID, dispNm string
		keyB64                            string
	)
	err := pool.QueryRow(ctx, `SELECT u.password_hash, u.password_salt, u.custom_claims::text, u.extra::text, u.password_algorithm,
		u.hash_config_id, u.display_name, h.parameters->>'signer_key' FROM `+users+` u JOIN "fb auth".hash_configs h ON h.id = u.hash_config_id WHERE uid = 'Alice'`).
		Scan(&hash, &salt, &claims, &extra, &alg, &cfgID, &dispNm, &keyB64)
	if err != nil {
		t.Fatal(err)
	}
	p := testParams(t)
	key, _ := base64.StdEncoding.DecodeString(keyB64)
	if ok, _ := p.Verify([]byte("user1password"), salt, hash); !ok || !bytes.Equal(key, p.SignerKey()) || cfgID != s.HashConfigID() || cfgID != "scrypt-"+p.Fingerprint() {
		t.Fatal("the stored hash, salt and parameters do not verify user1password")
	}
	if claims != `{"f": 1.0, "big": 12345678901234567890, "admin": true}` || extra != `{"screenName": "al"}` || alg != "FIREBASE_SCRYPT" || dispNm != "" {
		t.Fatalf("claims %s, extra %s, algorithm %s, display name %q", claims, extra, alg, dispNm)
	}
	var verbatim, emuAlg string
	var emuCfg *string
	if err := pool.QueryRow(ctx, `SELECT password_hash_verbatim, password_algorithm, hash_config_id FROM `+users+` WHERE uid = 'emu'`).Scan(&verbatim, &emuAlg, &emuCfg); err != nil {
		t.Fatal(err)
	}
	if verbatim != "fakeHash:salt=s:password=p" || emuAlg != "EMULATOR_FAKE" || emuCfg != nil {
		t.Fatalf("emulator hash: %q %q %v", verbatim, emuAlg, emuCfg)
	}
	if n := count(t, pool, `SELECT count(*) FROM `+users+` WHERE uid = 'unk' AND password_algorithm = 'UNKNOWN' AND password_version = 3 AND password_hash IS NULL AND password_hash_verbatim = '$2a$whatever'`); n != 1 {
		t.Fatal("the unknown-algorithm hash was not kept verbatim and marked")
	}

	// A second run writes nothing, child rows included.
	if out := writeUsers(t, pool, s, recs...); len(out.Changed) != 0 || len(out.Rejects) != 0 {
		t.Fatalf("identical re-run changed %v (rejects %v)", out.Changed, out.Rejects)
	}

	// The source unlinks a provider and changes the MFA factor: the target
	// follows, and only those rows change.
	a.Providers = a.Providers[:1]
	a.MFA[0].DisplayName = strp("work")
	out = writeUsers(t, pool, s, a.Record("1"))
	if out.Changed["fb auth.provider_identities"] != 1 || out.Changed["fb auth.mfa_factors"] != 1 || out.Changed["fb auth.users"] != 0 {
		t.Fatalf("child change: %v", out.Changed)
	}
	if n := count(t, pool, `SELECT count(*) FROM `+provs+` WHERE uid = 'Alice'`); n != 1 {
		t.Fatalf("Alice has %d provider rows, want 1", n)
	}
	a.MFA = nil
	writeUsers(t, pool, s, a.Record("1"))
	if n := count(t, pool, `SELECT count(*) FROM `+mfa); n != 0 {
		t.Fatalf("%d MFA rows left after the source dropped them", n)
	}
}

func TestUsersRejectWholeUsersAndLoadTheRest(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	good := record.User{UID: "good", Email: strp("g@example.com")}
	badHash := record.User{UID: "badhash", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: "not*base64", Salt: testSalt}}
	badClaims := record.User{UID: "badclaims", CustomClaims: strp(`[1,2]`)}
	invalid := record.User{UID: "#line 9", Invalid: "line 9 has 30 columns"}
	// PostgreSQL refuses a NUL in text: in a child row, the whole user goes.
	nul := record.User{UID: "nul", Email: strp("n@example.com"),
		Providers: []record.Provider{{ProviderID: "google.com", RawID: "x", DisplayName: strp("a\x00b")}}}
	dupProv := record.User{UID: "dupprov", Providers: []record.Provider{{ProviderID: "a", RawID: "1"}, {ProviderID: "a", RawID: "1"}}}
	noParams := record.User{UID: "noparams", Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: testHash, Salt: testSalt}}
	recs := []record.Record{good.Record(""), badHash.Record(""), badClaims.Record(""), invalid.Record(""), nul.Record(""),
		dupProv.Record(""), noParams.Record(""), good.Record("")}
	out := writeUsers(t, pool, s, recs...)
	want := map[int]string{
		1: "not base64", 2: "not a JSON object", 3: "line 9 has 30 columns", 4: "PostgreSQL refused the user",
		5: "appears twice", 7: "appears again",
	}
	if len(out.Rejects) != len(want) {
		t.Fatalf("rejects %v, want %d", out.Rejects, len(want))
	}
	for i, w := range want {
		if !strings.Contains(out.Rejects[i], w) {
			t.Errorf("record %d: reason %q, want %q", i, out.Rejects[i], w)
		}
		if strings.Contains(out.Rejects[i], testHash) || strings.Contains(out.Rejects[i], "not*base64") {
			t.Errorf("reason %q quotes the hash", out.Rejects[i])
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.users`); n != 2 {
		t.Fatalf("%d users loaded, want good and noparams", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.provider_identities WHERE uid = 'nul'`); n != 0 {
		t.Fatal("a rejected user left child rows")
	}
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.users WHERE uid = 'noparams' AND hash_config_id IS NULL AND password_hash IS NOT NULL`); n != 1 {
		t.Fatal("without parameters the hash must load with no reference")
	}
}

func TestUsersReportSharedEmails(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	s := postgres.NewUsers(postgres.UsersConfig{Log: slog.New(slog.DiscardHandler)})
	if err := s.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	a := record.User{UID: "a", Email: strp("Same@Example.com"), CreatedAt: time.UnixMilli(1).UTC()}
	b := record.User{UID: "b", Email: strp("same@example.com"), CreatedAt: time.UnixMilli(2).UTC()}
	writeUsers(t, pool, s, a.Record(""))
	if w, err := s.Warnings(ctx, pool); err != nil || len(w) != 0 {
		t.Fatalf("warned about one user: %v, %v", w, err)
	}
	writeUsers(t, pool, s, b.Record(""))
	w, err := s.Warnings(ctx, pool)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "share an e-mail address") || !strings.Contains(w[0], "[a b]") || strings.Contains(w[0], "example.com") {
		t.Fatalf("warnings = %v, %v; want one naming the uids, not the address", w, err)
	}
	var uids []string
	if err := pool.QueryRow(ctx, `SELECT uids FROM firebase_auth.duplicate_emails WHERE email = 'same@example.com'`).Scan(&uids); err != nil || strings.Join(uids, ",") != "a,b" {
		t.Fatalf("duplicate_emails: %v, %v", uids, err)
	}
}

// TestUsersMigrationFromFile runs the executor over an export file: read =
// loaded + rejected, and a restarted run rewrites nothing.
func TestUsersMigrationFromFile(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	state, err := postgres.OpenState(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"users": [` + "\n")
	for i := 0; i < 250; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		switch {
		case i == 100:
			b.WriteString(`{"localId": "bad", "passwordHash": "%%%", "salt": "AA=="}`)
		case i%2 == 0:
			b.WriteString(`{"localId": "` + fmt.Sprintf("u%03d", i) + `", "passwordHash": "` + testHash + `", "salt": "` + testSalt + `", "createdAt": "1600000000000"}`)
		default:
			b.WriteString(fmt.Sprintf(`{"localId": "u%03d", "email": "x%d@example.com", "providerUserInfo": [{"providerId": "google.com", "rawId": "%d"}]}`, i, i, i))
		}
	}
	b.WriteString("]}")
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(restart bool) *migration.Result {
		ex, err := firebaseauth.New(ctx, map[string]string{firebaseauth.ExportOption.Name: path})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		res, err := migration.Execute(ctx, pool, state, migration.Job{
			Kind: record.KindUser, Extractor: ex, Sink: postgres.NewUsers(postgres.UsersConfig{SharedHash: testShared(t)}),
			Config: map[string]string{"hash_config": "scrypt-" + testParams(t).Fingerprint()},
		}, migration.Options{BatchSize: 7, Restart: restart})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := run(false)
	var read, loaded, rejected, changed int64
	for _, tb := range res.Tables {
		read += tb.Read
		loaded += tb.Loaded()
		rejected += tb.Rejected
		if tb.Table == "firebase_auth.users" {
			changed += tb.Changed
		}
	}
	if read != 250 || rejected != 1 || loaded != 249 || changed != 249 {
		t.Fatalf("read %d, loaded %d, rejected %d, changed %d; want 250 = 249 + 1", read, loaded, rejected, changed)
	}
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.users`); n != 249 {
		t.Fatalf("%d users in the target", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM baasmigrate.rejects WHERE source_key = 'bad' AND reason LIKE '%not base64%'`); n != 1 {
		t.Fatal("the reject was not stored with its reason")
	}
	res = run(true)
	for _, tb := range res.Tables {
		if tb.Changed != 0 {
			t.Fatalf("a restarted run rewrote %d rows of %s", tb.Changed, tb.Table)
		}
	}
}

// TestUsersSameUIDTwiceInAFile: a uid a file holds twice is loaded once —
// its first occurrence — and every later occurrence is rejected naming
// both positions, whether they meet in one batch or in batches committed
// apart (by another process, after a kill: nothing is kept in memory). A
// new run of the file is not a duplicate of the last one; a load from the
// API ends the warning about the file.
func TestUsersSameUIDTwiceInAFile(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	newSink := func() *postgres.Users { return postgres.NewUsers(postgres.UsersConfig{}) }
	if err := newSink().Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	const file = "/exports/users.json"
	at := func(uid, email, read string, rec, line int64) record.Record {
		u := record.User{UID: uid, Email: strp(email), Position: &record.Position{File: file, Read: read, Record: rec, Line: line}}
		return u.Record(fmt.Sprint(rec))
	}
	email := func(uid string) string {
		var e string
		if err := pool.QueryRow(ctx, `SELECT email FROM firebase_auth.users WHERE uid = $1`, uid).Scan(&e); err != nil {
			t.Fatalf("%s: %v", uid, err)
		}
		return e
	}

	// Run 1, batch 1: u1 and u2.
	out := writeUsers(t, pool, newSink(), at("u1", "first@x", "R1", 1, 2), at("u2", "two@x", "R1", 2, 5))
	wantRejects(t, out, nil)
	// Batch 2, another sink (another process): u1 again, then u3 twice.
	out = writeUsers(t, pool, newSink(), at("u1", "second@x", "R1", 3, 9), at("u3", "three@x", "R1", 4, 12), at("u3", "other@x", "R1", 5, 15))
	wantRejects(t, out, map[int][]string{
		0: {`uid "u1" appears more than once in /exports/users.json`, "record 3 (line 9)", "record 1 (line 2)"},
		2: {`uid "u3"`, "record 5 (line 15)", "record 4 (line 12)"},
	})
	if email("u1") != "first@x" || email("u3") != "three@x" {
		t.Fatalf("a later occurrence overwrote the first: u1 %s, u3 %s", email("u1"), email("u3"))
	}
	// A retried batch holds the same occurrences: not duplicates.
	out = writeUsers(t, pool, newSink(), at("u3", "three@x", "R1", 4, 12))
	wantRejects(t, out, nil)

	w, err := newSink().Warnings(ctx, pool)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], `2 uid(s)`) || !strings.Contains(w[0], `"u1": record 1 (line 2) migrated, record 3 (line 9) rejected`) ||
		!strings.Contains(w[0], `"u3": record 4 (line 12) migrated, record 5 (line 15) rejected`) {
		t.Fatalf("warnings = %q, %v; want one naming u1 and u3 and where they are", w, err)
	}

	// Run 2 of the (changed) file: u1 at record 3 is its first occurrence now.
	out = writeUsers(t, pool, newSink(), at("u1", "second@x", "R2", 3, 9), at("u3", "three@x", "R2", 1, 1))
	wantRejects(t, out, nil)
	if email("u1") != "second@x" {
		t.Fatalf("run 2 did not load u1 from its own first occurrence: %s", email("u1"))
	}
	w, err = newSink().Warnings(ctx, pool)
	if err != nil || len(w) != 0 {
		t.Fatalf("warnings after run 2 without duplicates: %q, %v", w, err)
	}

	// Users from the API have no position: only a repeat in one batch can
	// be detected, and loading one ends what was known about its file.
	out = writeUsers(t, pool, newSink(), at("u4", "four@x", "R2", 7, 20), at("u4", "again@x", "R2", 8, 21))
	wantRejects(t, out, map[int][]string{1: {`uid "u4"`}})
	api := record.User{UID: "u4", Email: strp("api@x")}
	out = writeUsers(t, pool, newSink(), api.Record("u4"), api.Record("u4"))
	wantRejects(t, out, map[int][]string{1: {`uid "u4" appears again`}})
	if email("u4") != "api@x" {
		t.Fatalf("the API's u4 was not loaded: %s", email("u4"))
	}
	if w, err := newSink().Warnings(ctx, pool); err != nil || len(w) != 0 {
		t.Fatalf("warnings after u4 came from the API: %q, %v", w, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM firebase_auth.source_positions WHERE uid = 'u4'`); n != 0 {
		t.Fatalf("%d stale positions of u4", n)
	}
}

// wantRejects fails t unless out rejects exactly the records of want,
// each with a reason containing every string want gives it.
func wantRejects(t *testing.T, out loaders.Outcome, want map[int][]string) {
	t.Helper()
	if len(out.Rejects) != len(want) {
		t.Fatalf("rejects %v, want %d", out.Rejects, len(want))
	}
	for i, ws := range want {
		for _, w := range ws {
			if !strings.Contains(out.Rejects[i], w) {
				t.Errorf("record %d: reason %q, want %q", i, out.Rejects[i], w)
			}
		}
	}
}
