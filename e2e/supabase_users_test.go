package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// TestUsersIntoSupabaseAuth loads the fixture export file into a database
// with Supabase Auth's schema (supabasetest.AuthSchema)
// with migrate --users-target supabase, and checks that every loaded
// user's encrypted_password verifies the user's password (and refuses a
// wrong one) through passwords.Verify, as auth verify-password checks;
// that the users Supabase cannot hold are rejected with the reason; that a
// re-run rewrites nothing; and that plan refuses the target (verify:
// TestVerifyUsersInSupabaseAuth).
func TestUsersIntoSupabaseAuth(t *testing.T) {
	ctx := context.Background()
	pws := usersFixturePasswords(t)
	dsn, pool := supabaseAuthDatabase(t)
	env := clitest.Env("DATABASE_URL=" + dsn)
	path, _ := filepath.Abs(filepath.Join("testdata", "auth", "auth-export.json"))
	sum := filepath.Join(t.TempDir(), "summary.json")
	args := append([]string{"migrate", "--only", "users", "--users-target", "supabase", "--auth-export", path, "--summary", sum}, usersHashFlags()...)
	res := clitest.Run(t, env, args...)
	usersNoSecrets(t, "output", res.Stdout+res.Stderr)
	// fx-bad-hash (not base64) and fx-frank (fx-alice's address in another
	// case) cannot be Supabase users.
	usersCheckRejectedRun(t, res, sum, 7, 2)
	for _, want := range []string{`"fx-bad-hash": the password hash cannot be written in a form Supabase Auth verifies`,
		`"fx-frank": its e-mail address (lower-cased, as Supabase Auth compares them) is already another user's`} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, res.Stdout)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'firebase_auth'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("baasmigrate's own users tables were created (%d, %v)", n, err)
	}
	checked := 0
	for uid, pw := range pws {
		if uid == "fx-frank" {
			continue
		}
		var enc string
		if err := pool.QueryRow(ctx, `SELECT encrypted_password FROM auth.users WHERE id = $1::uuid AND raw_app_meta_data->>'firebase_uid' = $2`,
			authexport.SupabaseID("", uid), uid).Scan(&enc); err != nil {
			t.Fatalf("%s: %v", uid, err)
		}
		c := postgres.SupabaseCredential(enc)
		if c == nil || !strings.HasPrefix(enc, "$fbscrypt$") {
			t.Fatalf("%s: encrypted_password is not a $fbscrypt$ hash", uid)
		}
		if ok, err := passwords.Verify(*c, []byte(pw)); !ok || err != nil {
			t.Errorf("%s: the right password is refused (%v)", uid, err)
		}
		if ok, err := passwords.Verify(*c, []byte(pw+"x")); ok || err != nil {
			t.Errorf("%s: a wrong password is accepted (%v)", uid, err)
		}
		checked++
	}
	if checked != 3 {
		t.Errorf("%d users' passwords checked; want 3", checked)
	}
	var claim, bobBan, daveIdents, carolIdents, counts string
	err := pool.QueryRow(ctx, `SELECT
		(SELECT raw_app_meta_data->>'n' FROM auth.users WHERE raw_app_meta_data->>'firebase_uid' = 'fx-alice'),
		(SELECT (banned_until > now() + interval '100 years')::text FROM auth.users WHERE raw_app_meta_data->>'firebase_uid' = 'fx-bob'),
		(SELECT string_agg(i.provider, ',' ORDER BY i.provider) FROM auth.identities i JOIN auth.users u ON u.id = i.user_id WHERE u.raw_app_meta_data->>'firebase_uid' = 'fx-dave'),
		(SELECT string_agg(i.provider, ',' ORDER BY i.provider) FROM auth.identities i JOIN auth.users u ON u.id = i.user_id WHERE u.raw_app_meta_data->>'firebase_uid' = 'fx-carol'),
		(SELECT count(*) FROM auth.users)::text || '/' || (SELECT count(*) FROM auth.identities)::text`).Scan(&claim, &bobBan, &daveIdents, &carolIdents, &counts)
	if err != nil {
		t.Fatal(err)
	}
	if claim != "12345678901234567890" || bobBan != "true" || daveIdents != "phone" || carolIdents == "" {
		t.Errorf("alice's claim n %s, bob banned %s, dave's identities %s, carol's %s", claim, bobBan, daveIdents, carolIdents)
	}
	t.Logf("auth.users/auth.identities rows: %s; carol's identities: %s", counts, carolIdents)

	var before string
	versions := `SELECT (SELECT string_agg(xmin::text, ',' ORDER BY id) FROM auth.users) || '|' || (SELECT string_agg(xmin::text, ',' ORDER BY id) FROM auth.identities)`
	if err := pool.QueryRow(ctx, versions).Scan(&before); err != nil {
		t.Fatal(err)
	}
	again := clitest.Run(t, env, append(args[:len(args):len(args)], "--restart")...)
	if again.Code != 1 {
		t.Fatalf("re-run: exit %d\n%s", again.Code, again.Stderr)
	}
	var after string
	if err := pool.QueryRow(ctx, versions).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("a re-run rewrote rows of auth.users or auth.identities")
	}

	plan := clitest.Run(t, env, append([]string{"plan", "--only", "users", "--users-target", "supabase", "--auth-export", path}, usersHashFlags()...)...)
	if plan.Code == 0 || !strings.Contains(plan.Stderr, "cannot compare users with Supabase Auth's tables (--users-target supabase): verify can") {
		t.Errorf("plan --users-target supabase: exit %d\n%s", plan.Code, plan.Stderr)
	}
}

