package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/auth"
	"firebase.google.com/go/v4/auth/hash"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/api/iterator"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// The public firebase/scrypt sample configuration (reference/firebase.md),
// also the one e2e/testdata/auth was made with.
const (
	usersSignerKey = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
	usersSaltSep   = "Bw=="
)

// usersFixture is a fresh Auth emulator project and a fresh target
// database.
type usersFixture struct {
	t       *testing.T
	dir     string
	host    string
	project string
	dsn     string
	pool    *pgxpool.Pool
	client  *auth.Client
}

func newUsersFixture(t *testing.T) *usersFixture {
	t.Helper()
	f := &usersFixture{t: t, dir: t.TempDir(), host: testenv.AuthEmulatorHost(t), project: testenv.FreshProjectID(t), dsn: testenv.NewDatabase(t)}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	f.pool = pool
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: f.project})
	if err != nil {
		t.Fatal(err)
	}
	if f.client, err = app.Auth(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// env is the binary's environment: the emulator and the target, nothing
// else (the hash parameters are given per run).
func (f *usersFixture) env() []string {
	return clitest.Env("FIREBASE_AUTH_EMULATOR_HOST="+f.host, "DATABASE_URL="+f.dsn)
}

// usersHashFlags pass the parameters on the command line, the riskiest
// place for a secret: the tests check they never come back out.
func usersHashFlags() []string {
	return []string{"--hash-signer-key", usersSignerKey, "--hash-salt-separator", usersSaltSep, "--hash-rounds", "8", "--hash-mem-cost", "14"}
}

func usersRedact(args []string) string {
	out := append([]string(nil), args...)
	for i := range out {
		if i > 0 && (out[i-1] == "--hash-signer-key" || out[i-1] == "--hash-salt-separator") {
			out[i] = "(redacted)"
		}
	}
	return strings.Join(out, " ")
}

func (f *usersFixture) run(want int, args ...string) clitest.Result {
	f.t.Helper()
	res := clitest.Run(f.t, f.env(), args...)
	if res.Code != want {
		f.t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", usersRedact(args), res.Code, want, res.Stdout, res.Stderr)
	}
	return res
}

// usersVerifyPassword pipes password into `auth verify-password` (with
// further flags) and returns its exit status.
func usersVerifyPassword(t *testing.T, env []string, uid, password string, flags ...string) int {
	t.Helper()
	cmd := exec.Command(clitest.Binary(t), append([]string{"auth", "verify-password", "--uid", uid}, flags...)...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(password + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.ExitCode() == 2 {
			t.Logf("verify-password %s: %s", uid, out.String())
		}
		return exit.ExitCode()
	}
	t.Fatalf("running verify-password: %v", err)
	return -1
}

// usersCheckPasswords wants every right password to match (exit 0) and a
// wrong one to be refused (exit 1).
func usersCheckPasswords(t *testing.T, env []string, passwords map[string]string) {
	t.Helper()
	for uid, pw := range passwords {
		if code := usersVerifyPassword(t, env, uid, pw); code != 0 {
			t.Errorf("verify-password %s with the right password: exit %d, want 0", uid, code)
		}
		if code := usersVerifyPassword(t, env, uid, pw+"x"); code != 1 {
			t.Errorf("verify-password %s with a wrong password: exit %d, want 1", uid, code)
		}
	}
}

func usersParams(t *testing.T) firebasescrypt.Params {
	t.Helper()
	p, err := firebasescrypt.ParseParams(usersSignerKey, usersSaltSep, 8, 14)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func usersScryptHash() hash.Scrypt {
	key, _ := base64.StdEncoding.DecodeString(usersSignerKey)
	sep, _ := base64.StdEncoding.DecodeString(usersSaltSep)
	return hash.Scrypt{Key: key, SaltSeparator: sep, Rounds: 8, MemoryCost: 14}
}

// importUsers imports users through the Admin SDK, 1,000 per call (the
// emulator keeps imported hash bytes as given).
func (f *usersFixture) importUsers(users []*auth.UserToImport) {
	f.t.Helper()
	ctx := context.Background()
	for len(users) > 0 {
		n := min(len(users), 1000)
		res, err := f.client.ImportUsers(ctx, users[:n], auth.WithHash(usersScryptHash()))
		if err != nil {
			f.t.Fatal(err)
		}
		if res.FailureCount != 0 {
			f.t.Fatalf("ImportUsers: %d failed: %+v", res.FailureCount, res.Errors[0])
		}
		users = users[n:]
	}
}

// createMFAUsers creates n users (uid prefix + number) with a phone second
// factor each, through the Admin SDK's CreateUser.
func (f *usersFixture) createMFAUsers(prefix string, n int) {
	f.t.Helper()
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("%s%03d", prefix, i)
		u := (&auth.UserToCreate{}).UID(uid).Email(uid + "@mfa.test").EmailVerified(true).
			MFASettings(auth.MultiFactorSettings{EnrolledFactors: []*auth.MultiFactorInfo{{
				DisplayName: "phone " + uid, FactorID: "phone",
				Phone: &auth.PhoneMultiFactorInfo{PhoneNumber: fmt.Sprintf("+1555%07d", i)},
			}}})
		if _, err := f.client.CreateUser(context.Background(), u); err != nil {
			f.t.Fatalf("creating %s: %v", uid, err)
		}
	}
}

// sourceUsers lists the project's users through the Admin SDK — the
// oracle the target is compared with, independent of the extractor.
func (f *usersFixture) sourceUsers() map[string]*auth.ExportedUserRecord {
	f.t.Helper()
	out := map[string]*auth.ExportedUserRecord{}
	for it := f.client.Users(context.Background(), ""); ; {
		u, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			f.t.Fatal(err)
		}
		out[u.UID] = u
	}
}

// usersDecodeB64 decodes the emulator's URL-safe or standard base64.
func usersDecodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := firebasescrypt.DecodeBase64(s)
	if err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return b
}

