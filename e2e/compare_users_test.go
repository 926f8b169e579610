package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"firebase.google.com/go/v4/auth"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// usersCompareTable is the report of the users table.
const usersCompareTable = "firebase_auth.users"

// usersCompareReport decodes a JSON report and returns its users table.
func usersCompareReport(t *testing.T, stdout string) *diff.TableReport {
	t.Helper()
	tr := tableReports(t, compareDoc(t, stdout), "user")[usersCompareTable]
	if tr == nil {
		t.Fatalf("no %s in the report:\n%s", usersCompareTable, stdout)
	}
	return tr
}

// usersCompareNoLeak fails when text holds a secret of the hash
// parameters, or any encoding of the given hashes and salts.
func usersCompareNoLeak(t *testing.T, where, text string, secrets ...[]byte) {
	t.Helper()
	usersNoSecrets(t, where, text)
	for _, s := range secrets {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s), hex.EncodeToString(s)} {
			if len(enc) >= 12 && strings.Contains(text, enc[:12]) {
				t.Errorf("%s contains a password hash or salt (%.4s…)", where, enc)
			}
		}
	}
}

// TestPlanAndVerifyUsers follows a users migration from the Auth emulator
// with plan and verify (users merged in uid order with the table, read in
// pages of 7): all inserts on an empty target, identical after migrate,
// other or no hash parameters named as differences, and then exactly the
// changes made on either side — one source user renamed, one target hash
// tampered with, one provider row and one user deleted, one user added —
// with the fields named. Plan writes nothing; no secret, hash or salt
// appears in any output.
func TestPlanAndVerifyUsers(t *testing.T) {
	f := newUsersFixture(t)
	ctx := context.Background()
	var imports []*auth.UserToImport
	hashed := map[string][]byte{}
	var leaks [][]byte
	for i := range 30 {
		uid := fmt.Sprintf("cmp-%02d", i)
		u := (&auth.UserToImport{}).UID(uid).Email(uid + "@example.test").
			Metadata(&auth.UserMetadata{CreationTimestamp: 1600000000000 + int64(i)*1000, LastLogInTimestamp: 1700000000000 + int64(i)})
		switch i % 3 {
		case 0:
			h := []byte(fmt.Sprintf("scrypt-hash-bytes-of-%s-0123456789abcdef", uid))
			s := []byte("salt-of-" + uid)
			u.PasswordHash(h).PasswordSalt(s)
			hashed[uid] = h
			leaks = append(leaks, h, s)
		case 1:
			u.ProviderData([]*auth.UserProvider{{ProviderID: "google.com", UID: "g-" + uid, Email: uid + "@gmail.test"}, {ProviderID: "github.com", UID: "gh-" + uid}}).
				CustomClaims(map[string]any{"tier": float64(i), "roles": []any{"a", "b"}})
		case 2:
			u.DisplayName("Ünïcödé " + uid).EmailVerified(true).Disabled(i%4 == 0).PhotoURL("https://example.test/" + uid)
		}
		imports = append(imports, u)
	}
	// uids whose byte order and the API's order (UTF-16) differ
	imports = append(imports, (&auth.UserToImport{}).UID("ｚ-fullwidth").DisplayName("z"), (&auth.UserToImport{}).UID("😀-emoji").DisplayName("e"))
	f.importUsers(imports)
	f.createMFAUsers("cmp-mfa", 2)
	total := int64(len(imports) + 2)

	base := []string{"--only", "users", "--firebase-project", f.project, "--auth-page-size", "7", "--format", "json"}
	withParams := func(cmd string, extra ...string) []string {
		return append(append(append([]string{cmd}, base...), usersHashFlags()...), extra...)
	}
	var outputs []string
	run := func(want int, args ...string) clitest.Result {
		t.Helper()
		res := f.run(want, args...)
		outputs = append(outputs, res.Stdout, res.Stderr)
		return res
	}

	// An empty target: every user is an insert; the DDL creates the
	// tables; nothing is written.
	before := databaseFingerprint(t, f.pool)
	res := run(0, withParams("plan")...)
	if after := databaseFingerprint(t, f.pool); before != after {
		t.Fatalf("plan changed the target:\nbefore %s\nafter  %s", before, after)
	}
	tr := usersCompareReport(t, res.Stdout)
	if tr.Source != total || tr.MissingInTarget != total || tr.Matching+tr.Mismatched+tr.ExtraInTarget+tr.Rejected != 0 {
		t.Fatalf("plan on an empty target: %+v; want %d inserts", tr, total)
	}
	k := compareDoc(t, res.Stdout).Kinds[0]
	var ddl string
	for _, s := range k.DDL {
		ddl += s.SQL + "\n"
	}
	for _, want := range []string{`CREATE TABLE IF NOT EXISTS "firebase_auth"."users"`, `"firebase_auth"."provider_identities"`, `"firebase_auth"."mfa_factors"`, "<signer key>"} {
		if !strings.Contains(ddl, want) {
			t.Errorf("plan's DDL lacks %q:\n%s", want, ddl)
		}
	}
	if k.Estimate == nil || k.Estimate.Records != total {
		t.Errorf("estimate %+v for %d users", k.Estimate, total)
	}

	run(0, append([]string{"migrate", "--only", "users", "--firebase-project", f.project}, usersHashFlags()...)...)
	res = run(0, withParams("verify")...)
	if tr := usersCompareReport(t, res.Stdout); !tr.Identical() || tr.Matching != total {
		t.Fatalf("verify after migrate: %+v", tr)
	}
	before = databaseFingerprint(t, f.pool)
	res = run(0, withParams("plan")...)
	if after := databaseFingerprint(t, f.pool); before != after {
		t.Fatal("plan changed a migrated target")
	}
	if tr := usersCompareReport(t, res.Stdout); tr.Matching != total || tr.Source != total || !tr.Identical() {
		t.Fatalf("plan after migrate: %+v; want everything unchanged", tr)
	}
	if k := compareDoc(t, res.Stdout).Kinds[0]; len(k.DDL) != 0 {
		t.Errorf("plan after migrate would still run DDL: %+v", k.DDL)
	}

	// Other hash parameters, or none, than those the users reference: every
	// user with a hash differs in exactly the fields naming them.
	wantParams := func(res clitest.Result) {
		t.Helper()
		tr := usersCompareReport(t, res.Stdout)
		var want []string
		for uid := range hashed {
			want = append(want, "mismatched "+uid+" hashConfigId,hashParameters")
		}
		slices.Sort(want)
		if got := tr.SampleLines(); !slices.Equal(got, want) || tr.Mismatched != int64(len(hashed)) {
			t.Errorf("verify with other hash parameters: %q\nwant %q", got, want)
		}
	}
	otherRounds := slices.Clone(usersHashFlags())
	otherRounds[slices.Index(otherRounds, "--hash-rounds")+1] = "7"
	wantParams(run(1, append(append([]string{"verify"}, base...), append(otherRounds, "--samples", "50")...)...))
	res = run(1, append(append([]string{"verify"}, base...), "--samples", "50")...)
	wantParams(res)
	if !strings.Contains(res.Stderr, "no password hash parameters") {
		t.Errorf("verify without hash parameters does not say so:\n%s", res.Stderr)
	}

	// One change at the source; four in the target.
	if _, err := f.client.UpdateUser(ctx, "cmp-02", (&auth.UserToUpdate{}).DisplayName("Renamed at the source")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE firebase_auth.users SET password_hash = password_hash || '\x00' WHERE uid = 'cmp-03'`,
		`DELETE FROM firebase_auth.provider_identities WHERE uid = 'cmp-04' AND provider_id = 'google.com'`,
		`DELETE FROM firebase_auth.users WHERE uid = 'cmp-06'`,
		`INSERT INTO firebase_auth.users (uid, email, email_verified, disabled) VALUES ('intruder', 'intruder@example.test', false, false)`,
	} {
		if tag, err := f.pool.Exec(ctx, q); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v (%d rows)", q, err, tag.RowsAffected())
		}
	}
	res = run(1, withParams("verify", "--samples", "10")...)
	tr = usersCompareReport(t, res.Stdout)
	want := []string{
		"extra_in_target intruder",
		"mismatched cmp-02 displayName",
		"mismatched cmp-03 passwordHash",
		"mismatched cmp-04 providerUserInfo",
		"missing_in_target cmp-06",
	}
	if got := tr.SampleLines(); !slices.Equal(got, want) {
		t.Errorf("verify after the changes reports\n %q\nwant\n %q", got, want)
	}
	if tr.Source != total || tr.Mismatched != 3 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 1 || tr.Matching != total-4 || tr.Rejected != 0 {
		t.Errorf("verify after the changes: %+v", tr)
	}

	// The same as text and HTML.
	res = run(1, append([]string{"verify", "--only", "users", "--firebase-project", f.project}, usersHashFlags()...)...)
	for _, want := range []string{"DIFFERENT", `"cmp-03" fields: "passwordHash"`, `"cmp-04" fields: "providerUserInfo"`, `missing in target "cmp-06"`, `extra in target "intruder"`} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("the text report lacks %q:\n%s", want, res.Stdout)
		}
	}
	html := filepath.Join(f.dir, "verify-users.html")
	run(1, append([]string{"verify", "--only", "users", "--firebase-project", f.project, "--format", "html", "--out", html}, usersHashFlags()...)...)
	checkHTMLReport(t, html, usersCompareTable, "cmp-03")
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(page))
	var tampered []byte
	if err := f.pool.QueryRow(ctx, `SELECT password_hash FROM firebase_auth.users WHERE uid = 'cmp-03'`).Scan(&tampered); err != nil {
		t.Fatal(err)
	}
	leaks = append(leaks, tampered)
	usersCompareNoLeak(t, "the output of plan and verify", strings.Join(outputs, "\n"), leaks...)
}

// usersCompareExport writes the fixture auth-export.json to dir without the
// users of drop, with edit applied to the others' JSON objects, and in
// reverse order: not in uid order.
func usersCompareExport(t *testing.T, dir, name string, drop []string, edit func(uid string, u map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "auth", "auth-export.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc struct {
		Users []map[string]any `json:"users"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var kept []map[string]any
	for _, u := range doc.Users {
		uid, _ := u["localId"].(string)
		if slices.Contains(drop, uid) {
			continue
		}
		if edit != nil {
			edit(uid, u)
		}
		kept = append(kept, u)
	}
	slices.Reverse(kept)
	out, err := json.MarshalIndent(map[string]any{"users": kept}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVerifyUsersFromExportFile compares users read from `firebase
// auth:export` files, which are not in uid order, by looking them up:
// identical after migrate; one changed user named with its field, one
// user gone from the file counted as extra in the target; a user the sink
// rejects is reported with the sink's reason.
func TestVerifyUsersFromExportFile(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	env := clitest.Env("DATABASE_URL=" + dsn)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	dir := t.TempDir()
	var outputs []string
	run := func(want int, file string, extra ...string) clitest.Result {
		t.Helper()
		args := append(append([]string{extra[0], "--only", "users", "--auth-export", file}, usersHashFlags()...), extra[1:]...)
		res := clitest.Run(t, env, args...)
		if res.Code != want {
			t.Fatalf("baasmigrate %s: exit %d, want %d\n%s\n%s", usersRedact(args), res.Code, want, res.Stdout, res.Stderr)
		}
		outputs = append(outputs, res.Stdout, res.Stderr)
		return res
	}
	clean := usersCompareExport(t, dir, "users.json", []string{"fx-bad-hash"}, nil)

	before := databaseFingerprint(t, pool)
	tr := usersCompareReport(t, run(0, clean, "plan", "--format", "json").Stdout)
	if after := databaseFingerprint(t, pool); before != after {
		t.Fatal("plan changed the target")
	}
	if tr.Source != 6 || tr.MissingInTarget != 6 || tr.Matching+tr.Mismatched+tr.ExtraInTarget+tr.Rejected != 0 ||
		!slices.Contains(tr.SampleLines(), "missing_in_target fx-frank") {
		t.Fatalf("plan of the file on an empty target: %+v", tr)
	}
	run(0, clean, "migrate")
	if tr := usersCompareReport(t, run(0, clean, "verify", "--format", "json").Stdout); !tr.Identical() || tr.Matching != 6 {
		t.Fatalf("verify after migrate: %+v", tr)
	}

	changed := usersCompareExport(t, dir, "changed.json", []string{"fx-bad-hash", "fx-dave"}, func(uid string, u map[string]any) {
		if uid == "fx-erin" {
			u["displayName"] = "Erin, renamed"
		}
	})
	tr = usersCompareReport(t, run(1, changed, "verify", "--format", "json").Stdout)
	if got, want := tr.SampleLines(), []string{"mismatched fx-erin displayName"}; !slices.Equal(got, want) ||
		tr.Source != 5 || tr.Matching != 4 || tr.Mismatched != 1 || tr.ExtraInTarget != 1 || tr.MissingInTarget != 0 {
		t.Fatalf("verify of the changed file: %q %+v; want %q, 1 extra in target", got, tr, want)
	}

	original, _ := filepath.Abs(filepath.Join("testdata", "auth", "auth-export.json"))
	tr = usersCompareReport(t, run(1, original, "verify", "--format", "json").Stdout)
	if got := tr.SampleLines(); tr.Rejected != 1 || tr.Matching != 6 || len(got) != 1 ||
		!strings.HasPrefix(got[0], "rejected fx-bad-hash: the Firebase scrypt password hash is not base64") {
		t.Fatalf("verify of the file with an undecodable hash: %q %+v", got, tr)
	}
	usersCompareNoLeak(t, "the output of plan and verify", strings.Join(outputs, "\n"))
}