// TestUsersIntoSupabaseSameUIDTwice: an export file holding uids twice, in
// batches committed apart and in one batch, loaded into Supabase Auth by
// runs killed -9 and resumed by new processes: every uid lands in
// auth.users once, with its first occurrence's values, and every repeat is
// rejected naming both positions (detection rests on the database, not on
// a process's memory). A re-run of the file rejects the same repeats and
// rewrites nothing, and verify reports the repeats as rejects. No table
// of the tool's is created in schema auth.
func TestUsersIntoSupabaseSameUIDTwice(t *testing.T) {
	const n = 1500
	repeats := map[int]int{1450: 20, 800: 700, 1490: 1480, 1495: 1496}
	// 1495 holds u01496's uid before 1496 does: 1495 is its first
	// occurrence in file order, 1496 the repeat.
	ctx := context.Background()
	dsn, pool := supabaseAuthDatabase(t)
	env := clitest.Env("DATABASE_URL=" + dsn)
	dir := t.TempDir()
	path := usersExportWithRepeats(t, dir, "json", n, repeats)
	lineOf := func(rec int) int { return rec + 1 }
	sum := filepath.Join(dir, "summary.json")
	args := []string{"migrate", "--only", "users", "--users-target", "supabase", "--auth-export", path, "--batch-size", "20"}
	committed := testenv.Committed(pool)
	r := rand.New(rand.NewPCG(12, 12))
	kills := 0
	for attempt := 0; attempt < 3; attempt++ {
		target := min(committed()+100+r.Int64N(300), 1300) // well before the end: the run would exit 1
		if clitest.KillAt(t, env, args, target, committed, time.Minute) {
			kills++
		}
	}
	if kills < 2 {
		t.Fatalf("only %d of 3 attempts were killed mid-run", kills)
	}
	// record → the record whose values auth.users must hold for its uid.
	rejected := map[int]int{1450: 20, 800: 700, 1490: 1480, 1496: 1495}
	check := func(res clitest.Result) {
		t.Helper()
		usersCheckRejectedRun(t, res, sum, n, int64(len(rejected)))
		var rows, again int
		if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE email LIKE '%@again.test') FROM auth.users`).Scan(&rows, &again); err != nil {
			t.Fatal(err)
		}
		if rows != n-len(rejected) || again != 1 { // u01496@again.test, record 1495, is a first occurrence
			t.Errorf("%d users in auth.users, %d from an @again.test record; want %d and 1", rows, again, n-len(rejected))
		}
		var email string
		if err := pool.QueryRow(ctx, `SELECT email FROM auth.users WHERE raw_app_meta_data->>'firebase_uid' = 'u01496'`).Scan(&email); err != nil || email != "u01496@again.test" {
			t.Errorf("u01496 holds %q (%v); want its first occurrence's u01496@again.test", email, err)
		}
		out := res.Stdout + res.Stderr
		if !strings.Contains(out, fmt.Sprintf("an export file holds %d uid(s) more than once", len(rejected))) {
			t.Errorf("no warning naming the repeated uids:\n%s", out)
		}
		for rec, first := range rejected {
			uid := fmt.Sprintf("u%05d", rec) // 1496
			if f, ok := repeats[rec]; ok {
				uid = fmt.Sprintf("u%05d", f)
			}
			var reason string
			err := pool.QueryRow(ctx, `SELECT reason FROM baasmigrate.rejects WHERE source_key = $1`, uid).Scan(&reason)
			want := fmt.Sprintf("record %d (line %d) repeats record %d (line %d)", rec, lineOf(rec), first, lineOf(first))
			if err != nil || !strings.Contains(reason, want) {
				t.Errorf("reject of %s: %q, %v; want it to say %q", uid, reason, err, want)
			}
		}
	}
	check(clitest.Run(t, env, append(args, "--summary", sum)...))
	var extra int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = 'auth' AND c.relkind IN ('r', 'v') AND c.relname NOT IN ('users', 'identities')`).Scan(&extra); err != nil || extra != 0 {
		t.Errorf("%d tables or views of the tool's in schema auth (%v)", extra, err)
	}

	versions := `SELECT (SELECT string_agg(xmin::text, ',' ORDER BY id) FROM auth.users) || '|' || (SELECT string_agg(xmin::text, ',' ORDER BY id) FROM auth.identities)`
	var before, after string
	if err := pool.QueryRow(ctx, versions).Scan(&before); err != nil {
		t.Fatal(err)
	}
	check(clitest.Run(t, env, append(args, "--summary", sum, "--restart")...))
	if err := pool.QueryRow(ctx, versions).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("a re-run of the file rewrote rows of auth.users or auth.identities")
	}
	// verify reports the repeats as migrate's rejects, not as
	// differences, and matches each row once.
	res := clitest.Run(t, env, "verify", "--only", "users", "--users-target", "supabase", "--auth-export", path, "--format", "json")
	tr := tableReports(t, compareDoc(t, res.Stdout), "user")["auth.users"]
	if res.Code != 1 || tr == nil || tr.Matching != int64(n-len(rejected)) || tr.Rejected != int64(len(rejected)) ||
		tr.Mismatched+tr.MissingInTarget+tr.ExtraInTarget != 0 {
		t.Errorf("verify: exit %d, %+v; want %d matching and %d rejected", res.Code, tr, n-len(rejected), len(rejected))
	}
}