// usersCompareWithSource compares every field of every user, with its
// providers and MFA factors, between the Admin SDK's view of the source and
// the target's tables.
func (f *usersFixture) usersCompareWithSource(src map[string]*auth.ExportedUserRecord) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `SELECT uid, coalesce(tenant_id, ''), coalesce(email, ''), email_verified, coalesce(phone_number, ''),
		coalesce(display_name, ''), coalesce(photo_url, ''), disabled,
		coalesce((extract(epoch from created_at) * 1000)::bigint, 0), coalesce((extract(epoch from last_sign_in_at) * 1000)::bigint, 0),
		coalesce((extract(epoch from last_refresh_at))::bigint * 1000, 0), coalesce((extract(epoch from tokens_valid_after) * 1000)::bigint, 0),
		coalesce(custom_claims::text, ''), password_hash, password_salt, coalesce(password_algorithm, ''), coalesce(hash_config_id, ''),
		(SELECT coalesce(json_agg(json_build_array(provider_id, provider_uid, coalesce(email, ''), coalesce(display_name, ''), coalesce(photo_url, ''))
			ORDER BY provider_id, provider_uid), '[]') FROM firebase_auth.provider_identities p WHERE p.uid = u.uid),
		(SELECT coalesce(json_agg(json_build_array(enrollment_id, factor_id, coalesce(phone_number, ''), coalesce(display_name, ''),
			coalesce(extract(epoch from enrolled_at)::bigint * 1000, 0)) ORDER BY enrollment_id), '[]') FROM firebase_auth.mfa_factors m WHERE m.uid = u.uid)
		FROM firebase_auth.users u`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var (
			uid, tenant, email, phone, name, photo, claims, alg, cfg string
			verified, disabled                                       bool
			created, lastLogin, lastRefresh, validAfter              int64
			hashB, saltB                                             []byte
			providers, mfa                                           []byte
		)
		if err := rows.Scan(&uid, &tenant, &email, &verified, &phone, &name, &photo, &disabled, &created, &lastLogin, &lastRefresh,
			&validAfter, &claims, &hashB, &saltB, &alg, &cfg, &providers, &mfa); err != nil {
			t.Fatal(err)
		}
		seen++
		s, ok := src[uid]
		if !ok {
			t.Errorf("target has user %q the source does not", uid)
			continue
		}
		got := []any{tenant, email, verified, phone, name, photo, disabled, created, lastLogin, lastRefresh, validAfter}
		want := []any{s.TenantID, s.Email, s.EmailVerified, s.PhoneNumber, s.DisplayName, s.PhotoURL, s.Disabled,
			s.UserMetadata.CreationTimestamp, s.UserMetadata.LastLogInTimestamp, s.UserMetadata.LastRefreshTimestamp, s.TokensValidAfterMillis}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("user %s: target %v, source %v", uid, got, want)
		}
		var gotClaims map[string]any
		if claims != "" {
			if err := json.Unmarshal([]byte(claims), &gotClaims); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(gotClaims, s.CustomClaims) {
			t.Errorf("user %s: claims %v, source %v", uid, gotClaims, s.CustomClaims)
		}
		if s.PasswordHash == "" {
			if alg != "" || hashB != nil {
				t.Errorf("user %s has no password in the source but %s in the target", uid, alg)
			}
		} else if alg != "FIREBASE_SCRYPT" || !bytes.Equal(hashB, usersDecodeB64(t, s.PasswordHash)) ||
			!bytes.Equal(saltB, usersDecodeB64(t, s.PasswordSalt)) || cfg == "" {
			t.Errorf("user %s: password %s/%x/%x/%q differs from the source's", uid, alg, hashB, saltB, cfg)
		}
		var wantProv [][]any
		for _, p := range s.ProviderUserInfo {
			wantProv = append(wantProv, []any{p.ProviderID, p.UID, p.Email, p.DisplayName, p.PhotoURL})
		}
		sort.Slice(wantProv, func(i, j int) bool { return fmt.Sprint(wantProv[i]) < fmt.Sprint(wantProv[j]) })
		if !usersSameJSON(t, providers, wantProv) {
			t.Errorf("user %s: providers %s, source %v", uid, providers, wantProv)
		}
		var wantMFA [][]any
		if s.MultiFactor != nil {
			for _, m := range s.MultiFactor.EnrolledFactors {
				wantMFA = append(wantMFA, []any{m.UID, m.FactorID, m.PhoneNumber, m.DisplayName, m.EnrollmentTimestamp})
			}
		}
		if !usersSameJSON(t, mfa, wantMFA) {
			t.Errorf("user %s: MFA %s, source %v", uid, mfa, wantMFA)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(src) {
		t.Errorf("target has %d users, source %d", seen, len(src))
	}
}

// usersSameJSON reports whether the JSON got decodes to the same value as
// want encoded (nil and empty lists being the same).
func usersSameJSON(t *testing.T, got []byte, want any) bool {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(w, &b); err != nil {
		t.Fatal(err)
	}
	if b == nil {
		b = []any{}
	}
	return reflect.DeepEqual(a, b)
}

// usersNoSecrets fails when any encoding of the hash parameters' secrets
// appears in text.
func usersNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(usersSignerKey)
	for _, s := range []string{usersSignerKey, strings.TrimRight(usersSignerKey, "="), base64.RawURLEncoding.EncodeToString(key),
		hex.EncodeToString(key), usersSignerKey[:24], "Bw=="} {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a secret of the hash parameters (%q…)", where, s[:8])
		}
	}
}

