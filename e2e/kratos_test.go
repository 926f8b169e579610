package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"firebase.google.com/go/v4/auth"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/kratostest"
)

// TestKratosImportSurvivesKill exports Firebase users (from the Auth
// emulator, with Firebase scrypt hashes of known passwords) for Kratos,
// imports them with `auth import-kratos` into the Kratos model in small
// batches, kills the importer with SIGKILL twice — once after Kratos stored
// a batch but before the answer reached it, once while a batch was in
// flight and not yet stored — and runs it to the end. Every exported user
// Kratos accepts must then be in Kratos exactly once (the one it refuses
// reported with its reason), the report must name each one's
// identity, and each imported hash must accept the user's password and
// refuse a wrong one through passwords.Verify, the verifier of
// `auth verify-password`.
func TestKratosImportSurvivesKill(t *testing.T) {
	f := newUsersFixture(t)
	params := usersParams(t)
	passwords := map[string]string{}
	var users []*auth.UserToImport
	for i := range 9 {
		uid := fmt.Sprintf("kr-%02d", i)
		pw := fmt.Sprintf("password %d", i)
		switch i {
		case 3:
			pw = "pässwörd ✓ 🔑"
		case 4:
			pw = "x"
		}
		salt := []byte("salt-" + uid)
		h, err := params.Hash([]byte(pw), salt)
		if err != nil {
			t.Fatal(err)
		}
		u := (&auth.UserToImport{}).UID(uid).Email(fmt.Sprintf("Kr%02d@Example.test", i)).PasswordHash(h).PasswordSalt(salt).
			Metadata(&auth.UserMetadata{CreationTimestamp: 1600000000000 + int64(i)})
		if i == 5 {
			u.ProviderData([]*auth.UserProvider{{ProviderID: "google.com", UID: "g-5"}}).Disabled(true)
		}
		users = append(users, u)
		passwords[uid] = pw
	}
	long := strings.Repeat("L", 128) // Firebase's longest uid
	users = append(users, (&auth.UserToImport{}).UID(long).Email("long@example.test").EmailVerified(true),
		(&auth.UserToImport{}).UID("kr-phone").PhoneNumber("+14155550199"),
		// Firebase takes this fictional number; Kratos' "tel" format
		// (libphonenumber) refuses it: reported, never dropped silently.
		(&auth.UserToImport{}).UID("kr-fictional").PhoneNumber("+15555550123"))
	f.importUsers(users)
	f.run(0, append([]string{"migrate", "--only", "users", "--firebase-project", f.project}, usersHashFlags()...)...)
	export := filepath.Join(f.dir, "kratos.jsonl")
	f.run(0, "auth", "export", "--format", "kratos", "--out", export)

	s := kratostest.New(kratostest.Options{Version: kratostest.V131})
	ts := httptest.NewServer(s)
	defer ts.Close()
	report := filepath.Join(f.dir, "kratos-report.jsonl")
	args := []string{"auth", "import-kratos", "--url", ts.URL, "--in", export, "--report", report, "--batch-size", "2"}

	// Run 1 sends batches 1 and 2; Kratos stores batch 2, and the importer
	// is killed before it reads the answer. Run 2 sends batch 2 again
	// (PATCH 3: all 409, already present) and batch 3 (PATCH 4), killed
	// before Kratos stores it. Run 3 finishes.
	started := make(chan *clitest.Process, 1)
	kill := func() { p := <-started; p.Kill() }
	s.FaultOn(2, kratostest.Fault{Drop: true, Commit: true, Before: kill})
	s.FaultOn(4, kratostest.Fault{Drop: true, Before: kill})
	for run := 1; run <= 2; run++ {
		p := clitest.Start(t, f.env(), args...)
		started <- p
		<-p.Done()
		if res := p.Result(); res.Code != -1 {
			t.Fatalf("run %d was not killed: exit %d\n%s", run, res.Code, res.Stderr)
		}
	}
	res := f.run(1, args...)
	usersNoSecrets(t, "import-kratos output", res.Stdout+res.Stderr)
	if got := s.Patches(); len(got) < 6 || got[2] != 2 {
		t.Errorf("PATCH requests carried %v identities; want batch 2 sent again in full as the third request", got)
	}

	// Every exported user exactly once, as the report says.
	lines := readLines(t, export)
	byUID := map[string][]kratostest.Identity{}
	for _, i := range s.Identities() {
		var m struct {
			FirebaseUID string `json:"firebase_uid"`
		}
		if err := json.Unmarshal(i.MetadataAdmin, &m); err != nil {
			t.Fatal(err)
		}
		byUID[m.FirebaseUID] = append(byUID[m.FirebaseUID], i)
	}
	if len(lines) != 12 || len(byUID) != 11 {
		t.Fatalf("exported %d users, Kratos holds %d distinct uids; want 12 and 11", len(lines), len(byUID))
	}
	results := map[string]int{}
	rep := readLines(t, report)
	last := map[float64]map[string]any{}
	for _, e := range rep {
		if e["kind"] == "identity" {
			last[e["line"].(float64)] = e
		}
	}
	for n, l := range lines {
		uid := jsonPath(l, "metadata_admin", "firebase_uid").(string)
		e := last[float64(n+1)]
		if uid == "kr-fictional" {
			if e["result"] != "refused" || e["status"] != 400.0 || len(byUID[uid]) != 0 {
				t.Errorf("kr-fictional: %v, in Kratos %d times; want refused with 400", e, len(byUID[uid]))
			}
			continue
		}
		if len(byUID[uid]) != 1 {
			t.Errorf("uid %.20s is in Kratos %d times, want once", uid, len(byUID[uid]))
			continue
		}
		results[fmt.Sprint(e["result"])]++
		if e["identity_id"] != byUID[uid][0].ID || e["firebase_uid"] != uid {
			t.Errorf("report line %d: %v, want identity %s of %.20s", n+1, e, byUID[uid][0].ID, uid)
		}
	}
	if results["created"] != 9 || results["present"] != 2 {
		t.Errorf("results %v, want 9 created and the 2 of the batch whose answer was lost present", results)
	}
	if !strings.Contains(res.Stderr, "in all: 9 created, 2 already present, 1 refused, 0 not yet sent") ||
		!strings.Contains(res.Stderr, "uid kr-fictional: 400") {
		t.Errorf("summary:\n%s", res.Stderr)
	}

	// Passwords work at the new server: right ones accepted, wrong refused.
	for uid, pw := range passwords {
		email := strings.ToLower(strings.TrimPrefix(uid, "kr-"))
		id, ok, err := s.VerifyPassword("kr"+email+"@example.test", []byte(pw))
		if err != nil || !ok || id != byUID[uid][0].ID {
			t.Errorf("%s: right password: ok %v, err %v", uid, ok, err)
		}
		if _, ok, err := s.VerifyPassword("KR"+email+"@EXAMPLE.test", []byte(pw+"x")); err != nil || ok {
			t.Errorf("%s: wrong password: ok %v, err %v", uid, ok, err)
		}
	}
	if i := byUID["kr-05"][0]; i.State != "inactive" || i.Credentials["oidc"] == nil || i.Credentials["oidc"].Identifiers[0] != "google:g-5" {
		t.Errorf("kr-05: state %s, oidc %+v", i.State, i.Credentials["oidc"])
	}
	if i := byUID["kr-phone"][0]; len(i.VerifiableAddresses) != 1 || i.VerifiableAddresses[0].Via != "sms" || !*i.VerifiableAddresses[0].Verified {
		t.Errorf("kr-phone: addresses %+v", i.VerifiableAddresses)
	}
	if _, _, err := s.VerifyPassword("long@example.test", []byte("anything")); err == nil {
		t.Error("the user without a password has one in Kratos")
	}
}

// readLines reads a JSON Lines file.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []map[string]any
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}
