package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
)

// TestSupabaseSyncUsersAndFiles copies a database playing a Supabase
// project's (users and a Storage bucket), then changes the source while
// `sync --source supabase --only users,files` polls it: a user added with
// a bcrypt password, one banned, one soft-deleted as Supabase Auth does it
// (obfuscated e-mail, NULL password), one given a new identity, one
// deleted; an object added, one overwritten with new bytes, one deleted.
// The target converges while sync runs (verify exits 0), `cutover` exits
// 0, the target's rows say what the source says, and `auth
// verify-password` accepts the new user's right password and refuses a
// wrong one — without --users-schema, whose default follows the source.
func TestSupabaseSyncUsersAndFiles(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	uids := src.SeedUsers(t, 12)
	objs := supabasetest.Objects(8)
	st := src.SeedStorage(t, objs)
	dsn, pool := targetDatabase(t)
	dir := filepath.Join(t.TempDir(), "objects")
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN,
		"SUPABASE_S3_ACCESS_KEY_ID="+st.AccessKey, "SUPABASE_S3_SECRET_ACCESS_KEY="+st.SecretKey)
	kinds := []string{"--source", "supabase", "--only", "users,files",
		"--supabase-s3-endpoint", st.Endpoint, "--supabase-s3-region", st.Region, "--supabase-bucket", st.Bucket,
		"--objects", "file://" + dir}
	run := func(want int, args ...string) clitest.Result {
		t.Helper()
		res := clitest.Run(t, env, args...)
		if res.Code != want {
			t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args[0], res.Code, want, res.Stdout, res.Stderr)
		}
		return res
	}
	run(0, append([]string{"migrate"}, kinds...)...)
	// The default users schema follows the source: no firebase_auth.
	var users int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM supabase_users.users`).Scan(&users); err != nil || users != len(uids) {
		t.Fatalf("supabase_users.users holds %d users (%v), want %d", users, err, len(uids))
	}
	var firebase bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'firebase_auth')`).Scan(&firebase); err != nil || firebase {
		t.Fatalf("a firebase_auth schema exists after a Supabase migration (%v)", err)
	}

	p := clitest.Start(t, env, append(append([]string{"sync", "-v"}, kinds...), "--poll-interval", "1s")...)

	// Users: one added, one banned, one soft-deleted, a new identity, one
	// deleted.
	const newUID = "0e000000-0000-4000-8000-0000000000ee"
	const newPassword = "brand new password"
	src.Exec(t, `INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
		raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
		VALUES ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', 'newcomer@example.com', $2, now(),
		'{"provider": "email", "providers": ["email"]}', '{"joined": "during sync"}', now(), now())`, newUID, supabasetest.Bcrypt(t, newPassword))
	src.Exec(t, `INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
		VALUES ($1::text, $1::uuid, jsonb_build_object('sub', $1::text, 'email', 'newcomer@example.com'), 'email', now(), now())`, newUID)
	banned, softDeleted, linked, deleted := uids[len(uids)-1], uids[len(uids)-2], uids[len(uids)-3], uids[len(uids)-4]
	src.Exec(t, `UPDATE auth.users SET banned_until = '2124-12-06T00:00:00Z', updated_at = now() WHERE id = $1`, banned)
	src.Exec(t, `UPDATE auth.users SET deleted_at = now(), email = md5(email) || '@deleted.invalid', encrypted_password = NULL, updated_at = now() WHERE id = $1`, softDeleted)
	src.Exec(t, `UPDATE auth.identities SET provider_id = md5(provider_id), identity_data = jsonb_build_object('sub', md5(provider_id)) WHERE user_id = $1`, softDeleted)
	src.Exec(t, `INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
		VALUES ('gh-4242', $1, '{"sub": "gh-4242", "user_name": "octo"}', 'github', now(), now())`, linked)
	src.Exec(t, `UPDATE auth.users SET raw_app_meta_data = '{"provider": "email", "providers": ["email", "github"]}', updated_at = now() WHERE id = $1`, linked)
	src.Exec(t, `DELETE FROM auth.users WHERE id = $1`, deleted)

	// Files: one added, one overwritten, one deleted.
	added := supabasetest.Object{Name: "new/during sync ü%.txt", Data: []byte("added while sync polls\n"), ContentType: "text/plain", Owner: newUID}
	st.Put(t, src, added)
	changed := supabasetest.Object{Name: objs[0].Name, Data: []byte("new bytes"), ContentType: "image/webp", Owner: objs[0].Owner}
	st.Put(t, src, changed)
	gone := "bulk/0003.dat"
	if err := st.Client.RemoveObject(ctx, st.Bucket, gone, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, `DELETE FROM storage.objects WHERE bucket_id = $1 AND name = $2`, st.Bucket, gone)

	// Sync alone brings the target to the source: verify exits 0.
	verify := append([]string{"verify"}, kinds...)
	verifyUntilSynced(t, env, verify, p)
	// A change right before the freeze: cutover waits for sync's next poll.
	src.Exec(t, `UPDATE auth.users SET raw_user_meta_data = '{"last": "change"}', updated_at = now() WHERE id = $1`, supabasetest.UIDAlice)
	res := clitest.Run(t, env, append([]string{"cutover"}, kinds...)...)
	if res.Code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	t.Logf("cutover:\n%s", res.Stdout)
	stopSync(t, p)

	// What the target's rows say.
	var bannedDisabled, deletedDisabled, deletedGone, newExists bool
	var providers int
	err := pool.QueryRow(ctx, `SELECT
		(SELECT disabled FROM supabase_users.users WHERE uid = $1),
		(SELECT disabled AND extra ? 'deletedAt' FROM supabase_users.users WHERE uid = $2),
		NOT EXISTS (SELECT FROM supabase_users.users WHERE uid = $3),
		EXISTS (SELECT FROM supabase_users.users WHERE uid = $4),
		(SELECT count(*) FROM supabase_users.provider_identities WHERE uid = $5)`,
		banned, softDeleted, deleted, newUID, linked).Scan(&bannedDisabled, &deletedDisabled, &deletedGone, &newExists, &providers)
	if err != nil {
		t.Fatal(err)
	}
	if !bannedDisabled || !deletedDisabled || !deletedGone || !newExists || providers != 2 {
		t.Errorf("banned disabled %v, soft-deleted disabled %v, deleted gone %v, new user there %v, %d identities of the linked user (want 2)",
			bannedDisabled, deletedDisabled, deletedGone, newExists, providers)
	}

	// Passwords, with the users schema's default.
	if code := usersVerifyPassword(t, env, newUID, newPassword); code != 0 {
		t.Errorf("verify-password of the user added during sync, right password: exit %d, want 0", code)
	}
	if code := usersVerifyPassword(t, env, newUID, newPassword+"!"); code != 1 {
		t.Errorf("verify-password of the user added during sync, wrong password: exit %d, want 1", code)
	}
	if code := usersVerifyPassword(t, env, softDeleted, "extra-password"); code == 0 {
		t.Errorf("verify-password of a soft-deleted user accepted the password it had")
	}

	// Files: rows and bytes.
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.files WHERE bucket = $1`, st.Bucket).Scan(&rows); err != nil || rows != len(objs) {
		t.Errorf("%d file rows (%v), want %d", rows, err, len(objs))
	}
	for _, o := range []supabasetest.Object{added, changed} {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(o.Name)))
		if err != nil || !bytes.Equal(b, o.Data) {
			t.Errorf("%q in the target: %q, %v; want %q", o.Name, b, err, o.Data)
		}
		var sum, ct string
		if err := pool.QueryRow(ctx, `SELECT md5, content_type FROM public.files WHERE bucket = $1 AND name = $2`, st.Bucket, o.Name).Scan(&sum, &ct); err != nil ||
			sum != fmt.Sprintf("%x", md5.Sum(o.Data)) || ct != o.ContentType {
			t.Errorf("%q's row: md5 %s, content type %s, %v", o.Name, sum, ct, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(gone))); !os.IsNotExist(err) {
		t.Errorf("%q deleted at the source, its bytes still in the target (%v)", gone, err)
	}
	if strings.Contains(res.Stdout, "DIFFERENT") {
		t.Errorf("cutover's report names a difference:\n%s", res.Stdout)
	}
}

// TestSupabaseUsersIntoSupabaseAuthRefused: users of a Supabase project
// are not loaded into Supabase Auth's tables (--users-target supabase),
// whose mapping is built for other platforms' users and would change their
// ids: migrate, plan and verify refuse before writing anything, and say
// what to do instead.
func TestSupabaseUsersIntoSupabaseAuthRefused(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	src.SeedUsers(t, 1)
	dsn, pool := targetDatabase(t)
	if _, err := pool.Exec(ctx, supabasetest.AuthSchema); err != nil {
		t.Fatal(err)
	}
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN)
	for _, cmd := range []string{"migrate", "verify"} {
		res := clitest.Run(t, env, cmd, "--source", "supabase", "--only", "users", "--users-target", "supabase")
		if res.Code != 2 || !strings.Contains(res.Stderr, "--users-target supabase: these users are supabase's own already") ||
			!strings.Contains(res.Stderr, "use --users-target baasmigrate") {
			t.Errorf("%s --users-target supabase of Supabase users: exit %d, want 2 and the reason\n%s\n%s", cmd, res.Code, res.Stdout, res.Stderr)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM auth.users`).Scan(&n); err != nil || n != 0 {
		t.Errorf("auth.users holds %d users after the refusal (%v)", n, err)
	}
}