// TestUsersEmulatorPasswordsSurviveMigration imports users with scrypt
// hashes of known passwords into the Auth emulator, migrates them, and
// checks each password is accepted and a wrong one refused by
// verify-password; every field matches the source; the secrets appear
// nowhere in the output.
func TestUsersEmulatorPasswordsSurviveMigration(t *testing.T) {
	f := newUsersFixture(t)
	params := usersParams(t)
	passwords := map[string]string{"pw-Alice": "correct horse", "pw-bob": "hunter2", "pw-ünï": "pässwörd ✓"}
	var users []*auth.UserToImport
	for uid, pw := range passwords {
		salt := []byte("salt-of-" + uid)
		h, err := params.Hash([]byte(pw), salt)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, (&auth.UserToImport{}).UID(uid).Email(strings.ToLower(uid)+"@example.test").PasswordHash(h).PasswordSalt(salt))
	}
	users[0].EmailVerified(true).DisplayName("Alice, \"A\"").PhotoURL("https://example.test/a.png").
		CustomClaims(map[string]any{"admin": true, "tier": 2.0, "tags": []any{"a", "b"}}).
		ProviderData([]*auth.UserProvider{{ProviderID: "google.com", UID: "g-123", Email: "a@gmail.test", DisplayName: "A G"}}).
		Metadata(&auth.UserMetadata{CreationTimestamp: 1600000000123, LastLogInTimestamp: 1700000000456})
	users = append(users,
		(&auth.UserToImport{}).UID("oauth-only").Email("o@example.test").Disabled(true).
			ProviderData([]*auth.UserProvider{{ProviderID: "github.com", UID: "gh-9"}, {ProviderID: "apple.com", UID: "ap-9", Email: "o@relay.test"}}),
		(&auth.UserToImport{}).UID("phone-only").PhoneNumber("+15555550123"),
	)
	f.importUsers(users)
	f.createMFAUsers("mfa-user", 1) // ImportUsers cannot set second factors
	total := len(users) + 1

	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(0, append([]string{"migrate", "--only", "users", "--firebase-project", f.project, "--summary", sum, "--verbose"}, usersHashFlags()...)...)
	summaryData, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"stdout": res.Stdout, "stderr": res.Stderr, "the summary JSON": string(summaryData)} {
		usersNoSecrets(t, where, text)
	}
	var runConfig string
	if err := f.pool.QueryRow(context.Background(), `SELECT string_agg(config::text, ' ') FROM baasmigrate.runs`).Scan(&runConfig); err != nil {
		t.Fatal(err)
	}
	usersNoSecrets(t, "baasmigrate.runs.config", runConfig)

	var s summaryJSON
	if err := json.Unmarshal(summaryData, &s); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, s)
	if s.Totals.Read != int64(total) || s.Totals.Rejected != 0 {
		t.Fatalf("summary: read %d, rejected %d; want %d, 0", s.Totals.Read, s.Totals.Rejected, total)
	}
	f.usersCompareWithSource(f.sourceUsers())

	env := f.env()
	usersCheckPasswords(t, env, passwords)
	for _, uid := range []string{"oauth-only", "phone-only", "no-such-user"} {
		if code := usersVerifyPassword(t, env, uid, "anything"); code != 2 {
			t.Errorf("verify-password %s: exit %d, want 2 (no password to check)", uid, code)
		}
	}

	// A second run rewrites nothing, child rows included.
	res = f.run(0, append([]string{"migrate", "--only", "users", "--firebase-project", f.project, "--restart", "--summary", sum}, usersHashFlags()...)...)
	summaryData, _ = os.ReadFile(sum)
	if err := json.Unmarshal(summaryData, &s); err != nil {
		t.Fatal(err)
	}
	if s.Totals.Changed != 0 || s.Totals.Read != int64(total) {
		t.Fatalf("a second run read %d and changed %d rows; want %d and 0", s.Totals.Read, s.Totals.Changed, total)
	}
}

