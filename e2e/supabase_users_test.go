package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// TestUsersIntoSupabaseAuth loads the fixture export file into a database
// with Supabase Auth's schema (loaders/postgres/testdata/supabase_auth.sql)
// with migrate --users-target supabase, and checks that every loaded
// user's encrypted_password verifies the user's password (and refuses a
// wrong one) through passwords.Verify, as auth verify-password checks;
// that the users Supabase cannot hold are rejected with the reason; that a
// re-run rewrites nothing; and that plan refuses the target.
func TestUsersIntoSupabaseAuth(t *testing.T) {
	ctx := context.Background()
	pws := usersFixturePasswords(t)
	dsn := testenv.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ddl, err := os.ReadFile(filepath.Join("..", "loaders", "postgres", "testdata", "supabase_auth.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(ddl)); err != nil {
		t.Fatalf("creating Supabase's auth schema: %v", err)
	}
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
	err = pool.QueryRow(ctx, `SELECT
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
	if plan.Code == 0 || !strings.Contains(plan.Stderr, "cannot compare users with Supabase Auth's tables yet") {
		t.Errorf("plan --users-target supabase: exit %d\n%s", plan.Code, plan.Stderr)
	}
}
