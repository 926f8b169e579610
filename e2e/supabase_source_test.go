package e2e

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestSupabaseSourceUsersAndFiles migrates a database playing a Supabase
// project's (users of every kind Supabase Auth writes, a Storage bucket
// whose bytes MinIO serves as Storage's S3 endpoint): plan counts
// everything to copy; migrate --source supabase --only users,files is
// killed with SIGKILL mid-way and a second run finishes it; then verify
// finds the target identical, auth
// verify-password accepts the right passwords and refuses wrong ones, the
// objects hold the source's bytes, and verify notices a changed source.
func TestSupabaseSourceUsersAndFiles(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	uids := src.SeedUsers(t, 150)
	objs := supabasetest.Objects(120)
	st := src.SeedStorage(t, objs)

	dsn, pool := targetDatabase(t)
	target := strings.ToLower(strings.ReplaceAll(testenv.UniqueName("sbt-"+t.Name(), 50), "_", "-"))
	t.Cleanup(func() {
		for o := range st.Client.ListObjects(ctx, target, minio.ListObjectsOptions{Recursive: true}) {
			_ = st.Client.RemoveObject(ctx, target, o.Key, minio.RemoveObjectOptions{})
		}
		_ = st.Client.RemoveBucket(ctx, target)
	})
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN,
		"SUPABASE_S3_ACCESS_KEY_ID="+st.AccessKey, "SUPABASE_S3_SECRET_ACCESS_KEY="+st.SecretKey,
		"AWS_ACCESS_KEY_ID="+st.AccessKey, "AWS_SECRET_ACCESS_KEY="+st.SecretKey)
	common := []string{"--source", "supabase", "--only", "users,files", "--users-schema", "supabase_users",
		"--supabase-s3-endpoint", st.Endpoint, "--supabase-s3-region", st.Region, "--supabase-bucket", st.Bucket,
		"--objects", fmt.Sprintf("s3://%s?endpoint=%s&region=%s", target, st.Endpoint, st.Region)}
	migrate := append([]string{"migrate"}, append(common, "--workers", "2", "--batch-size", "5", "--supabase-page-size", "7")...)

	// plan: every user and object is missing from the empty target.
	var outputs []string
	res := clitest.Run(t, env, append([]string{"plan"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	outputs = append(outputs, res.Stdout, res.Stderr)
	for kind, want := range map[string]int64{"user": int64(len(uids)), "file": int64(len(objs))} {
		for table, tr := range tableReports(t, compareDoc(t, res.Stdout), kind) {
			if tr.Source != want || tr.MissingInTarget != want {
				t.Errorf("plan %s: %+v; want %d to copy", table, tr, want)
			}
		}
	}
	// Soft-deleted and anonymous users are reported, and what is done
	// with them.
	for _, want := range []string{"1 soft-deleted users are copied disabled", "1 anonymous users are copied"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("plan's output does not say %q:\n%s", want, res.Stderr)
		}
	}

	// Killed while it copies users, then while it copies files; the
	// third run finishes the files.
	for _, at := range []int64{40, int64(len(uids)) + 40} {
		if !clitest.KillAt(t, env, migrate, at, testenv.Committed(pool), 2*time.Minute) {
			t.Fatalf("the run finished before it could be killed at %d records", at)
		}
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	res = clitest.Run(t, env, append(migrate, "--summary", summary)...)
	if res.Code != 0 {
		t.Fatalf("migrate after the kill: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	outputs = append(outputs, res.Stdout, res.Stderr)
	s := readSummary[summaryJSON](t, summary)
	checkBalance(t, s)
	for _, j := range s.Jobs {
		if (j.Kind == "user" && !j.AlreadyFinished) || (j.Kind == "file" && !j.Resumed) {
			t.Errorf("the last run's %s job: %+v; want users already finished and files resumed", j.Kind, j)
		}
	}
	var users, files int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM supabase_users.users), (SELECT count(*) FROM public.files)`).Scan(&users, &files); err != nil {
		t.Fatal(err)
	}
	if users != len(uids) || files != len(objs) {
		t.Fatalf("target holds %d users and %d files, want %d and %d", users, files, len(uids), len(objs))
	}

	verify := append([]string{"verify"}, append(common, "--format", "json")...)
	res = clitest.Run(t, env, verify...)
	if res.Code != 0 {
		t.Fatalf("verify after migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	outputs = append(outputs, res.Stdout, res.Stderr)
	d := compareDoc(t, res.Stdout)
	for kind, want := range map[string]int64{"user": int64(len(uids)), "file": int64(len(objs))} {
		for table, tr := range tableReports(t, d, kind) {
			if tr.Source != want || tr.Matching != want || tr.Mismatched+tr.MissingInTarget+tr.ExtraInTarget+tr.Rejected != 0 {
				t.Errorf("verify %s: %+v; want %d identical", table, tr, want)
			}
		}
	}

	// Passwords: bcrypt as Supabase wrote them and an imported argon2id.
	usersEnv := env
	for uid, pw := range supabasetest.Passwords {
		if code := supabaseVerifyPassword(t, usersEnv, uid, pw); code != 0 {
			t.Errorf("verify-password %s with the right password: exit %d, want 0", uid, code)
		}
		if code := supabaseVerifyPassword(t, usersEnv, uid, pw+"x"); code != 1 {
			t.Errorf("verify-password %s with a wrong password: exit %d, want 1", uid, code)
		}
	}
	if code := supabaseVerifyPassword(t, usersEnv, uids[len(uids)-1], "extra-password"); code != 0 {
		t.Errorf("verify-password of an ordinary user: exit %d, want 0", code)
	}

	// What the target says of the kinds of users to design for.
	var disabledDeleted, disabledBanned, enabledEnded, anon, sso bool
	var claims string
	err := pool.QueryRow(ctx, `SELECT
		(SELECT disabled FROM supabase_users.users WHERE uid = $1), (SELECT disabled FROM supabase_users.users WHERE uid = $2),
		(SELECT NOT disabled FROM supabase_users.users WHERE uid = $3), (SELECT (extra->>'isAnonymous')::boolean FROM supabase_users.users WHERE uid = $4),
		(SELECT (extra->>'isSsoUser')::boolean FROM supabase_users.users WHERE uid = $5),
		(SELECT custom_claims->>'quota' FROM supabase_users.users WHERE uid = $6)`,
		supabasetest.UIDDeleted, supabasetest.UIDBanned, supabasetest.UIDBanEnded, supabasetest.UIDAnonymous, supabasetest.UIDSSO, supabasetest.UIDAlice,
	).Scan(&disabledDeleted, &disabledBanned, &enabledEnded, &anon, &sso, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if !disabledDeleted || !disabledBanned || !enabledEnded || !anon || !sso || claims != "12345678901234567890" {
		t.Errorf("deleted disabled %v, banned disabled %v, ended ban enabled %v, anonymous %v, sso %v, quota %s",
			disabledDeleted, disabledBanned, enabledEnded, anon, sso, claims)
	}

	// Every object holds the source's bytes under its name.
	for _, o := range objs {
		obj, err := st.Client.GetObject(ctx, target, o.Name, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || md5.Sum(b) != md5.Sum(o.Data) {
			t.Errorf("%q in the target: %d bytes, %v; want the %d of the source", o.Name, len(b), err, len(o.Data))
		}
	}
	var md5Big string
	if err := pool.QueryRow(ctx, `SELECT md5 FROM public.files WHERE name = 'videos/big.mp4'`).Scan(&md5Big); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Name == "videos/big.mp4" && md5Big != fmt.Sprintf("%x", md5.Sum(o.Data)) {
			t.Errorf("the multipart object's md5 is %s, not the MD5 of its bytes", md5Big)
		}
	}

	// A second bucket of the project goes into the same files table and
	// object store (--share-target), its objects under a prefix of their
	// own.
	objs2 := []supabasetest.Object{{Name: "a.txt", Data: []byte("second bucket"), ContentType: "text/plain"}, {Name: "avatars/alice.png", Data: []byte("other"), ContentType: "image/png"}}
	st2 := src.SeedStorage(t, objs2)
	second := []string{"--source", "supabase", "--only", "files", "--supabase-s3-endpoint", st.Endpoint, "--supabase-s3-region", st.Region,
		"--supabase-bucket", st2.Bucket, "--objects-prefix", st2.Bucket + "/", "--share-target",
		"--objects", fmt.Sprintf("s3://%s?endpoint=%s&region=%s", target, st.Endpoint, st.Region)}
	if res := clitest.Run(t, env, append([]string{"migrate"}, second...)...); res.Code != 0 {
		t.Fatalf("migrate of a second bucket: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if res := clitest.Run(t, env, append([]string{"verify"}, second...)...); res.Code != 0 {
		t.Fatalf("verify of a second bucket: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.files WHERE bucket = $1`, st2.Bucket).Scan(&files); err != nil || files != len(objs2) {
		t.Errorf("%d rows of the second bucket, %v", files, err)
	}

	// No secret in any output: the database's password, the S3 secret
	// key, password hashes, TOTP secrets.
	secrets := []string{st.SecretKey, "JBSWY3DPEHPK3PXP"}
	if u, err := url.Parse(src.DSN); err == nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	hashes, err := src.Pool.Query(ctx, `SELECT encrypted_password FROM auth.users WHERE encrypted_password <> ''`)
	if err != nil {
		t.Fatal(err)
	}
	for hashes.Next() {
		var h string
		if err := hashes.Scan(&h); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, h[len(h)-20:])
	}
	for _, out := range outputs {
		for _, secret := range secrets {
			if secret != "" && strings.Contains(out, secret) {
				t.Errorf("a secret appears in the output:\n%.2000s", out)
			}
		}
	}

	// A change at the source: verify reports it.
	src.Exec(t, `UPDATE auth.users SET raw_user_meta_data = '{"changed": true}' WHERE id = $1`, supabasetest.UIDBob)
	st.Put(t, src, supabasetest.Object{Name: "docs/100% done.txt", Data: []byte("changed\n"), ContentType: "text/plain"})
	res = clitest.Run(t, env, verify...)
	if res.Code == 0 {
		t.Fatalf("verify after source changes: exit 0\n%s", res.Stdout)
	}
	d = compareDoc(t, res.Stdout)
	for _, kind := range []string{"user", "file"} {
		for table, tr := range tableReports(t, d, kind) {
			if tr.Mismatched != 1 {
				t.Errorf("verify %s after one change: %+v", table, tr)
			}
		}
	}
}

// supabaseVerifyPassword checks password with `auth verify-password` for
// the users of schema supabase_users and returns its exit status.
func supabaseVerifyPassword(t *testing.T, env []string, uid, password string) int {
	t.Helper()
	return usersVerifyPassword(t, env, uid, password, "--users-schema", "supabase_users")
}