// TestUsersKillAndResume kills migrate -9 several times while it copies
// 3,000 users in small batches and small pages, then lets it finish: the
// target must hold exactly the source, and the run must have read each user
// once (read = loaded + rejected, no batch counted twice).
func TestUsersKillAndResume(t *testing.T) {
	f := newUsersFixture(t)
	n := 3000
	users := demoapp.VariedUsers(7, "k%05d", n)
	r := rand.New(rand.NewPCG(7, 7)) // kill points
	f.importUsers(users)
	f.createMFAUsers("m", 60)
	n += 60

	args := append([]string{"migrate", "--only", "users", "--firebase-project", f.project, "--batch-size", "20", "--auth-page-size", "150"}, usersHashFlags()...)
	committed := testenv.Committed(f.pool)
	kills := 0
	for attempt := 0; attempt < 3; attempt++ {
		target := committed() + 100 + r.Int64N(600)
		if clitest.KillAt(t, f.env(), args, target, committed, time.Minute) {
			kills++
			t.Logf("attempt %d: killed -9 with %d users committed", attempt, committed())
		}
	}
	if kills < 2 {
		t.Fatalf("only %d of 3 attempts were killed mid-run; the test did not test resumption", kills)
	}
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, append(args, "--summary", sum)...)
	s := usersSummary(t, sum)
	if s.Totals.Read != int64(n) || s.Totals.Rejected != 0 || !s.Jobs[0].Resumed {
		t.Fatalf("after %d kills: read %d, rejected %d, resumed %v; want %d, 0, true", kills, s.Totals.Read, s.Totals.Rejected, s.Jobs[0].Resumed, n)
	}
	f.usersCompareWithSource(f.sourceUsers())
}

// usersFixturePasswords reads e2e/testdata/auth/passwords.json.
func usersFixturePasswords(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "auth", "passwords.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Passwords map[string]string `json:"passwords"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	return p.Passwords
}

