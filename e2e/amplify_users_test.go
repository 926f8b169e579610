package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/cognitotest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/argon2id"
	"github.com/baasmigrate/baasmigrate/passwords/capture"
)

// cognitoSchema is where Cognito's users go without --users-schema
// (cognito.UsersSchema); the tests name it nowhere else on command lines.
const cognitoSchema = "cognito_users"

// seedCognito fills a fresh cognito-local pool: alice (CONFIRMED, standard
// and custom attributes, a linked Google identity, groups admins and
// editors), bob (FORCE_CHANGE_PASSWORD, disabled), carol (UNCONFIRMED)
// and n fillers f0000… with passwords of their own (fillerPassword).
func seedCognito(t *testing.T, c *cip.Client, n int) cognitotest.Pool {
	t.Helper()
	ctx := context.Background()
	pool := cognitotest.NewPool(t, c)
	cognitotest.CreateUser(t, c, pool.ID, "alice", "Alice-Passw0rd!", cognitotest.Attrs(
		"email", "alice@example.test", "email_verified", "true", "phone_number", "+15550001111", "name", "Alice Liddell",
		"custom:tier", "gold", "custom:score", "42",
		"identities", `[{"userId":"1090","providerName":"Google","providerType":"Google","issuer":null,"primary":"true","dateCreated":"1700000000000"}]`)...)
	cognitotest.CreateUser(t, c, pool.ID, "bob", "")
	if _, err := c.AdminDisableUser(ctx, &cip.AdminDisableUserInput{UserPoolId: &pool.ID, Username: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: &pool.ClientID, Username: aws.String("carol"), Password: aws.String("Carol-Passw0rd!")}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"admins", "editors"} {
		if _, err := c.CreateGroup(ctx, &cip.CreateGroupInput{UserPoolId: &pool.ID, GroupName: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AdminAddUserToGroup(ctx, &cip.AdminAddUserToGroupInput{UserPoolId: &pool.ID, GroupName: aws.String(g), Username: aws.String("alice")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		cognitotest.CreateUser(t, c, pool.ID, fmt.Sprintf("f%04d", i), fillerPassword(i), cognitotest.Attrs("custom:tier", "bronze")...)
	}
	return pool
}

// cognitoSource seeds a fresh pool of cognito-local with seedCognito and
// starts the paging front on it: the client straight to cognito-local,
// the pool, and the front the runs go through.
func cognitoSource(t *testing.T, n int) (*cip.Client, cognitotest.Pool, *cognitotest.Front) {
	t.Helper()
	endpoint := cognitotest.Endpoint(t)
	direct := cognitotest.Client(endpoint)
	pool := seedCognito(t, direct, n)
	return direct, pool, cognitotest.Start(t, endpoint)
}

func fillerPassword(i int) string { return fmt.Sprintf("Filler-Passw0rd-%d!", i) }

// cognitoEnv is the environment of a run against endpoint: static AWS
// credentials (cognito-local checks none) and no instance metadata.
func cognitoEnv(dsn string) []string {
	return clitest.Env("DATABASE_URL="+dsn, "AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// cognitoRows is every row of the users schema's three tables, as JSON text
// ordered by key, for comparing two migrations.
func cognitoRows(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT coalesce(json_agg(u ORDER BY u.uid), '[]')::text FROM cognito_users.users u) || '|' ||
		(SELECT coalesce(json_agg(p ORDER BY p.uid, p.provider_id, p.provider_uid), '[]')::text FROM cognito_users.provider_identities p) || '|' ||
		(SELECT coalesce(json_agg(m ORDER BY m.uid, m.enrollment_id), '[]')::text FROM cognito_users.mfa_factors m)`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAmplifyUsersKilledAndResumed migrates a cognito-local pool of 303
// users through the paging front (six ListUsers pages of 60 at most) twice:
// once straight through, and once killed with SIGKILL in the middle of the
// second page (checkpoints every 25 users) and resumed by a new process.
// Both targets hold exactly the same rows; the fields of the special users
// are checked; verify finds nothing to report.
func TestAmplifyUsersKilledAndResumed(t *testing.T) {
	ctx := context.Background()
	const fillers = 300
	_, pool, front := cognitoSource(t, fillers)
	args := []string{"migrate", "--source", "amplify", "--only", "users", "--cognito-user-pool-id", pool.ID,
		"--cognito-endpoint", front.URL, "--batch-size", "25"}

	dsnA, poolA := targetDatabase(t)
	res := clitest.Run(t, cognitoEnv(dsnA), args...)
	if res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s", res.Code, res.Stderr)
	}
	pagesA := front.Count("ListUsers")
	if pagesA != 6 {
		t.Errorf("an uninterrupted run made %d ListUsers requests; want 6 pages for %d users", pagesA, fillers+3)
	}

	dsnB, poolB := targetDatabase(t)
	envB := cognitoEnv(dsnB)
	arrived, release := front.Hold(2) // the third page waits
	p := clitest.Start(t, envB, args...)
	select {
	case <-arrived:
	case <-p.Done():
		t.Fatalf("migrate ended before asking for its third page:\n%s", p.Result().Stderr)
	}
	committed := testenv.Committed(poolB)
	for committed() < 100 { // 120 users read; batches of 25 commit 100 of them
		select {
		case <-p.Done():
			t.Fatalf("migrate ended while its third page was held:\n%s", p.Result().Stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.Kill()
	<-p.Done()
	release()
	var loaded int
	if err := poolB.QueryRow(ctx, `SELECT count(*) FROM cognito_users.users`).Scan(&loaded); err != nil || loaded >= fillers {
		t.Fatalf("%d users loaded before the kill (%v)", loaded, err)
	}
	before := front.Count("ListUsers")
	t.Logf("killed with %d users loaded, %d committed", loaded, committed())
	res = clitest.Run(t, envB, args...)
	if res.Code != 0 {
		t.Fatalf("resumed migrate: exit %d\n%s", res.Code, res.Stderr)
	}
	t.Logf("the resumed run listed %d pages", front.Count("ListUsers")-before)
	if got := front.Count("ListUsers") - before; got >= 6 {
		t.Errorf("the resumed run listed %d pages: it started over", got)
	}
	if a, b := cognitoRows(t, poolA), cognitoRows(t, poolB); a != b {
		t.Errorf("the killed and resumed migration differs from the uninterrupted one:\n%.2000s\n%.2000s", a, b)
	}

	var n, none int
	if err := poolB.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE password_algorithm = 'NONE' AND password_hash IS NULL AND password_hash_verbatim IS NULL)
		FROM cognito_users.users`).Scan(&n, &none); err != nil || n != fillers+3 || none != n {
		t.Errorf("%d users, %d with credential NONE (%v); want %d, all", n, none, err, fillers+3)
	}
	var email, phone, name, claims, status, username, extraGroups, provider, bobStatus, carolStatus string
	var verified, bobDisabled bool
	err := poolB.QueryRow(ctx, `SELECT u.email, u.email_verified, u.phone_number, u.display_name, u.custom_claims::text,
			u.extra->>'userStatus', u.extra->>'username', (u.extra->'groups')::text,
			(SELECT provider_id || ':' || provider_uid FROM cognito_users.provider_identities p WHERE p.uid = u.uid),
			(SELECT extra->>'userStatus' FROM cognito_users.users WHERE extra->>'username' = 'bob'),
			(SELECT disabled FROM cognito_users.users WHERE extra->>'username' = 'bob'),
			(SELECT extra->>'userStatus' FROM cognito_users.users WHERE extra->>'username' = 'carol')
		FROM cognito_users.users u WHERE u.extra->>'username' = 'alice'`).
		Scan(&email, &verified, &phone, &name, &claims, &status, &username, &extraGroups, &provider, &bobStatus, &bobDisabled, &carolStatus)
	if err != nil {
		t.Fatal(err)
	}
	if email != "alice@example.test" || !verified || phone != "+15550001111" || name != "Alice Liddell" || status != "CONFIRMED" ||
		username != "alice" || extraGroups != `["admins", "editors"]` || provider != "Google:1090" {
		t.Errorf("alice: %s %v %s %s %s %s %s %s", email, verified, phone, name, status, username, extraGroups, provider)
	}
	var cl map[string]any
	if json.Unmarshal([]byte(claims), &cl) != nil || cl["custom:tier"] != "gold" || cl["custom:score"] != "42" || fmt.Sprint(cl["cognito:groups"]) != "[admins editors]" {
		t.Errorf("alice's custom claims: %s", claims)
	}
	if bobStatus != "FORCE_CHANGE_PASSWORD" || !bobDisabled || carolStatus != "UNCONFIRMED" {
		t.Errorf("bob %s disabled %v, carol %s", bobStatus, bobDisabled, carolStatus)
	}

	v := clitest.Run(t, envB, "verify", "--source", "amplify", "--only", "users", "--cognito-user-pool-id", pool.ID,
		"--cognito-endpoint", front.URL)
	if v.Code != 0 {
		t.Errorf("verify: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
	}
}

// TestAmplifyPasswordCapture: after a migration, a login handler built on
// passwords/capture (as the package's example) captures the password of a
// user whose password Cognito accepts — stored as Argon2id, which `auth
// verify-password` then checks — refuses a wrong password and stores
// nothing for it, checks later sign-ins locally without asking Cognito,
// and `auth capture-status` counts the captures. Captures leave the users
// rows as Cognito has them, so a re-run of migrate and verify are not
// disturbed; --apply then writes them into the rows.
func TestAmplifyPasswordCapture(t *testing.T) {
	ctx := context.Background()
	_, pool, front := cognitoSource(t, 3)
	dsn, db := targetDatabase(t)
	env := cognitoEnv(dsn)
	migrate := []string{"migrate", "--source", "amplify", "--only", "users", "--cognito-user-pool-id", pool.ID,
		"--cognito-endpoint", front.URL}
	if res := clitest.Run(t, env, migrate...); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s", res.Code, res.Stderr)
	}
	plan := clitest.Run(t, env, append([]string{"plan"}, migrate[1:]...)...)
	if plan.Code != 0 || !strings.Contains(strings.Join(strings.Fields(plan.Stdout), " "), "cognito_users.users 6 0 0 6 0") {
		t.Errorf("plan after migrate: exit %d; want 6 users, all unchanged\n%s%s", plan.Code, plan.Stdout, plan.Stderr)
	}
	if res := clitest.Run(t, env, "auth", "capture-status", "--create", "--format", "json"); res.Code != 0 ||
		!strings.Contains(res.Stdout, `"captured":0`) || !strings.Contains(res.Stdout, `"uncaptured":6`) {
		t.Fatalf("capture-status before any sign-in: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	cog := &capture.Cognito{Client: cognitotest.Client(front.URL), ClientID: pool.ClientID,
		Params: argon2id.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	srv := httptest.NewServer(testLoginHandler(db, cog))
	t.Cleanup(srv.Close)
	login := func(user, password string) int {
		t.Helper()
		resp, err := http.PostForm(srv.URL, url.Values{"username": {user}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// stored returns the user's row's algorithm and its captured hash ("":
	// none).
	stored := func(user string) (rowAlg, captured string) {
		t.Helper()
		var h *string
		if err := db.QueryRow(ctx, `SELECT password_algorithm,
				(SELECT password_hash FROM cognito_users.password_captures c WHERE c.uid = u.uid)
			FROM cognito_users.users u WHERE extra->>'username' = $1`, user).Scan(&rowAlg, &h); err != nil {
			t.Fatal(err)
		}
		if h != nil {
			captured = *h
		}
		return rowAlg, captured
	}
	// A wrong password: refused, nothing stored.
	if code := login("f0001", "Wrong-Passw0rd!"); code != http.StatusUnauthorized {
		t.Errorf("a wrong password: HTTP %d", code)
	}
	if alg, captured := stored("f0001"); alg != passwords.None || captured != "" {
		t.Errorf("after a wrong password f0001 holds %s, a capture: %v", alg, captured != "")
	}
	// A temporary password (bob) and an unconfirmed user (carol): refused.
	if code := login("bob", "Temp-Passw0rd!"); code != http.StatusUnauthorized {
		t.Errorf("bob's temporary password: HTTP %d", code)
	}
	if code := login("carol", "Carol-Passw0rd!"); code != http.StatusUnauthorized {
		t.Errorf("carol (unconfirmed): HTTP %d", code)
	}
	for _, u := range []string{"bob", "carol"} {
		if alg, captured := stored(u); alg != passwords.None || captured != "" {
			t.Errorf("%s holds %s, a capture: %v", u, alg, captured != "")
		}
	}

	// The right password: captured.
	asked := front.Count("InitiateAuth")
	if code := login("f0001", fillerPassword(1)); code != http.StatusNoContent {
		t.Fatalf("the right password: HTTP %d", code)
	}
	// Captured beside the row, which keeps Cognito's NONE for migrate,
	// sync, verify and cutover.
	if alg, captured := stored("f0001"); alg != passwords.None || !strings.HasPrefix(captured, "$argon2id$") {
		t.Fatalf("after the right password f0001's row holds %s, its capture is argon2id: %v", alg, strings.HasPrefix(captured, "$argon2id$"))
	}
	if front.Count("InitiateAuth") != asked+1 {
		t.Errorf("capturing asked Cognito %d times", front.Count("InitiateAuth")-asked)
	}
	var uid string
	if err := db.QueryRow(ctx, `SELECT uid FROM cognito_users.users WHERE extra->>'username' = 'f0001'`).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	check := func(password string, want int) {
		t.Helper()
		if code := usersVerifyPassword(t, env, uid, password); code != want {
			t.Errorf("auth verify-password: exit %d, want %d", code, want)
		}
	}
	check(fillerPassword(1), 0)
	check(fillerPassword(2), 1)

	// Later sign-ins are checked locally.
	asked = front.Count("InitiateAuth")
	if code := login("f0001", fillerPassword(1)); code != http.StatusNoContent {
		t.Errorf("signing in again: HTTP %d", code)
	}
	if code := login("f0001", "Wrong-Passw0rd!"); code != http.StatusUnauthorized {
		t.Errorf("a wrong password after the capture: HTTP %d", code)
	}
	if front.Count("InitiateAuth") != asked {
		t.Errorf("sign-ins after the capture asked Cognito")
	}
	st := clitest.Run(t, env, "auth", "capture-status", "--format", "json")
	if st.Code != 0 || !strings.Contains(st.Stdout, `"captured":1`) || !strings.Contains(st.Stdout, `"uncaptured":5`) || !strings.Contains(st.Stdout, `"applied":0`) {
		t.Errorf("capture-status: exit %d\n%s%s", st.Code, st.Stdout, st.Stderr)
	}

	// A re-run of migrate and verify see the users as Cognito has them:
	// nothing to rewrite, nothing different, the capture kept.
	if res := clitest.Run(t, env, append(migrate, "--restart")...); res.Code != 0 {
		t.Fatalf("migrate --restart: exit %d\n%s", res.Code, res.Stderr)
	}
	verifyArgs := append([]string{"verify"}, migrate[1:]...)
	if res := clitest.Run(t, env, verifyArgs...); res.Code != 0 {
		t.Errorf("verify after a capture: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	check(fillerPassword(1), 0)
	// After the cutover: --apply writes the capture into the users row.
	if st = clitest.Run(t, env, "auth", "capture-status", "--apply"); st.Code != 0 ||
		!strings.Contains(st.Stdout, "1 captured credentials written into the users rows now") {
		t.Errorf("capture-status --apply: exit %d\n%s%s", st.Code, st.Stdout, st.Stderr)
	}
	if alg, _ := stored("f0001"); alg != passwords.Argon2id {
		t.Errorf("after --apply f0001's row holds %s", alg)
	}
	check(fillerPassword(1), 0)
	for _, out := range []string{st.Stdout + st.Stderr} {
		if strings.Contains(out, fillerPassword(1)) || strings.Contains(out, "$argon2id$") {
			t.Errorf("capture-status shows a password or hash")
		}
	}
}

// testLoginHandler is the login handler of passwords/capture's example:
// a user still on NONE is checked against Cognito and captured on
// success; others are checked locally.
func testLoginHandler(db *pgxpool.Pool, cog *capture.Cognito) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		username, password := r.PostFormValue("username"), []byte(r.PostFormValue("password"))
		uid, cred, ok, err := capture.Lookup(ctx, db, cognitoSchema, username)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if !ok || cred == nil {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if cred.Algorithm == passwords.None {
			res, err := cog.Capture(ctx, username, password)
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			if !res.Captured {
				http.Error(w, res.Reason, http.StatusUnauthorized)
				return
			}
			if err := capture.Store(ctx, db, cognitoSchema, uid, res.Credential); err != nil && !errors.Is(err, capture.ErrNotNone) {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok, err := passwords.Verify(*cred, password); err != nil || !ok {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// TestAmplifyUsersSyncPolls: sync polls the pool (through the paging
// front) and applies a user added, attributes and a group changed, a user
// disabled and a user deleted at Cognito; a password captured before sync
// starts survives every poll (the users row keeps Cognito's NONE, which
// the polls find equal); then `cutover --only users` exits 0.
func TestAmplifyUsersSyncPolls(t *testing.T) {
	ctx := context.Background()
	direct, pool, front := cognitoSource(t, 70)
	dsn, db := targetDatabase(t)
	env := cognitoEnv(dsn)
	flags := []string{"--source", "amplify", "--only", "users", "--cognito-user-pool-id", pool.ID,
		"--cognito-endpoint", front.URL}
	if res := clitest.Run(t, env, append([]string{"migrate"}, flags...)...); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := clitest.Run(t, env, "auth", "capture-status", "--create"); res.Code != 0 {
		t.Fatalf("capture-status --create: exit %d\n%s", res.Code, res.Stderr)
	}
	cog := &capture.Cognito{Client: direct, ClientID: pool.ClientID, Params: argon2id.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	res, err := cog.Capture(ctx, "f0002", []byte(fillerPassword(2)))
	if err != nil || !res.Captured {
		t.Fatalf("capturing f0002: %+v %v", res, err)
	}
	uid, _, _, err := capture.Lookup(ctx, db, cognitoSchema, "f0002")
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Store(ctx, db, cognitoSchema, uid, res.Credential); err != nil {
		t.Fatal(err)
	}

	p := clitest.Start(t, env, append(append([]string{"sync", "-v"}, flags...), "--poll-interval", "1s")...)
	cognitotest.CreateUser(t, direct, pool.ID, "erin", "Erin-Passw0rd!", cognitotest.Attrs("email", "erin@example.test", "custom:tier", "silver")...)
	for _, step := range []func() error{
		func() error {
			_, err := direct.AdminUpdateUserAttributes(ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: &pool.ID, Username: aws.String("alice"),
				UserAttributes: cognitotest.Attrs("custom:tier", "platinum", "name", "Alice L.")})
			return err
		},
		func() error {
			_, err := direct.AdminRemoveUserFromGroup(ctx, &cip.AdminRemoveUserFromGroupInput{UserPoolId: &pool.ID, Username: aws.String("alice"), GroupName: aws.String("editors")})
			return err
		},
		func() error {
			_, err := direct.AdminDisableUser(ctx, &cip.AdminDisableUserInput{UserPoolId: &pool.ID, Username: aws.String("f0003")})
			return err
		},
		func() error {
			_, err := direct.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: &pool.ID, Username: aws.String("f0004")})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		var s string
		err := db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM cognito_users.users)::text || '|' ||
			coalesce((SELECT custom_claims::text || display_name FROM cognito_users.users WHERE extra->>'username' = 'alice'), '') || '|' ||
			coalesce((SELECT email FROM cognito_users.users WHERE extra->>'username' = 'erin'), '') || '|' ||
			coalesce((SELECT disabled::text FROM cognito_users.users WHERE extra->>'username' = 'f0003'), '') || '|' ||
			(SELECT count(*) FROM cognito_users.users WHERE extra->>'username' = 'f0004')::text`).Scan(&s)
		if err != nil {
			return err.Error()
		}
		return s
	}
	want := `73|{"custom:tier": "platinum", "custom:score": "42", "cognito:groups": ["admins"]}Alice L.|erin@example.test|true|0`
	deadline := time.Now().Add(time.Minute)
	for got := state(); got != want; got = state() {
		if time.Now().After(deadline) {
			t.Fatalf("sync did not converge within a minute: %s; want %s\n%s", got, want, p.Stderr())
		}
		time.Sleep(50 * time.Millisecond) // polling the target for sync's polls
	}
	if cut := clitest.Run(t, env, append([]string{"cutover"}, flags...)...); cut.Code != 0 {
		t.Errorf("cutover: exit %d\n%s%s", cut.Code, cut.Stdout, cut.Stderr)
	}
	stopSync(t, p)
	if code := usersVerifyPassword(t, env, uid, fillerPassword(2)); code != 0 {
		t.Errorf("the password captured before sync: verify-password exit %d", code)
	}
}
