package firebaseauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	firebasesdk "firebase.google.com/go/v4"
	"google.golang.org/api/iterator"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/faultnet"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// emulatorPost calls the Auth emulator's REST API as an admin.
func emulatorPost(t *testing.T, host, path string, body any) []byte {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+host+"/identitytoolkit.googleapis.com"+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer owner")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"message"`)) {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return out
}

// seedEmulator creates n users (plus a few special ones) through
// accounts:batchCreate, which keeps hashes and fields as given.
func seedEmulator(t *testing.T, host, project, tenant string, n int) []string {
	t.Helper()
	prefix := "/v1/projects/" + project
	if tenant != "" {
		prefix += "/tenants/" + tenant
	}
	var users []map[string]any
	var uids []string
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("u%03d", i)
		u := map[string]any{"localId": uid, "email": uid + "@example.com", "createdAt": fmt.Sprint(1600000000000 + i)}
		switch i % 4 {
		case 0:
			u["passwordHash"] = "lSrfV15cpx95_sZS2W9c9Kp6i_LVgQNDNC_qzrCnh1SAyZvqmZqAjTdn3aoItz-VHjoZilo78198JAdRuid5lQ"
			u["salt"] = "42xEC-ixf3L2lw"
		case 1:
			u["providerUserInfo"] = []map[string]any{{"providerId": "google.com", "rawId": "g" + uid, "email": uid + "@gmail.com"}}
			u["customAttributes"] = `{"role":"editor","n":1.0}`
		case 2:
			u["emailVerified"] = true
			u["mfaInfo"] = []map[string]any{{"mfaEnrollmentId": "m" + uid, "phoneInfo": "+1555555" + fmt.Sprintf("%04d", i), "displayName": "phone", "enrolledAt": "2024-01-02T03:04:05.678Z"}}
		case 3:
			u["disabled"] = true
			u["displayName"] = "Ünïcödé " + uid
		}
		if tenant != "" {
			u["tenantId"] = tenant
		}
		users = append(users, u)
		uids = append(uids, uid)
	}
	emulatorPost(t, host, prefix+"/accounts:batchCreate", map[string]any{"users": users})
	sort.Strings(uids)
	return uids
}