// TestUsersFromExportFiles migrates each fixture format (written by
// firebase-tools' exporter and by the Auth emulator) and checks passwords,
// the reject of the undecodable hash, shared e-mails and exact values.
func TestUsersFromExportFiles(t *testing.T) {
	passwords := usersFixturePasswords(t)
	for _, c := range []struct {
		file    string
		read    int64
		reject  bool
		fakeFor []string // users whose emulator file holds fake hashes
	}{
		{"auth-export.json", 7, true, nil},
		{"auth-export.csv", 7, true, nil},
		{"emulator-accounts.json", 6, false, []string{"fx-erin", "fx-frank"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			dsn := testenv.NewDatabase(t)
			env := clitest.Env("DATABASE_URL=" + dsn)
			sum := filepath.Join(t.TempDir(), "summary.json")
			path, _ := filepath.Abs(filepath.Join("testdata", "auth", c.file))
			args := append([]string{"migrate", "--only", "users", "--auth-export", path, "--summary", sum}, usersHashFlags()...)
			want := 0
			if c.reject {
				want = 1
			}
			res := clitest.Run(t, env, args...)
			if res.Code != want {
				t.Fatalf("exit %d, want %d\n%s\n%s", res.Code, want, res.Stdout, res.Stderr)
			}
			usersNoSecrets(t, "output", res.Stdout+res.Stderr)
			if out := res.Stdout + res.Stderr; !strings.Contains(out, "share an e-mail address") || !strings.Contains(out, "fx-alice fx-frank") {
				t.Errorf("the shared e-mail address of fx-alice and fx-frank was not reported:\n%s", res.Stderr)
			}
			s := usersSummary(t, sum)
			if s.Totals.Read != c.read || (s.Totals.Rejected == 1) != c.reject {
				t.Fatalf("read %d, rejected %d", s.Totals.Read, s.Totals.Rejected)
			}
			if c.reject && !strings.Contains(res.Stdout, `"fx-bad-hash": the Firebase scrypt password hash is not base64`) {
				t.Errorf("the bad hash's reason is not in the summary:\n%s", res.Stdout)
			}
			usersCheckPasswords(t, env, passwords)

			pool, err := pgxpool.New(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var claims, name, algs string
			var providers int
			err = pool.QueryRow(context.Background(), `SELECT
				(SELECT custom_claims::text FROM firebase_auth.users WHERE uid = 'fx-alice'),
				(SELECT display_name FROM firebase_auth.users WHERE uid = 'fx-bob'),
				(SELECT count(*) FROM firebase_auth.provider_identities WHERE uid = 'fx-bob' AND provider_id IN ('github.com', 'facebook.com')),
				(SELECT string_agg(uid || '=' || coalesce(password_algorithm, '-'), ',' ORDER BY uid) FROM firebase_auth.users)`).
				Scan(&claims, &name, &providers, &algs)
			if err != nil {
				t.Fatal(err)
			}
			if claims != `{"n": 12345678901234567890, "path": "C:\\dir", "role": "admin", "quote": "say \"hi\""}` {
				t.Errorf("claims %s", claims)
			}
			if name != "Bob\nSecond line" || providers != 2 {
				t.Errorf("bob: name %q, %d providers", name, providers)
			}
			wantAlgs := "fx-alice=FIREBASE_SCRYPT,fx-bob=FIREBASE_SCRYPT,fx-carol=-,fx-dave=-,fx-erin=FIREBASE_SCRYPT,fx-frank=FIREBASE_SCRYPT"
			if c.fakeFor != nil {
				wantAlgs = strings.NewReplacer("fx-erin=FIREBASE_SCRYPT", "fx-erin=EMULATOR_FAKE", "fx-frank=FIREBASE_SCRYPT", "fx-frank=EMULATOR_FAKE").Replace(wantAlgs)
			}
			if algs != wantAlgs {
				t.Errorf("password algorithms:\n%s\nwant\n%s", algs, wantAlgs)
			}
		})
	}
}

// TestUsersMalformedFilesNameTheLine checks that a file that stops parsing
// fails the run with the line (and, for JSON, record and byte offset).
func TestUsersMalformedFilesNameTheLine(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ content, want string }{
		"bad.json": {"{\"users\": [\n{\"localId\": \"a\"},\n{\"localId\": \"b\" \"c\"}]}", "reading record 2: line 3, byte offset 46"},
		"bad.csv":  {"a,,false,,,,,,,,,,,,,,,,,,,,,,,,,,\nb,,false,,,\"never closed,\n", "line 2, column 12: the quoted field that starts there is never closed"},
	}
	for name, c := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		// A database each: two files that do not name their project are
		// two sources, and the second would be refused the first's tables.
		env := clitest.Env("DATABASE_URL=" + testenv.NewDatabase(t))
		res := clitest.Run(t, env, "migrate", "--only", "users", "--auth-export", path)
		if res.Code != 2 || !strings.Contains(res.Stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", name, res.Code, res.Stderr, c.want)
		}
	}
}