// TestVerifyUsersInSupabaseAuth loads the fixture export file, less the
// two users Supabase cannot hold, into Supabase Auth and compares it with
// verify --users-target supabase: identical after the load (exit 0);
// after one user's e-mail address is changed, another user is deleted and
// a third's encrypted_password is altered, exit 1 naming exactly those
// three, with no password string or secret in the output.
func TestVerifyUsersInSupabaseAuth(t *testing.T) {
	ctx := context.Background()
	dsn, pool := supabaseAuthDatabase(t)
	// The fixture without fx-bad-hash and fx-frank, which migrate rejects.
	raw, err := os.ReadFile(filepath.Join("testdata", "auth", "auth-export.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Users []map[string]any `json:"users"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var kept []map[string]any
	for _, u := range file.Users {
		if id := u["localId"]; id != "fx-bad-hash" && id != "fx-frank" {
			kept = append(kept, u)
		}
	}
	file.Users = kept
	out, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth-export.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	env := clitest.Env("DATABASE_URL=" + dsn)
	target := []string{"--only", "users", "--users-target", "supabase", "--auth-export", path}
	if res := clitest.Run(t, env, append(append([]string{"migrate"}, target...), usersHashFlags()...)...); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	verify := func(want int) clitest.Result {
		t.Helper()
		res := clitest.Run(t, env, append(append([]string{"verify"}, target...), usersHashFlags()...)...)
		usersNoSecrets(t, "verify's output", res.Stdout+res.Stderr)
		if strings.Contains(res.Stdout+res.Stderr, "$fbscrypt$") {
			t.Errorf("verify's output holds an encrypted_password")
		}
		if res.Code != want {
			t.Fatalf("verify: exit %d, want %d\n%s\n%s", res.Code, want, res.Stdout, res.Stderr)
		}
		return res
	}
	res := verify(0)
	t.Logf("verify after the load:\n%s", res.Stdout)

	for _, q := range []string{
		`UPDATE auth.users SET email = 'someone@else.test' WHERE raw_app_meta_data->>'firebase_uid' = 'fx-alice'`,
		`DELETE FROM auth.users WHERE raw_app_meta_data->>'firebase_uid' = 'fx-bob'`,
		`UPDATE auth.users SET encrypted_password = encrypted_password || 'x' WHERE raw_app_meta_data->>'firebase_uid' = 'fx-carol'`,
	} {
		if tag, err := pool.Exec(ctx, q); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v, %d rows", q, err, tag.RowsAffected())
		}
	}
	res = verify(1)
	for _, want := range []string{"fx-alice", "email", "fx-bob", "fx-carol", "encryptedPassword"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("verify's report does not name %s:\n%s", want, res.Stdout)
		}
	}
	res = clitest.Run(t, env, append(append([]string{"verify", "--format", "json"}, target...), usersHashFlags()...)...)
	tr := tableReports(t, compareDoc(t, res.Stdout), "user")["auth.users"]
	if tr == nil {
		t.Fatalf("no auth.users in the report:\n%s", res.Stdout)
	}
	if tr.Mismatched != 2 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 0 || tr.Rejected != 0 || tr.Matching != tr.Source-3 {
		t.Errorf("verify: %+v; want 2 different, 1 missing, the rest matching", tr)
	}
	// A user the source lacks, among Firebase's, is counted extra and
	// named by its uid, in the text and the JSON report; Supabase's own
	// users are neither compared nor counted.
	for _, q := range []string{
		`INSERT INTO auth.users (instance_id, id, aud, role, email, raw_app_meta_data) VALUES
			('00000000-0000-0000-0000-000000000000', '11111111-1111-1111-1111-111111111111', 'authenticated', 'authenticated', 'extra@fb.test', '{"firebase_uid": "fx-extra"}'),
			('00000000-0000-0000-0000-000000000000', '22222222-2222-2222-2222-222222222222', 'authenticated', 'authenticated', 'own@supabase.test', '{"provider": "email"}')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	res = clitest.Run(t, env, append(append([]string{"verify", "--format", "json"}, target...), usersHashFlags()...)...)
	tr = tableReports(t, compareDoc(t, res.Stdout), "user")["auth.users"]
	if res.Code != 1 || tr == nil || tr.ExtraInTarget != 1 {
		t.Errorf("verify with a Firebase user the source lacks and one of Supabase's own: exit %d, %+v; want 1 extra", res.Code, tr)
	}
	if strings.Contains(res.Stdout, "own@supabase.test") || strings.Contains(res.Stdout, "22222222-2222") {
		t.Errorf("the report names Supabase's own user:\n%s", res.Stdout)
	}
	if !strings.Contains(res.Stdout, `"fx-extra"`) {
		t.Errorf("the JSON report does not name the extra user fx-extra:\n%s", res.Stdout)
	}
	res = verify(1)
	if !strings.Contains(res.Stdout, "fx-extra") || strings.Contains(res.Stdout, "own@supabase.test") {
		t.Errorf("the text report does not name the extra user fx-extra, or names Supabase's own:\n%s", res.Stdout)
	}
}

// supabaseAuthDatabase is a fresh target database (targetDatabase) holding
// Supabase Auth's schema (supabasetest.AuthSchema).
func supabaseAuthDatabase(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	dsn, pool := targetDatabase(t)
	if _, err := pool.Exec(context.Background(), supabasetest.AuthSchema); err != nil {
		t.Fatalf("creating Supabase's auth schema: %v", err)
	}
	return dsn, pool
}
