package kratosimport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/internal/kratosimport"
	"github.com/baasmigrate/baasmigrate/internal/kratostest"
)

var fastRetry = kratosimport.Retry{Attempts: 3, Initial: time.Millisecond, Max: time.Millisecond}

// user is one identity of a test input.
type user struct{ uid, email, password string }

func bodyOf(t *testing.T, u user, extra map[string]any) string {
	t.Helper()
	b := map[string]any{
		"schema_id":      "default",
		"traits":         map[string]any{"email": u.email},
		"state":          "active",
		"metadata_admin": map[string]any{"firebase_uid": u.uid},
		"verifiable_addresses": []map[string]any{
			{"value": u.email, "verified": true, "via": "email", "status": "completed"}},
		"recovery_addresses": []map[string]any{{"value": u.email, "via": "email"}},
	}
	if u.password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b["credentials"] = map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": string(h)}}}
	}
	for k, v := range extra {
		b[k] = v
	}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeInput(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kratos.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func users(n int) []user {
	var out []user
	for i := range n {
		out = append(out, user{uid: fmt.Sprintf("uid-%02d", i), email: fmt.Sprintf("User%02d@Example.test", i), password: fmt.Sprintf("pw-%02d", i)})
	}
	return out
}

func inputOf(t *testing.T, us []user) string {
	var lines []string
	for _, u := range us {
		lines = append(lines, bodyOf(t, u, nil))
	}
	return writeInput(t, lines)
}

func serve(t *testing.T, opts kratostest.Options) (*kratostest.Server, string) {
	t.Helper()
	s := kratostest.New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func readReport(t *testing.T, path string) map[int]kratosimport.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	last := map[int]kratosimport.Entry{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e kratosimport.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("report line %q: %v", sc.Text(), err)
		}
		if e.Kind == "identity" {
			last[e.Line] = e
		}
	}
	return last
}

// checkExactlyOnce asserts the server holds each uid of us exactly once,
// and nothing else, with the identity id the report names.
func checkExactlyOnce(t *testing.T, s *kratostest.Server, us []user, report string) {
	t.Helper()
	count := map[string]int{}
	idOf := map[string]string{}
	for _, i := range s.Identities() {
		var m struct {
			FirebaseUID string `json:"firebase_uid"`
		}
		if err := json.Unmarshal(i.MetadataAdmin, &m); err != nil {
			t.Fatal(err)
		}
		count[m.FirebaseUID]++
		idOf[m.FirebaseUID] = i.ID
	}
	if len(count) != len(us) {
		t.Errorf("the server holds %d distinct uids, want %d", len(count), len(us))
	}
	rep := readReport(t, report)
	for n, u := range us {
		if count[u.uid] != 1 {
			t.Errorf("uid %s is stored %d times, want once", u.uid, count[u.uid])
		}
		e := rep[n+1]
		if (e.Result != kratosimport.Created && e.Result != kratosimport.Present) || e.IdentityID != idOf[u.uid] || e.FirebaseUID != u.uid {
			t.Errorf("report for line %d = %+v, want created or present as %s", n+1, e, idOf[u.uid])
		}
	}
}

func TestImportReportsEachIdentityAndResumesWithoutResending(t *testing.T) {
	s, url := serve(t, kratostest.Options{})
	us := users(7)
	lines := []string{}
	for _, u := range us {
		lines = append(lines, bodyOf(t, u, nil))
	}
	// Line 8: same address as line 1 but for case; line 9: not JSON;
	// line 10: traits the schema refuses.
	lines = append(lines,
		bodyOf(t, user{uid: "dup", email: "user00@example.TEST"}, nil),
		`{"schema_id": "default", "traits": `,
		bodyOf(t, user{uid: "bad-traits", email: "not-an-address"}, nil))
	in := writeInput(t, lines)
	report := in + ".report"
	sum, err := kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, BatchSize: 3, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != (kratosimport.Counts{Created: 7, Refused: 3}) || sum.Lines != 10 || sum.Missing != 0 {
		t.Fatalf("summary %+v", sum)
	}
	rep := readReport(t, report)
	if e := rep[8]; e.Result != kratosimport.Refused || e.Status != 409 || !strings.Contains(e.Reason, "belongs to identity "+rep[1].IdentityID) {
		t.Errorf("line 8 (address of line 1 in another case): %+v", e)
	}
	if e := rep[9]; e.Result != kratosimport.Refused || e.Reason != "the line is not a JSON object" {
		t.Errorf("line 9 (not JSON): %+v", e)
	}
	if e := rep[10]; e.Result != kratosimport.Refused || e.Status != 400 {
		t.Errorf("line 10 (schema): %+v", e)
	}
	checkExactlyOnce(t, s, us, report)
	// v1.3.1 rolled back batch 3 (lines 7, 8, 10) for line 8's conflict;
	// line 7 was sent again.
	if got := s.Patches(); !slices.Equal(got, []int{3, 3, 3, 1}) {
		t.Errorf("requests carried %v identities, want [3 3 3 1] (line 7 sent again after the rollback)", got)
	}
	// A second run sends only the refused lines again, which are refused
	// again, and creates nothing twice.
	sum, err = kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, BatchSize: 3, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run != (kratosimport.Counts{Refused: 3}) || sum.Total != (kratosimport.Counts{Created: 7, Refused: 3}) {
		t.Fatalf("second run: %+v", sum)
	}
	checkExactlyOnce(t, s, us, report)
}