// TestUsersExportForSupabaseAndKratos exports migrated users and checks the
// hashes in both files verify the users' passwords (the formats' exact
// rules are checked against Supabase's and Kratos' verifiers in
// passwords/firebasescrypt).
func TestUsersExportForSupabaseAndKratos(t *testing.T) {
	passwords := usersFixturePasswords(t)
	dsn := testenv.NewDatabase(t)
	env := clitest.Env("DATABASE_URL=" + dsn)
	path, _ := filepath.Abs(filepath.Join("testdata", "auth", "auth-export.json"))
	if res := clitest.Run(t, env, append([]string{"migrate", "--only", "users", "--auth-export", path, "--allow-rejects"}, usersHashFlags()...)...); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s", res.Code, res.Stderr)
	}
	dir := t.TempDir()
	read := func(format string) (map[string]map[string]any, string) {
		out := filepath.Join(dir, format+".jsonl")
		res := clitest.Run(t, env, "auth", "export", "--format", format, "--out", out)
		if res.Code != 0 {
			t.Fatalf("export %s: exit %d\n%s", format, res.Code, res.Stderr)
		}
		usersNoSecrets(t, "export output", res.Stdout+res.Stderr)
		st, err := os.Stat(out)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("export file mode %v, %v; want 0600", st.Mode(), err)
		}
		data, _ := os.ReadFile(out)
		lines := map[string]map[string]any{}
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			uid, _ := jsonPath(m, "metadata_admin", "firebase_uid").(string)       // Kratos
			if u, ok := jsonPath(m, "app_metadata", "firebase_uid").(string); ok { // Supabase
				uid = u
			}
			lines[uid] = m
		}
		return lines, res.Stderr
	}

	sb, report := read("supabase")
	if _, ok := sb["fx-frank"]; ok || !strings.Contains(report, "already used by an older account") {
		t.Errorf("fx-frank shares fx-alice's address and must be skipped for Supabase with a report:\n%s", report)
	}
	if len(sb) != 5 || sb["fx-dave"]["phone"] != "+15555550123" || sb["fx-bob"]["ban_duration"] != "876000h" {
		t.Errorf("supabase export: %d users; dave %v; bob %v", len(sb), sb["fx-dave"], sb["fx-bob"])
	}
	for uid, pw := range passwords {
		if uid == "fx-frank" {
			continue
		}
		enc, _ := sb[uid]["password_hash"].(string)
		if ok, err := firebasescrypt.VerifyEncoded([]byte(pw), enc); !ok || err != nil || !strings.HasPrefix(enc, "$fbscrypt$v=1,n=14,r=8,p=1,ss=") {
			t.Errorf("supabase %s: %q does not verify (%v)", uid, enc, err)
		}
	}
	kr, kreport := read("kratos")
	// fx-frank's address is fx-alice's: Kratos would answer 409, so it is
	// skipped and reported there too.
	if _, ok := kr["fx-frank"]; ok || len(kr) != 5 || !strings.Contains(kreport, "already used by an older account") || !strings.Contains(kreport, "fx-frank") {
		t.Errorf("kratos export has %d identities, want 5 without fx-frank, reported:\n%s", len(kr), kreport)
	}
	for uid, pw := range passwords {
		if uid == "fx-frank" {
			continue
		}
		creds, _ := kr[uid]["credentials"].(map[string]any)
		enc, _ := jsonPath(creds, "password", "config", "hashed_password").(string)
		if ok, err := firebasescrypt.VerifyEncoded([]byte(pw), enc); !ok || err != nil || !strings.HasPrefix(enc, "$firescrypt$ln=14,r=8,p=1$") {
			t.Errorf("kratos %s: %q does not verify (%v)", uid, enc, err)
		}
	}
	if kr["fx-bob"]["state"] != "inactive" || jsonPath(kr["fx-carol"], "credentials", "oidc", "config", "providers") == nil {
		t.Errorf("kratos: bob %v, carol %v", kr["fx-bob"]["state"], kr["fx-carol"]["credentials"])
	}
}

func jsonPath(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestUsersBadHashParametersQuoteNoSecret gives parameters that cannot be
// used: the run refuses them without echoing them.
func TestUsersBadHashParametersQuoteNoSecret(t *testing.T) {
	env := clitest.Env("DATABASE_URL=" + testenv.NewDatabase(t))
	path, _ := filepath.Abs(filepath.Join("testdata", "auth", "auth-export.json"))
	for _, bad := range [][]string{
		{"--hash-signer-key", usersSignerKey + "!", "--hash-salt-separator", usersSaltSep, "--hash-rounds", "8", "--hash-mem-cost", "14"},
		{"--hash-signer-key", usersSignerKey, "--hash-salt-separator", usersSaltSep + "*", "--hash-rounds", "8", "--hash-mem-cost", "14"},
		{"--hash-signer-key", usersSignerKey, "--hash-salt-separator", usersSaltSep, "--hash-rounds", "9", "--hash-mem-cost", "14"},
		{"--hash-signer-key", usersSignerKey},
	} {
		res := clitest.Run(t, env, append([]string{"migrate", "--only", "users", "--auth-export", path}, bad...)...)
		if res.Code != 2 || !strings.Contains(res.Stderr, "hash parameters") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message about the hash parameters", usersRedact(bad), res.Code, res.Stderr)
		}
		usersNoSecrets(t, "output", res.Stdout+res.Stderr)
	}
}