func newEmulatorExtractor(t *testing.T, host, project, tenant string, pageSize int) *apiExtractor {
	t.Helper()
	e, err := newAPI(context.Background(), plugin.Config{
		"firebase-project": project, EmulatorOption.Name: host, PageSizeOption.Name: fmt.Sprint(pageSize),
	}, tenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestAPIListsResumesMidPageAndCounts(t *testing.T) {
	host := testenv.AuthEmulatorHost(t)
	project := testenv.FreshProjectID(t)
	uids := seedEmulator(t, host, project, "", 11)
	e := newEmulatorExtractor(t, host, project, "", 3)
	if e.Source() != "firebaseauth:projects/"+project {
		t.Fatalf("Source = %q", e.Source())
	}
	all := checkResumeFromEveryCursor(t, e)
	var got []string
	for _, r := range all {
		got = append(got, r.Key)
	}
	if strings.Join(got, ",") != strings.Join(uids, ",") {
		t.Fatalf("listed %v, want %v", got, uids)
	}
	n, err := e.Count(context.Background(), extractors.Stream{})
	if err != nil || n != int64(len(uids)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(uids))
	}

	us := users(t, all)
	u0, u1, u2, u3 := us[0], us[1], us[2], us[3]
	if u0.Password == nil || u0.Password.Algorithm != passwords.FirebaseScrypt || !strings.Contains(u0.Password.Hash, "_") {
		t.Fatalf("u000 password = %+v, want the emulator's URL-safe text kept", u0.Password)
	}
	if u1.Password != nil || *u1.CustomClaims != `{"role":"editor","n":1.0}` || u1.Providers[0].RawID != "gu001" {
		t.Fatalf("u001 = %+v", u1)
	}
	if m := u2.MFA; len(m) != 1 || m[0].FactorID != "phone" || *m[0].PhoneNumber != "+15555550002" ||
		!m[0].EnrolledAt.Equal(time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)) {
		t.Fatalf("u002 MFA = %+v", u2.MFA)
	}
	if !u3.Disabled || *u3.DisplayName != "Ünïcödé u003" || !u3.CreatedAt.Equal(time.UnixMilli(1600000000003)) {
		t.Fatalf("u003 = %+v", u3)
	}

	// The Admin SDK lists the same users (the oracle for the listing).
	ctx := context.Background()
	t.Setenv("FIREBASE_AUTH_EMULATOR_HOST", host)
	app, err := firebasesdk.NewApp(ctx, &firebasesdk.Config{ProjectID: project})
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sdk []string
	for it := client.Users(ctx, ""); ; {
		u, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sdk = append(sdk, u.UID)
	}
	if strings.Join(sdk, ",") != strings.Join(got, ",") {
		t.Fatalf("Admin SDK lists %v, we list %v", sdk, got)
	}

	// Resuming after a user deleted since its checkpoint continues with the
	// next uid.
	emulatorPost(t, host, "/v1/projects/"+project+"/accounts:delete", map[string]any{"localId": "u004"})
	rest, err := readAll(t, e, all[4].Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != len(all)-5 || rest[0].Key != "u005" {
		t.Fatalf("resumed after a deleted user: %d records starting %q", len(rest), rest[0].Key)
	}
}

func TestAPITenant(t *testing.T) {
	host := testenv.AuthEmulatorHost(t)
	project := testenv.FreshProjectID(t)
	var tenant struct {
		TenantID string `json:"tenantId"`
	}
	out := emulatorPost(t, host, "/v2/projects/"+project+"/tenants", map[string]any{"displayName": "t1"})
	if err := json.Unmarshal(out, &tenant); err != nil || tenant.TenantID == "" {
		t.Fatalf("creating a tenant: %s", out)
	}
	seedEmulator(t, host, project, tenant.TenantID, 4)
	seedEmulator(t, host, project, "", 2)
	e := newEmulatorExtractor(t, host, project, tenant.TenantID, 1000)
	all, err := readAll(t, e, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 || !strings.HasSuffix(e.Source(), "/tenants/"+tenant.TenantID) {
		t.Fatalf("tenant listing: %d users from %s", len(all), e.Source())
	}
	for _, u := range users(t, all) {
		if u.TenantID != tenant.TenantID {
			t.Fatalf("user %s has tenant %q", u.UID, u.TenantID)
		}
	}
}

func TestAPIErrorsAreReportedNotHidden(t *testing.T) {
	if _, err := newAPI(context.Background(), plugin.Config{}, ""); err == nil || !strings.Contains(err.Error(), "--firebase-project") {
		t.Fatalf("no project: %v", err)
	}
	host := testenv.AuthEmulatorHost(t)
	e := newEmulatorExtractor(t, host, testenv.FreshProjectID(t), "", 10)
	if _, err := readAll(t, e, "{not json"); err == nil {
		t.Fatal("a garbage cursor was accepted")
	}
	if _, err := resumeIndex([]record.User{{UID: "b"}, {UID: "a"}}, "zz"); err == nil {
		t.Fatal("a lost resume position in an unsorted page was accepted")
	}
}

// TestAPIPageStallIsCutAndResumed reads users through a network path that
// freezes after the first user: the next page request gets no answer, is
// cut after --source-timeout, logged as a retry, and — once the path
// thaws — fetched again from its page token, so every user is read once.
func TestAPIPageStallIsCutAndResumed(t *testing.T) {
	host := testenv.AuthEmulatorHost(t)
	project := testenv.FreshProjectID(t)
	uids := seedEmulator(t, host, project, "", 9)
	proxy := faultnet.NewProxy(t, host)
	e, err := newAPI(context.Background(), plugin.Config{
		"firebase-project": project, EmulatorOption.Name: proxy.Addr(), PageSizeOption.Name: "3",
		"source-timeout": "1s", "retry-backoff": "1ms",
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	var retried []string
	ctx := retry.WithLogger(context.Background(), faultnet.OnLog("retrying", func(a map[string]string) {
		retried = append(retried, a["err"])
		proxy.Thaw()
	}))
	var got []string
	err = e.Read(ctx, extractors.Partition{}, time.Time{}, "", func(r record.Record) error {
		got = append(got, r.Key)
		proxy.Freeze() // the next request waits
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if strings.Join(got, ",") != strings.Join(uids, ",") {
		t.Fatalf("read %v, want %v", got, uids)
	}
	if len(retried) == 0 || !strings.Contains(retried[0], "no answer for 1s (--source-timeout)") {
		t.Fatalf("retries %q: want the stalled page cut and retried", retried)
	}
}