func TestImportResumesAfterAnInterruption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		commit bool
	}{{"answer lost after Kratos stored the batch", true}, {"cut before Kratos stored it", false}} {
		for _, version := range []string{kratostest.V131, kratostest.V254} {
			t.Run(tc.name+"/"+version, func(t *testing.T) {
				s, url := serve(t, kratostest.Options{Version: version})
				us := users(10)
				in := inputOf(t, us)
				report := in + ".report"
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				s.FaultOn(2, kratostest.Fault{Drop: true, Commit: tc.commit, Before: cancel})
				sum, err := kratosimport.Import(ctx, in, report, kratosimport.Options{URL: url, BatchSize: 4, Retry: fastRetry})
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("interrupted run: err %v, want context.Canceled", err)
				}
				if sum.Total.Created != 4 || sum.Missing != 6 {
					t.Fatalf("interrupted run: %+v, want batch 1 journaled only", sum)
				}
				stored := len(s.Identities())
				if want := map[bool]int{true: 8, false: 4}[tc.commit]; stored != want {
					t.Fatalf("the server holds %d identities after the interruption, want %d", stored, want)
				}
				sum, err = kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, BatchSize: 4, Retry: fastRetry})
				if err != nil {
					t.Fatal(err)
				}
				present := map[bool]int{true: 4, false: 0}[tc.commit]
				if sum.Run != (kratosimport.Counts{Created: 6 - present, Present: present}) || sum.Missing != 0 {
					t.Fatalf("resumed run: %+v", sum)
				}
				checkExactlyOnce(t, s, us, report)
			})
		}
	}
}

func TestImportRetriesWhenKratosCannotAnswer(t *testing.T) {
	s, url := serve(t, kratostest.Options{})
	us := users(4)
	in := inputOf(t, us)
	s.FaultOn(1, kratostest.Fault{Status: 503})
	s.FaultOn(2, kratostest.Fault{Status: 429})
	s.FaultOn(3, kratostest.Fault{Drop: true})
	if _, err := kratosimport.Import(context.Background(), in, in+".report", kratosimport.Options{URL: url, Retry: kratosimport.Retry{Attempts: 4, Initial: time.Millisecond, Max: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, s, us, in+".report")
}

func TestImportStopsWithAClearMessageAndResumes(t *testing.T) {
	s, url := serve(t, kratostest.Options{})
	us := users(4)
	in := inputOf(t, us)
	for n := 2; n <= 4; n++ {
		s.FaultOn(n, kratostest.Fault{Status: 503})
	}
	opts := kratosimport.Options{URL: url, BatchSize: 2, Retry: fastRetry}
	sum, err := kratosimport.Import(context.Background(), in, in+".report", opts)
	var msg string
	if err != nil {
		msg = err.Error()
	}
	if !errors.Is(err, kratosimport.ErrUnavailable) || !strings.Contains(msg, "importing lines 3–4: no answer after 3 attempts") || !strings.Contains(msg, "503") {
		t.Fatalf("error %q, want it to say which lines had no answer after 3 attempts", msg)
	}
	if sum.Total.Created != 2 || sum.Missing != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := kratosimport.Import(context.Background(), in, in+".report", opts); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, s, us, in+".report")
}

func TestImportIsolatesWhatKratosRefusesForAWholeBatch(t *testing.T) {
	long := strings.Repeat("x", 65)
	for _, tc := range []struct {
		name, version string
		extra         map[string]any
		status        int
		reason        string
	}{
		{"unknown hash form", kratostest.V131,
			map[string]any{"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": "not-a-hash"}}}},
			400, "does not match any known hash format"},
		{"external_id over 64 characters", kratostest.V254, map[string]any{"external_id": long}, 500, "64-character column"},
		{"invalid state", kratostest.V131, map[string]any{"state": "deleted"}, 400, "identity state is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, url := serve(t, kratostest.Options{Version: tc.version})
			us := users(9)
			var lines []string
			for i, u := range us {
				var extra map[string]any
				if i == 5 {
					extra = tc.extra
				}
				lines = append(lines, bodyOf(t, u, extra))
			}
			in := writeInput(t, lines)
			sum, err := kratosimport.Import(context.Background(), in, in+".report", kratosimport.Options{URL: url, BatchSize: 8, Retry: fastRetry})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Total != (kratosimport.Counts{Created: 8, Refused: 1}) {
				t.Fatalf("summary %+v", sum)
			}
			e := readReport(t, in+".report")[6]
			if e.Result != kratosimport.Refused || e.Status != tc.status || !strings.Contains(e.Reason, tc.reason) || e.FirebaseUID != "uid-05" {
				t.Errorf("line 6: %+v, want refused %d with %q", e, tc.status, tc.reason)
			}
			if len(s.Identities()) != 8 {
				t.Errorf("the server holds %d identities, want 8", len(s.Identities()))
			}
		})
	}
}