// usersExportWithRepeats writes an export of n users in format (json, csv
// or accounts.json), record i (1-based) with uid "u%05d" of i, except that
// the records in repeats (record → the earlier record whose uid it
// repeats) hold an earlier uid again, with another e-mail address. JSON
// records start on line i+1, CSV rows on line i.
func usersExportWithRepeats(t *testing.T, dir, format string, n int, repeats map[int]int) string {
	t.Helper()
	var b strings.Builder
	switch format {
	case "json":
		b.WriteString("{\"users\": [\n")
	case "accounts.json":
		b.WriteString(`{"kind":"identitytoolkit#DownloadAccountResponse","users":[` + "\n")
	}
	for i := 1; i <= n; i++ {
		uid, email := fmt.Sprintf("u%05d", i), fmt.Sprintf("u%05d@first.test", i)
		if first, ok := repeats[i]; ok {
			uid, email = fmt.Sprintf("u%05d", first), fmt.Sprintf("u%05d@again.test", first)
		}
		if format == "csv" {
			b.WriteString(uid + "," + email + ",false" + strings.Repeat(",", 26) + "\n")
			continue
		}
		if i > 1 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"localId":%q,"email":%q,"createdAt":"1600000000000"}`, uid, email)
	}
	if format != "csv" {
		b.WriteString("]}")
	}
	path := filepath.Join(dir, "users."+map[string]string{"json": "json", "csv": "csv", "accounts.json": "accounts.json"}[format])
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// usersSummary reads the --summary file at path and checks that its
// counts add up.
func usersSummary(t *testing.T, path string) summaryJSON {
	t.Helper()
	s := readSummary[summaryJSON](t, path)
	checkBalance(t, s)
	return s
}

// usersCheckRejectedRun wants res to be a migrate run that exited 1 for
// its rejects, and its summary file sum to count read records of which
// rejected were rejected, the rest loaded.
func usersCheckRejectedRun(t *testing.T, res clitest.Result, sum string, read, rejected int64) {
	t.Helper()
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1 (rejects)\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	s := usersSummary(t, sum)
	if s.Totals.Read != read || s.Totals.Rejected != rejected || s.Totals.Loaded != read-rejected {
		t.Errorf("read %d, loaded %d, rejected %d; want %d = %d + %d", s.Totals.Read, s.Totals.Loaded, s.Totals.Rejected, read, read-rejected, rejected)
	}
}

// usersCheckRepeats checks the target after a run over a file with
// repeats: every uid once, with the values of its first occurrence; every
// repeat rejected with a reason naming both positions; the summary's
// counts add up and its warning names the repeated uids.
func usersCheckRepeats(t *testing.T, dsn string, res clitest.Result, sum string, n int, repeats map[int]int, lineOf func(int) int) {
	t.Helper()
	usersCheckRejectedRun(t, res, sum, int64(n), int64(len(repeats)))
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var rows, again int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE email LIKE '%@again.test') FROM firebase_auth.users`).Scan(&rows, &again); err != nil {
		t.Fatal(err)
	}
	if rows != n-len(repeats) || again != 0 {
		t.Errorf("%d users in the target, %d of them from a repeat; want %d and 0", rows, again, n-len(repeats))
	}
	out := res.Stdout + res.Stderr
	if !strings.Contains(out, fmt.Sprintf("an export file holds %d uid(s) more than once", len(repeats))) {
		t.Errorf("no warning naming the repeated uids:\n%s", out)
	}
	for rec, first := range repeats {
		uid := fmt.Sprintf("u%05d", first)
		var reason string
		err := pool.QueryRow(ctx, `SELECT reason FROM baasmigrate.rejects WHERE source_key = $1`, uid).Scan(&reason)
		want := fmt.Sprintf("record %d (line %d) repeats record %d (line %d)", rec, lineOf(rec), first, lineOf(first))
		if err != nil || !strings.Contains(reason, want) {
			t.Errorf("reject of %s: %q, %v; want it to say %q", uid, reason, err, want)
		}
		if w := fmt.Sprintf("%q: record %d (line %d) migrated, record %d (line %d) rejected", uid, first, lineOf(first), rec, lineOf(rec)); !strings.Contains(out, w) {
			t.Errorf("the warning does not say %s:\n%s", w, out)
		}
	}
}

// TestUsersSameUIDTwiceInAnExport: a uid an export holds twice — in
// batches committed apart, or in one batch — loads its first occurrence
// and rejects the other naming both, in every file format; a restarted run
// does the same.
func TestUsersSameUIDTwiceInAnExport(t *testing.T) {
	const n = 400
	repeats := map[int]int{300: 3, 305: 302} // another batch; the same batch of 50
	for _, format := range []string{"json", "csv", "accounts.json"} {
		t.Run(format, func(t *testing.T) {
			dsn := testenv.NewDatabase(t)
			env := clitest.Env("DATABASE_URL=" + dsn)
			dir := t.TempDir()
			path := usersExportWithRepeats(t, dir, format, n, repeats)
			lineOf := func(rec int) int { return rec + 1 }
			if format == "csv" {
				lineOf = func(rec int) int { return rec }
			}
			sum := filepath.Join(dir, "summary.json")
			args := []string{"migrate", "--only", "users", "--auth-export", path, "--batch-size", "50", "--summary", sum}
			usersCheckRepeats(t, dsn, clitest.Run(t, env, args...), sum, n, repeats, lineOf)
			usersCheckRepeats(t, dsn, clitest.Run(t, env, append(args, "--restart")...), sum, n, repeats, lineOf)
			// verify reports the repeats as migrate's rejects, not as
			// differences, and matches each row once.
			res := clitest.Run(t, env, "verify", "--only", "users", "--auth-export", path, "--format", "json")
			tr := usersCompareReport(t, res.Stdout)
			if res.Code != 1 || tr.Source != int64(n-len(repeats)) || tr.Matching != int64(n-len(repeats)) || tr.Rejected != int64(len(repeats)) ||
				tr.Mismatched+tr.MissingInTarget+tr.ExtraInTarget != 0 {
				t.Fatalf("verify: exit %d, %+v; want %d matching and %d rejected", res.Code, tr, n-len(repeats), len(repeats))
			}
			for _, line := range tr.SampleLines() {
				if !strings.HasPrefix(line, "rejected ") || !strings.Contains(line, "appears more than once") {
					t.Errorf("verify sample %q, want the repeats rejected", line)
				}
			}
		})
	}
}

