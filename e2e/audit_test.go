package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"firebase.google.com/go/v4/auth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/manifest"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// auditSummary is the part of `migrate --summary` the erasure tests read.
type auditSummary struct {
	Jobs []struct {
		Kind   string `json:"kind"`
		Tables []struct {
			Table                            string
			Read, Loaded, Rejected, Excluded int64
		} `json:"tables"`
	} `json:"jobs"`
	Totals struct {
		Read, Loaded, Rejected, Excluded int64
	} `json:"totals"`
	ExitStatus int `json:"exit_status"`
}

// auditCheckSummary reads a summary and checks read = loaded + rejected +
// excluded everywhere, and the totals' excluded count.
func auditCheckSummary(t *testing.T, path string, read, excluded int64) auditSummary {
	t.Helper()
	s := readSummary[auditSummary](t, path)
	for _, j := range s.Jobs {
		for _, tb := range j.Tables {
			if tb.Read != tb.Loaded+tb.Rejected+tb.Excluded {
				t.Errorf("%s %s: read %d != loaded %d + rejected %d + excluded %d", j.Kind, tb.Table, tb.Read, tb.Loaded, tb.Rejected, tb.Excluded)
			}
		}
	}
	if s.Totals.Read != read || s.Totals.Excluded != excluded || s.Totals.Loaded != read-excluded || s.ExitStatus != 0 {
		t.Fatalf("summary totals %+v, exit %d; want read %d, excluded %d, loaded %d, exit 0", s.Totals, s.ExitStatus, read, excluded, read-excluded)
	}
	return s
}

// auditExcludedReport returns verify's report and the table whose
// excluded counts are set, checking the totals over the kind.
func auditExcluded(t *testing.T, stdout, kind string, excluded, present int64) map[string]*diff.TableReport {
	t.Helper()
	reps := tableReports(t, compareDoc(t, stdout), kind)
	var ex, pr int64
	for _, tr := range reps {
		ex += tr.Excluded
		pr += tr.ExcludedInTarget
	}
	if ex != excluded || pr != present {
		t.Fatalf("verify: %d excluded, %d present in the target; want %d, %d\n%s", ex, pr, excluded, present, stdout)
	}
	return reps
}

// auditSampleKeys lists the keys of the excluded_in_target samples.
func auditSampleKeys(reps map[string]*diff.TableReport) []string {
	var out []string
	for _, tr := range reps {
		for _, s := range tr.Samples {
			if s.Outcome == diff.ExcludedInTarget {
				out = append(out, tr.Table+" "+s.Key)
			}
		}
	}
	return out
}