func TestImportStopsWhenKratosLacksAField(t *testing.T) {
	s, url := serve(t, kratostest.Options{Version: kratostest.V131})
	in := writeInput(t, []string{bodyOf(t, user{uid: "a", email: "a@example.test"}, map[string]any{"external_id": "a"}),
		bodyOf(t, user{uid: "b", email: "b@example.test"}, map[string]any{"external_id": "b"})})
	_, err := kratosimport.Import(context.Background(), in, in+".report", kratosimport.Options{URL: url, Retry: fastRetry})
	if err == nil || !strings.Contains(err.Error(), "without --kratos-external-id") {
		t.Fatalf("err %v, want the hint to export without --kratos-external-id", err)
	}
	if got := s.Patches(); len(got) != 1 {
		t.Errorf("requests %v, want the run to stop after the first", got)
	}
}

func TestImportReportBelongsToOneInput(t *testing.T) {
	_, url := serve(t, kratostest.Options{})
	in := inputOf(t, users(2))
	report := in + ".report"
	if _, err := kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, Retry: fastRetry}); err != nil {
		t.Fatal(err)
	}
	other := inputOf(t, users(3))
	_, err := kratosimport.Import(context.Background(), other, report, kratosimport.Options{URL: url, Retry: fastRetry})
	if err == nil || !strings.Contains(err.Error(), "another input file") {
		t.Fatalf("err %v, want a refusal to mix inputs", err)
	}
}

func TestImportReportBelongsToOneKratos(t *testing.T) {
	_, url := serve(t, kratostest.Options{})
	_, other := serve(t, kratostest.Options{})
	in := inputOf(t, users(2))
	report := in + ".report"
	if _, err := kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, Retry: fastRetry}); err != nil {
		t.Fatal(err)
	}
	_, err := kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: other, Retry: fastRetry})
	if err == nil || !strings.Contains(err.Error(), "written for the Kratos at "+url+"/admin") {
		t.Fatalf("err %v, want a refusal to resume against another Kratos", err)
	}
}

func TestImportDropsATornReportLine(t *testing.T) {
	s, url := serve(t, kratostest.Options{})
	us := users(3)
	in := inputOf(t, us)
	report := in + ".report"
	if _, err := kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, BatchSize: 2, Retry: fastRetry}); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash in the middle of appending: the last entry is cut.
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.LastIndex(strings.TrimSuffix(string(data), "\n"), "\n") + 10
	if err := os.WriteFile(report, data[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := kratosimport.Import(context.Background(), in, report, kratosimport.Options{URL: url, BatchSize: 2, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run != (kratosimport.Counts{Present: 1}) {
		t.Fatalf("run after the torn line: %+v, want line 3 found present", sum)
	}
	checkExactlyOnce(t, s, us, report)
}

func TestImportSendsTheToken(t *testing.T) {
	s, url := serve(t, kratostest.Options{Token: "secret-token"})
	us := users(2)
	in := inputOf(t, us)
	_, err := kratosimport.Import(context.Background(), in, in+".report", kratosimport.Options{URL: url, Retry: fastRetry})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("without the token: %v", err)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Fatal("the error quotes the token")
	}
	if _, err := kratosimport.Import(context.Background(), in, in+".report", kratosimport.Options{URL: url + "/admin/", Token: "secret-token", Retry: fastRetry}); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, s, us, in+".report")
}

// TestImportKeepsURLCredentialsOutOfErrors points the import at a server
// that is not Kratos (every route 404) through a URL with user information:
// the error that asks whether the URL is right names it without the
// password.
func TestImportKeepsURLCredentialsOutOfErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	in := inputOf(t, users(1))
	url := strings.Replace(srv.URL, "http://", "http://admin:hunter2@", 1)
	_, err := kratosimport.Import(context.Background(), in, in+".report", kratosimport.Options{URL: url, Retry: fastRetry})
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "admin URL") {
		t.Fatalf("err %v, want a 404 asking about the admin URL", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error quotes the URL's password: %v", err)
	}
}