// TestUsersSameUIDTwiceSurvivesKill: the first occurrence of a repeated
// uid is committed, the process is killed -9, and the run resumed by new
// processes still rejects the repeat: detection does not rest on memory.
func TestUsersSameUIDTwiceSurvivesKill(t *testing.T) {
	const n = 3000
	repeats := map[int]int{2950: 20, 1600: 1500, 2990: 2980}
	dsn := testenv.NewDatabase(t)
	env := clitest.Env("DATABASE_URL=" + dsn)
	dir := t.TempDir()
	path := usersExportWithRepeats(t, dir, "json", n, repeats)
	sum := filepath.Join(dir, "summary.json")
	args := []string{"migrate", "--only", "users", "--auth-export", path, "--batch-size", "20"}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	committed := testenv.Committed(pool)
	r := rand.New(rand.NewPCG(9, 9))
	kills := 0
	for attempt := 0; attempt < 3; attempt++ {
		target := min(committed()+100+r.Int64N(600), 2500) // well before the end: the run would exit 1
		if clitest.KillAt(t, env, args, target, committed, time.Minute) {
			kills++
		}
	}
	if kills < 2 {
		t.Fatalf("only %d of 3 attempts were killed mid-run", kills)
	}
	res := clitest.Run(t, env, append(args, "--summary", sum)...)
	usersCheckRepeats(t, dsn, res, sum, n, repeats, func(rec int) int { return rec + 1 })
}

// TestUsersNotUTF8OrWithBOM: an export with a byte order mark loads; a
// JSON or accounts.json record with a byte that is not UTF-8 — in the uid
// or another field — is rejected naming its record and line, never loaded
// with U+FFFD in place of the byte, and verify does not call the target
// identical.
func TestUsersNotUTF8OrWithBOM(t *testing.T) {
	for name, src := range map[string]string{
		"users.json": "\xef\xbb\xbf{\"users\": [\n{\"localId\":\"ok1\",\"email\":\"ok1@x.test\"},\n{\"localId\":\"bad\xffuid\"},\n" +
			"{\"localId\":\"carol\",\"displayName\":\"Caro\xc3l\"},\n{\"localId\":\"ok2\"}]}",
		"accounts.json": "\xef\xbb\xbf{\"kind\":\"identitytoolkit#DownloadAccountResponse\",\"users\":[\n{\"localId\":\"ok1\",\"email\":\"ok1@x.test\"},\n" +
			"{\"localId\":\"bad\xffuid\"},\n{\"localId\":\"carol\",\"displayName\":\"Caro\xc3l\"},\n{\"localId\":\"ok2\"}]}",
	} {
		t.Run(name, func(t *testing.T) {
			dsn := testenv.NewDatabase(t)
			env := clitest.Env("DATABASE_URL=" + dsn)
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			sum := filepath.Join(dir, "summary.json")
			res := clitest.Run(t, env, "migrate", "--only", "users", "--auth-export", path, "--summary", sum)
			usersCheckRejectedRun(t, res, sum, 4, 2)
			ctx := context.Background()
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var uids string
			if err := pool.QueryRow(ctx, `SELECT string_agg(uid, ',' ORDER BY uid) FROM firebase_auth.users`).Scan(&uids); err != nil || uids != "ok1,ok2" {
				t.Fatalf("users in the target: %q, %v; want ok1,ok2", uids, err)
			}
			for key, want := range map[string]string{
				"#record 2": `record 2 (line 3): the uid "bad\xffuid" is not valid UTF-8`,
				"carol":     `record 3 (line 4): field "displayName" is not valid UTF-8`,
			} {
				var reason string
				if err := pool.QueryRow(ctx, `SELECT reason FROM baasmigrate.rejects WHERE source_key = $1`, key).Scan(&reason); err != nil || !strings.Contains(reason, want) {
					t.Errorf("reject %s: %q, %v; want %q", key, reason, err, want)
				}
			}
			res = clitest.Run(t, env, "verify", "--only", "users", "--auth-export", path, "--format", "json")
			if tr := usersCompareReport(t, res.Stdout); res.Code != 1 || tr.Identical() || tr.Matching != 2 || tr.Rejected != 2 {
				t.Fatalf("verify: exit %d, %+v; want 2 matching and 2 rejected", res.Code, tr)
			}
		})
	}
}