func auditWrite(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// auditCount counts the rows of a query.
func auditCount(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// auditStateHolds lists the tables of the state schema with a row whose
// text holds needle.
func auditStateHolds(t *testing.T, pool *pgxpool.Pool, needle string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'baasmigrate' AND c.relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables, out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range tables {
		q := `SELECT count(*) FROM baasmigrate.` + pgx.Identifier{name}.Sanitize() + ` x WHERE strpos(to_jsonb(x)::text, $1) > 0`
		if auditCount(t, pool, q, needle) > 0 {
			out = append(out, name)
		}
	}
	return out
}

// auditKeys writes an ed25519 key pair as openssl writes them (PKCS#8 and
// PKIX PEM).
func auditKeys(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	priv = auditWrite(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pub = auditWrite(t, dir, name+".pub.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})))
	return priv, pub
}

// TestEraseDocumentAndManifest excludes a document (and its subcollection)
// from migrate, proves it absent with verify, names it when it is put back
// by hand; and writes a signed manifest that matches the target, fails
// when a target value or a byte of it changes, and holds no password.
func TestEraseDocumentAndManifest(t *testing.T) {
	f := newDocsFixture(t)
	ctx := context.Background()
	for path, data := range map[string]map[string]any{
		"users/alice":           {"name": "Alice"},
		"users/alice/orders/o1": {"total": 10},
		"users/bob":             {"name": "Bob"},
		"users/bob/orders/o2":   {"total": 20},
		"users/carol":           {"name": "Carol"},
	} {
		if _, err := f.client.Doc(path).Set(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	mapping := f.infer()
	// A transform, for the manifest to record.
	mm := loadMapping(t, mapping)
	masked := false
	for _, tb := range mm.Tables {
		for i, c := range tb.Columns {
			if tb.Name == "users" && c.Field == "name" {
				tb.Columns[i].Transform = &mappings.Transform{Kind: mappings.TransformMask, KeepFirst: 1}
				masked = true
			}
		}
	}
	if !masked {
		t.Fatal("the inferred mapping has no users.name column")
	}
	saveMapping(t, mapping, mm)
	list := auditWrite(t, f.dir, "erase.txt", "# pending deletion requests\n\ndoc:users/alice\n")
	priv, pub := auditKeys(t, f.dir, "signer")
	_, otherPub := auditKeys(t, f.dir, "other")
	man := filepath.Join(f.dir, "manifest.json")
	sum := filepath.Join(f.dir, "summary.json")

	res := f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--exclude-from", list, "--summary", sum,
		"--manifest", man, "--manifest-key", priv, "--verbose")
	auditCheckSummary(t, sum, 5, 2)
	if !regexp.MustCompile(`rejected +excluded +changed`).MatchString(res.Stdout) {
		t.Errorf("the summary table shows no excluded column:\n%s", res.Stdout)
	}
	for where, text := range map[string]string{"stdout": res.Stdout, "stderr": res.Stderr} {
		if strings.Contains(text, "users/alice") {
			t.Errorf("%s names an excluded entry:\n%s", where, text)
		}
	}
	if n := auditCount(t, f.pool, `SELECT count(*) FROM users WHERE id = 'alice'`); n != 0 {
		t.Fatalf("the excluded document is in the target (%d rows)", n)
	}
	if got := auditStateHolds(t, f.pool, "alice"); len(got) != 0 {
		t.Fatalf("the state schema holds an excluded key, in %v", got)
	}
	var runConfig string
	if err := f.pool.QueryRow(ctx, `SELECT config::text FROM baasmigrate.runs ORDER BY id DESC LIMIT 1`).Scan(&runConfig); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(runConfig, "exclude-from-sha256") || strings.Contains(runConfig, "users/alice") {
		t.Fatalf("the run's settings should hold the list's digest, not its entries: %s", runConfig)
	}

	res = f.run(0, "verify", "--only", "documents", "--exclude-from", list, "--format", "json")
	reps := auditExcluded(t, res.Stdout, "document", 2, 0)
	if reps["users"].Source != 2 || reps["users"].Matching != 2 {
		t.Fatalf("users after migrate: %+v", reps["users"])
	}
	res = f.run(0, "plan", "--only", "documents", "--exclude-from", list, "--format", "json")
	for name, tr := range auditExcluded(t, res.Stdout, "document", 2, 0) {
		if tr.MissingInTarget != 0 || tr.Mismatched != 0 {
			t.Errorf("plan after migrate, table %s: %+v; want nothing to do", name, tr)
		}
	}

	// The manifest: no password, valid, stored in the state schema.
	data, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgxpool.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	if pw := pc.ConnConfig.Password; pw == "" || strings.Contains(string(data), pw) {
		t.Fatalf("the manifest holds the target's password (or the test's DSN has none)")
	}
	if strings.Contains(string(data), "users/alice") {
		t.Fatal("the manifest names an excluded entry")
	}
	m, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Exclusions == nil || m.Exclusions.Entries != 1 || m.Exclusions.Records != 2 || len(m.Exclusions.ListSHA256) != 64 {
		t.Fatalf("exclusions in the manifest: %+v", m.Exclusions)
	}
	if m.Signature == nil || len(m.Jobs) != 1 || len(m.Jobs[0].ReadTimes) == 0 || m.Jobs[0].MappingSHA256 == "" || m.Source.Platform != "firebase" {
		t.Fatalf("manifest: %s", data)
	}
	if len(m.Transforms) != 1 || m.Transforms[0].Table != "users" || m.Transforms[0].Field != "name" || !strings.HasPrefix(m.Transforms[0].Transform, "mask") {
		t.Fatalf("transforms in the manifest: %+v", m.Transforms)
	}
	var users *manifest.TableDigest
	for i, td := range m.Content.Tables {
		if td.Schema == "public" && td.Table == "users" {
			users = &m.Content.Tables[i]
		}
	}
	if users == nil || users.Rows != 2 {
		t.Fatalf("the manifest's content has no public.users of 2 rows: %+v", m.Content.Tables)
	}
	if n := auditCount(t, f.pool, `SELECT count(*) FROM baasmigrate.manifests WHERE command = 'migrate' AND signed AND sha256 = $1`, fmt.Sprintf("%x", sha256Sum(data))); n != 1 {
		t.Fatalf("the manifest is not stored in the state schema (%d rows)", n)
	}
	var stored string
	if err := f.pool.QueryRow(ctx, `SELECT string_agg(manifest::text, ' ') FROM baasmigrate.manifests`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, pc.ConnConfig.Password) {
		t.Fatal("the stored manifest holds the target's password")
	}

	res = f.run(0, "manifest", "verify", "--manifest", man, "--public-key", pub)
	if !strings.Contains(res.Stdout, "signature: valid, by the public key given") {
		t.Fatalf("manifest verify:\n%s", res.Stdout)
	}
	res = f.run(1, "manifest", "verify", "--manifest", man, "--public-key", otherPub)
	if !strings.Contains(res.Stdout, "another key") {
		t.Fatalf("manifest verify with another key:\n%s", res.Stdout)
	}

	// verify --manifest adds its result.
	vman := filepath.Join(f.dir, "verify-manifest.json")
	f.run(0, "verify", "--only", "documents", "--exclude-from", list, "--manifest", vman, "--manifest-key", priv)
	vdata, err := os.ReadFile(vman)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := manifest.Parse(vdata)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Verify == nil || !vm.Verify.Identical || vm.Content.SHA256 != m.Content.SHA256 {
		t.Fatalf("verify's manifest: %s", vdata)
	}

	// One byte of the manifest changed: the signature fails.
	flipped := append([]byte(nil), data...)
	at := strings.Index(string(flipped), `"command": "migrate"`) + len(`"command": "m`)
	flipped[at] = 'M'
	bad := auditWrite(t, f.dir, "flipped.json", string(flipped))
	res = f.run(1, "manifest", "verify", "--manifest", bad, "--public-key", pub)
	if !strings.Contains(res.Stdout, "signature: FAILED") {
		t.Fatalf("manifest verify of a changed manifest:\n%s", res.Stdout)
	}
	spaced := append([]byte(nil), data...)
	spaced[strings.Index(string(spaced), "\n  ")+1] = '\t' // whitespace counts too
	res = f.run(1, "manifest", "verify", "--manifest", auditWrite(t, f.dir, "spaced.json", string(spaced)), "--public-key", pub)
	if !strings.Contains(res.Stdout, "signature: FAILED") {
		t.Fatalf("manifest verify of a re-spaced manifest:\n%s", res.Stdout)
	}

	// One target value tampered with: the digest of its table changes.
	if _, err := f.pool.Exec(ctx, `UPDATE users SET name = name || 'x' WHERE id = 'bob'`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, "manifest", "verify", "--manifest", man, "--public-key", pub)
	if !strings.Contains(res.Stdout, "table public.users: content differs") || strings.Contains(res.Stdout, "orders") {
		t.Fatalf("manifest verify after tampering names the wrong tables:\n%s", res.Stdout)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE users SET name = left(name, -1) WHERE id = 'bob'`); err != nil {
		t.Fatal(err)
	}
	f.run(0, "manifest", "verify", "--manifest", man, "--public-key", pub)

	// The excluded document put back by hand: verify names it.
	if _, err := f.pool.Exec(ctx, `INSERT INTO users (id, name) VALUES ('alice', 'Alice')`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, "verify", "--only", "documents", "--exclude-from", list, "--format", "json")
	reps = auditExcluded(t, res.Stdout, "document", 2, 1)
	if got := auditSampleKeys(reps); len(got) != 1 || got[0] != "users users/alice" {
		t.Fatalf("excluded_in_target samples %q; want users/alice in users", got)
	}
	res = f.run(1, "verify", "--only", "documents", "--exclude-from", list)
	if !strings.Contains(res.Stdout, `excluded in target "users/alice"`) {
		t.Fatalf("the text report does not name the excluded row:\n%s", res.Stdout)
	}
	res = f.run(1, "manifest", "verify", "--manifest", man, "--public-key", pub)
	if !strings.Contains(res.Stdout, "table public.users: rows: 2 in the manifest, 3 now") {
		t.Fatalf("manifest verify after an insert:\n%s", res.Stdout)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestEraseUser excludes a user: absent after migrate, counted, verify
// exit 0; the same user copied by a migrate without the list is named by
// verify with it.
func TestEraseUser(t *testing.T) {
	f := newUsersFixture(t)
	var users []*auth.UserToImport
	// zz-gone is the last user read: no checkpoint may store its cursor.
	for _, uid := range []string{"kept-1", "gone", "kept-2", "kept-3", "zz-gone"} {
		users = append(users, (&auth.UserToImport{}).UID(uid).Email(uid+"@example.test"))
	}
	f.importUsers(users)
	list := auditWrite(t, f.dir, "erase.txt", "user:gone\nuser:never-existed\nuser:zz-gone\n")
	sum := filepath.Join(f.dir, "summary.json")
	base := append([]string{"--only", "users", "--firebase-project", f.project}, usersHashFlags()...)
	f.run(0, append([]string{"migrate", "--exclude-from", list, "--summary", sum}, base...)...)
	auditCheckSummary(t, sum, 5, 2)
	if n := auditCount(t, f.pool, `SELECT count(*) FROM firebase_auth.users WHERE uid IN ('gone', 'zz-gone')`); n != 0 {
		t.Fatal("the excluded user is in the target")
	}
	if n := auditCount(t, f.pool, `SELECT count(*) FROM firebase_auth.users`); n != 3 {
		t.Fatalf("%d users in the target; want 3", n)
	}
	if got := auditStateHolds(t, f.pool, "gone"); len(got) != 0 {
		t.Fatalf("the state schema holds an excluded uid, in %v", got)
	}
	res := f.run(0, append([]string{"verify", "--exclude-from", list, "--format", "json"}, base...)...)
	auditExcluded(t, res.Stdout, "user", 2, 0)

	// The user put back by hand (a copy of another user's row).
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO firebase_auth.users
		SELECT (jsonb_populate_record(NULL::firebase_auth.users, to_jsonb(u) || '{"uid": "gone", "email": null}')).*
		FROM firebase_auth.users u WHERE uid = 'kept-1'`); err != nil {
		t.Fatal(err)
	}
	res = f.run(1, append([]string{"verify", "--exclude-from", list, "--format", "json"}, base...)...)
	reps := auditExcluded(t, res.Stdout, "user", 2, 1)
	if got := auditSampleKeys(reps); len(got) != 1 || !strings.HasSuffix(got[0], " gone") {
		t.Fatalf("excluded_in_target samples %q; want gone", got)
	}
}

// TestEraseFile excludes an object: neither its row nor its bytes reach
// the target; verify proves it and names it once a row of it is inserted.
func TestEraseFile(t *testing.T) {
	src := newFilesSource(t)
	src.seed([]*filesObject{
		{name: "avatars/alice.png", data: []byte("alice's face"), contentType: "image/png"},
		{name: "avatars/bob.png", data: []byte("bob's face"), contentType: "image/png"},
		{name: "docs/readme.txt", data: []byte("hello"), contentType: "text/plain"},
	})
	ft := newFilesTarget(t, src, false)
	list := auditWrite(t, ft.work, "erase.txt", "file:avatars/alice.png\n")
	path := filepath.Join(ft.work, "summary.json")
	res := clitest.Run(t, ft.env, ft.args("--exclude-from", list, "--summary", path)...)
	if res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	auditCheckSummary(t, path, 3, 1)
	rows := ft.rows()
	if _, ok := rows["avatars/alice.png"]; ok || len(rows) != 2 {
		t.Fatalf("target rows %v; want the two not excluded", filesKeys(rows))
	}
	var found []string
	filepath.WalkDir(ft.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); string(b) == "alice's face" {
				found = append(found, p)
			}
		}
		return nil
	})
	if len(found) != 0 {
		t.Fatalf("the excluded object's bytes are in the target: %v", found)
	}
	verify := []string{"verify", "--only", "files", "--storage-bucket", filesBucket, "--objects", ft.url, "--exclude-from", list, "--format", "json"}
	res = clitest.Run(t, ft.env, verify...)
	if res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	auditExcluded(t, res.Stdout, "file", 1, 0)

	if _, err := ft.pool.Exec(context.Background(), `INSERT INTO public.files
		SELECT (jsonb_populate_record(NULL::public.files, to_jsonb(f) || '{"name": "avatars/alice.png", "target_key": "x/alice"}')).*
		FROM public.files f WHERE name = 'avatars/bob.png'`); err != nil {
		t.Fatal(err)
	}
	res = clitest.Run(t, ft.env, verify...)
	if res.Code != 1 {
		t.Fatalf("verify after the insert: exit %d, want 1\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	reps := auditExcluded(t, res.Stdout, "file", 1, 1)
	if got := auditSampleKeys(reps); len(got) != 1 || !strings.HasSuffix(got[0], " avatars/alice.png") {
		t.Fatalf("excluded_in_target samples %q; want avatars/alice.png", got)
	}
}

// TestEraseUserSyncAndCutover: sync and cutover, given the list, never
// write an excluded user that appears after the copy, while the users not
// excluded arrive; cutover finds the target identical.
func TestEraseUserSyncAndCutover(t *testing.T) {
	f := newUsersFixture(t)
	f.importUsers([]*auth.UserToImport{(&auth.UserToImport{}).UID("kept-1"), (&auth.UserToImport{}).UID("gone-1")})
	list := auditWrite(t, f.dir, "erase.txt", "user:gone-1\nuser:gone-2\n")
	base := append([]string{"--only", "users", "--firebase-project", f.project, "--exclude-from", list}, usersHashFlags()...)
	f.run(0, append([]string{"migrate"}, base...)...)

	p := clitest.Start(t, f.env(), append([]string{"sync", "-v", "--poll-interval", "1s"}, base...)...)
	waitLine(t, p, "msg=poll") // following the source
	f.importUsers([]*auth.UserToImport{(&auth.UserToImport{}).UID("gone-2"), (&auth.UserToImport{}).UID("kept-2")})
	// Sync's next poll adds kept-2 alone.
	waitLine(t, p, "added=1")
	if n := auditCount(t, f.pool, `SELECT count(*) FROM firebase_auth.users WHERE uid LIKE 'gone-%'`); n != 0 {
		t.Fatalf("sync wrote %d excluded users\n%s", n, p.Stderr())
	}
	res := clitest.Run(t, f.env(), append([]string{"cutover"}, base...)...)
	stopSync(t, p)
	if res.Code != 0 {
		t.Fatalf("cutover: exit %d, want 0\nstdout:\n%s\nstderr:\n%s\nsync:\n%s", res.Code, res.Stdout, res.Stderr, p.Stderr())
	}
	var got []string
	rows, err := f.pool.Query(context.Background(), `SELECT uid FROM firebase_auth.users ORDER BY uid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var uid string
		if err := rows.Scan(&uid); err != nil {
			t.Fatal(err)
		}
		got = append(got, uid)
	}
	if strings.Join(got, " ") != "kept-1 kept-2" {
		t.Fatalf("users in the target after sync and cutover: %v; want kept-1 kept-2\ncutover:\n%s\nsync:\n%s", got, res.Stdout, p.Stderr())
	}
	if got := auditStateHolds(t, f.pool, "gone-"); len(got) != 0 {
		t.Fatalf("the state schema holds an excluded uid, in %v", got)
	}
	for _, text := range []string{res.Stdout, res.Stderr, p.Stderr()} {
		if strings.Contains(text, "gone-") {
			t.Fatalf("an excluded uid is in the output:\n%s", text)
		}
	}
}
