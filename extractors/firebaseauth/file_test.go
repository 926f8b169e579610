package firebaseauth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// authExportJSON is laid out exactly as `firebase auth:export users.json`
// writes (firebase-tools src/commands/auth-export.ts, accountExporter.ts):
// an opening line, users pretty-printed and separated by ",\n", "]}" with
// no newline.
const authExportJSON = `{"users": [
{
  "localId": "alice",
  "email": "alice@example.com",
  "emailVerified": true,
  "passwordHash": "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
  "salt": "42xEC+ixf3L2lw==",
  "displayName": "Alice, \"Al\"",
  "lastSignedInAt": "1700000001000",
  "createdAt": "1600000000123",
  "disabled": false,
  "customAttributes": "{\"admin\":true,\"tier\":2,\"big\":12345678901234567890}",
  "mfaInfo": [
    {
      "mfaEnrollmentId": "enr1",
      "displayName": "work phone",
      "phoneInfo": "+15555550100",
      "enrolledAt": "2024-01-02T03:04:05.678Z"
    }
  ],
  "providerUserInfo": [
    {
      "providerId": "google.com",
      "rawId": "1234567890",
      "email": "alice@gmail.com",
      "displayName": "Alice G",
      "photoUrl": "https://example.com/a.png"
    }
  ]
},
{
  "localId": "bob-oauth-only",
  "email": "bob@example.com",
  "emailVerified": false,
  "createdAt": "1600000000000",
  "disabled": true,
  "providerUserInfo": [
    {
      "providerId": "github.com",
      "rawId": "42"
    }
  ]
},
{
  "localId": "carol-phone",
  "phoneNumber": "+15555550101",
  "createdAt": "1600000000000"
}]}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll plans ex and reads its only partition from after.
func readAll(t *testing.T, ex extractors.Extractor, after string) ([]record.Record, error) {
	t.Helper()
	return readPartition(t, ex, planOne(t, ex), after)
}

// planOne plans ex and returns its only partition.
func planOne(t *testing.T, ex extractors.Extractor) extractors.Partition {
	t.Helper()
	streams, err := ex.Plan(context.Background(), 4, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || len(streams[0].Partitions) != 1 {
		t.Fatalf("plan = %+v, want one stream with one partition", streams)
	}
	return streams[0].Partitions[0]
}

// readPartition reads the planned partition p from after.
func readPartition(t *testing.T, ex extractors.Extractor, p extractors.Partition, after string) ([]record.Record, error) {
	t.Helper()
	var out []record.Record
	err := ex.Read(context.Background(), p, time.Time{}, after, func(r record.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func mustFile(t *testing.T, path string) *fileExtractor {
	t.Helper()
	e, err := newFile(path, "auto", "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkResumeFromEveryCursor reads the whole file, then again from each
// record's cursor, and wants exactly the records after it each time.
func checkResumeFromEveryCursor(t *testing.T, e extractors.Extractor) []record.Record {
	t.Helper()
	p := planOne(t, e)
	all, err := readPartition(t, e, p, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		rest, err := readPartition(t, e, p, r.Cursor)
		if err != nil {
			t.Fatalf("resuming after record %d (%s): %v", i+1, r.Cursor, err)
		}
		if len(rest) != len(all)-i-1 {
			t.Fatalf("resuming after record %d: %d records, want %d", i+1, len(rest), len(all)-i-1)
		}
		for j := range rest {
			want := all[i+1+j]
			if rest[j].Key != want.Key || rest[j].Cursor != want.Cursor || !record.Equal(record.Map(rest[j].Fields), record.Map(want.Fields)) {
				t.Fatalf("resuming after record %d: record %d is %q at %s, want %q at %s", i+1, j, rest[j].Key, rest[j].Cursor, want.Key, want.Cursor)
			}
		}
	}
	return all
}

func users(t *testing.T, recs []record.Record) []record.User {
	t.Helper()
	out := make([]record.User, len(recs))
	for i, r := range recs {
		u, err := record.UserFrom(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = u
	}
	return out
}

func ptr(s string) *string { return &s }

func TestAuthExportJSON(t *testing.T) {
	e := mustFile(t, writeFile(t, "users.json", authExportJSON))
	recs := checkResumeFromEveryCursor(t, e)
	us := users(t, recs)
	if len(us) != 3 {
		t.Fatalf("%d users, want 3", len(us))
	}
	a := us[0]
	want := record.User{
		UID: "alice", Email: ptr("alice@example.com"), EmailVerified: true, DisplayName: ptr(`Alice, "Al"`),
		CreatedAt: time.UnixMilli(1600000000123).UTC(), LastSignInAt: time.UnixMilli(1700000001000).UTC(),
		CustomClaims: ptr(`{"admin":true,"tier":2,"big":12345678901234567890}`),
		Password: &passwords.Credential{Algorithm: passwords.FirebaseScrypt,
			Hash: "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==", Salt: "42xEC+ixf3L2lw=="},
		MFA: []record.MFAFactor{{EnrollmentID: "enr1", FactorID: "phone", DisplayName: ptr("work phone"), PhoneNumber: ptr("+15555550100"),
			EnrolledAt: time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)}},
		Providers: []record.Provider{{ProviderID: "google.com", RawID: "1234567890", Email: ptr("alice@gmail.com"),
			DisplayName: ptr("Alice G"), PhotoURL: ptr("https://example.com/a.png")}},
	}
	a.Position = nil // TestRecordsCarryTheirPosition
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("alice =\n%+v\nwant\n%+v", a, want)
	}
	if b := us[1]; b.Password != nil || !b.Disabled || len(b.Providers) != 1 || b.Providers[0].ProviderID != "github.com" {
		t.Fatalf("bob = %+v", b)
	}
	if c := us[2]; c.Email != nil || *c.PhoneNumber != "+15555550101" || c.Password != nil {
		t.Fatalf("carol = %+v", c)
	}
}

// emulatorAccounts is the Auth emulator's own export shape (as in the
// bsclibrary fixture): DownloadAccountResponse with "kind" first, the fake
// hash, passwordUpdatedAt as a number, lastRefreshAt as RFC 3339.
const emulatorAccounts = `{"kind":"identitytoolkit#DownloadAccountResponse","users":[{"localId":"yEjjsFDWcKIxWgXSWfb71XlGpYdN","createdAt":"1621181611766","lastLoginAt":"1659929396021","displayName":"","photoUrl":"","passwordHash":"fakeHash:salt=fakeSaltMRmWNZYR2cyN9tqJkg7N:password=bsclibrary","salt":"fakeSaltMRmWNZYR2cyN9tqJkg7N","passwordUpdatedAt":1659929194854,"customAttributes":"{\"permissions\":{},\"librariesJoined\":[\"bsclibrary\"]}","providerUserInfo":[{"providerId":"password","email":"admin@bsclibrary.net","federatedId":"admin@bsclibrary.net","rawId":"admin@bsclibrary.net","displayName":"","photoUrl":""}],"validSince":"1659929194","email":"admin@bsclibrary.net","emailVerified":true,"disabled":false,"lastRefreshAt":"2022-08-08T03:29:56.021Z","screenName":"bsc"},
{"localId":"t1user","tenantId":"tenant-1","createdAt":"1"}],"trailer":{"x":[1,2]}}`

func TestEmulatorAccountsJSON(t *testing.T) {
	e := mustFile(t, writeFile(t, "accounts.json", emulatorAccounts))
	us := users(t, checkResumeFromEveryCursor(t, e))
	u := us[0]
	if u.Password == nil || u.Password.Algorithm != passwords.EmulatorFake || u.Password.Salt != "fakeSaltMRmWNZYR2cyN9tqJkg7N" {
		t.Fatalf("password = %+v, want the emulator's fake hash kept verbatim and marked", u.Password)
	}
	if *u.DisplayName != "" || *u.PhotoURL != "" {
		t.Fatal("empty strings must stay empty, not become absent")
	}
	if !u.PasswordUpdatedAt.Equal(time.UnixMilli(1659929194854)) || !u.LastRefreshAt.Equal(time.Date(2022, 8, 8, 3, 29, 56, 21e6, time.UTC)) ||
		!u.ValidSince.Equal(time.Unix(1659929194, 0)) || !u.LastSignInAt.Equal(time.UnixMilli(1659929396021)) {
		t.Fatalf("times: %v %v %v %v", u.PasswordUpdatedAt, u.LastRefreshAt, u.ValidSince, u.LastSignInAt)
	}
	if p := u.Providers[0]; p.ProviderID != "password" || *p.FederatedID != "admin@bsclibrary.net" {
		t.Fatalf("provider = %+v", p)
	}
	if v, ok := u.Extra["screenName"]; !ok || v.StringValue() != "bsc" {
		t.Fatalf("unknown fields must be kept in Extra, got %v", u.Extra)
	}
	// The tenant user does not belong to this run (no --auth-tenant).
	if !strings.Contains(us[1].Invalid, `tenant "tenant-1"`) {
		t.Fatalf("tenant user: Invalid = %q", us[1].Invalid)
	}
	et, err := newFile(e.path, "auto", "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, et, "")
	if err != nil {
		t.Fatal(err)
	}
	if u := users(t, recs); u[0].Invalid == "" || u[1].Invalid != "" || u[1].TenantID != "tenant-1" {
		t.Fatalf("with --auth-tenant tenant-1: %q / %q", u[0].Invalid, u[1].Invalid)
	}
}

func TestJSONRecordProblemsAreRejectsNotFailures(t *testing.T) {
	src := `[{"localId":"ok1"},42,{"email":"x@y"},{"localId":"badtype","emailVerified":"yes"},
	{"localId":"badprov","providerUserInfo":[{"providerId":"google.com"}]},{"localId":"v2","passwordHash":"abc","version":2},
	{"localId":"ok2","createdAt":1600000000000,"customAttributes":{"a":1.50}}]`
	e := mustFile(t, writeFile(t, "top-array.json", src))
	us := users(t, checkResumeFromEveryCursor(t, e))
	got := map[string]string{}
	for _, u := range us {
		got[u.UID] = u.Invalid
	}
	want := map[string]string{
		"ok1": "", "#record 2": "record 2 is a JSON number", "#record 3": "record 3 has no localId",
		"badtype": `field "emailVerified" is a JSON string`, "badprov": "providerUserInfo[0] has no providerId or rawId",
		"v2": "", "ok2": "",
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || (w == "" && g != "") || !strings.Contains(g, w) {
			t.Errorf("%s: Invalid = %q, want %q", k, g, w)
		}
	}
	if p := us[5].Password; p.Algorithm != passwords.Unknown || p.Hash != "abc" || *p.Version != 2 {
		t.Errorf("version 2 password = %+v, want UNKNOWN kept verbatim", p)
	}
	if c := *us[6].CustomClaims; c != `{"a":1.50}` {
		t.Errorf("claims given as an object = %s, want the digits kept", c)
	}
}

func TestMalformedJSONNamesLineAndOffset(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"syntax error in record 3", "{\"users\": [\n{\"localId\":\"a\"},\n{\"localId\":\"b\"},\n{\"localId\": \"c\" \"x\"},\n{\"localId\":\"d\"}]}",
			"reading record 3: line 4, byte offset 62"},
		{"truncated", "{\"users\": [\n{\"localId\":\"a\"},\n{\"localId\":", "reading record 2: line 3"},
		{"no users", `{"kind":"x","accounts":[]}`, `no "users" array`},
		{"not an export", `"hello"`, "want an object"},
		{"garbage after", `{"users":[]} x`, "reading the end of the file"},
		{"users not an array", `{"users":{}}`, "not an array"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := mustFile(t, writeFile(t, "bad.json", c.src))
			recs, err := readAll(t, e, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if c.name == "syntax error in record 3" && len(recs) != 2 {
				t.Fatalf("read %d records before the error, want 2", len(recs))
			}
		})
	}
}

func TestFileChangedSincePlanning(t *testing.T) {
	path := writeFile(t, "users.json", authExportJSON)
	e := mustFile(t, path)
	streams, err := e.Plan(context.Background(), 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(authExportJSON, "alice", "alicf", -1)), 0o600); err != nil {
		t.Fatal(err)
	}
	err = e.Read(context.Background(), streams[0].Partitions[0], time.Time{}, "", func(record.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "changed since this run was planned") {
		t.Fatalf("err = %v", err)
	}
}

// authExportCSV follows accountExporter.ts's transUserToArray: 52 columns
// and a trailing comma; display names quoted when they contain a comma or
// a quote; custom claims quoted with inner quotes doubled except those
// already escaped with a backslash.
const authExportCSV = `alice,alice@example.com,true,lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==,42xEC+ixf3L2lw==,"Alice, ""Al""",,1234567890,alice@gmail.com,Alice G,https://example.com/a.png,,,,,,,,,,,,,1600000000123,1700000001000,,false,"{""admin"":true,""note"":""say \"hi\"""}",appleid,,,,,,,,,,,,,,,,,,,,,,,,
bob,bob@example.com,false,,,,,,,,,,,,,,,,,42,,,,1600000000000,,,true,,,,,,,,,,,,,,,,,,,,,,,,,,
old-format,old@example.com,false,,,"Two
Lines",,,,,,,,,,,,,,,,,,1508893925000,1508893925000,,,
shifted,a@b.c,false,,,x,y,z,,,,,,,,,,,,,,,,,1,1,,false,,,,,,,,,,,,,,,,,,,,,,,,,,
`

func TestAuthExportCSV(t *testing.T) {
	e := mustFile(t, writeFile(t, "users.csv", authExportCSV))
	us := users(t, checkResumeFromEveryCursor(t, e))
	if len(us) != 4 {
		t.Fatalf("%d users, want 4", len(us))
	}
	a := us[0]
	if a.Invalid != "" || *a.DisplayName != `Alice, "Al"` || *a.CustomClaims != `{"admin":true,"note":"say \"hi\""}` ||
		a.Password.Algorithm != passwords.FirebaseScrypt || a.Password.Salt != "42xEC+ixf3L2lw==" || !a.EmailVerified {
		t.Fatalf("alice = %+v (claims %q)", a, derefStr(a.CustomClaims))
	}
	if len(a.Providers) != 2 || a.Providers[0].ProviderID != "google.com" || a.Providers[1].ProviderID != "apple.com" || a.Providers[1].RawID != "appleid" {
		t.Fatalf("alice's providers = %+v", a.Providers)
	}
	if b := us[1]; b.Invalid != "" || !b.Disabled || b.Password != nil || b.Providers[0].ProviderID != "github.com" {
		t.Fatalf("bob = %+v", b)
	}
	if o := us[2]; o.Invalid != "" || *o.DisplayName != "Two\nLines" || o.CreatedAt.UnixMilli() != 1508893925000 {
		t.Fatalf("old 28-column format = %+v", o)
	}
	if s := us[3]; !strings.Contains(s.Invalid, "line 5 has 54 columns") || s.UID != "shifted" {
		t.Fatalf("shifted row: %+v", s)
	}
}

func TestMalformedCSVNamesTheLine(t *testing.T) {
	src := "a,,false,,,,,,,,,,,,,,,,,,,,,,,,,,\nb,,false,,,\"unterminated,,,\n"
	e, err := newFile(writeFile(t, "bad.csv", src), "auto", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(t, e, "")
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want one naming line 2", err)
	}
	// Resumed after line 1, the error still names line 2 of the file.
	all, _ := readAll(t, e, "")
	if len(all) != 1 {
		t.Fatalf("read %d records before the bad line, want 1", len(all))
	}
	_, err = readAll(t, e, all[0].Cursor)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("resumed: err = %v, want one naming line 2", err)
	}
}

func TestCursorAndOptionErrors(t *testing.T) {
	e := mustFile(t, writeFile(t, "users.json", authExportJSON))
	if _, err := readAll(t, e, "garbage"); err == nil {
		t.Fatal("a garbage cursor was accepted")
	}
	if _, err := newFile(filepath.Join(t.TempDir(), "missing.json"), "auto", ""); err == nil {
		t.Fatal("a missing file was accepted")
	}
	if _, err := newFile(e.path, "xml", ""); err == nil {
		t.Fatal("an unknown format was accepted")
	}
	if f, _ := newFile(writeFile(t, "noext", "  [\n]"), "auto", ""); f.format != formatJSON {
		t.Fatal("a JSON file without extension was not recognised")
	}
	if !errors.Is(context.Canceled, context.Canceled) {
		t.Fatal()
	}
}

// TestInvalidUTF8IsRejectedNotReplaced: encoding/json turns a byte that is
// not UTF-8 into U+FFFD; a user must never be renamed or altered that way.
// The record is rejected with its position, and the uid is shown escaped.
func TestInvalidUTF8IsRejectedNotReplaced(t *testing.T) {
	for _, c := range []struct{ name, src, wantUID, wantName string }{
		{"auth-export.json", "{\"users\": [\n{\"localId\":\"ok\"},\n{\"localId\":\"bad\xffuid\",\n \"email\":\"x@y\"},\n{\"localId\":\"carol\",\n\"displayName\":\"Caro\xc3l\"},\n{\"localId\":\"dave\"}]}",
			"record 2 (line 3): the uid", "record 3 (line 5): field \"displayName\" is not valid UTF-8 (byte 0xc3 at byte offset 108, line 6)"},
		{"accounts.json", `{"kind":"identitytoolkit#DownloadAccountResponse","users":[{"localId":"ok"},` + "\n" +
			`{"localId":"bad` + "\xff" + `uid","email":"x@y"},` + "\n" + `{"localId":"carol",` + "\n" + `"displayName":"Caro` + "\xc3" + `l"},{"localId":"dave"}]}`,
			"record 2 (line 2): the uid", "record 3 (line 3): field \"displayName\" is not valid UTF-8 (byte 0xc3 at byte offset 153, line 4)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := checkResumeFromEveryCursor(t, mustFile(t, writeFile(t, c.name, c.src)))
			us := users(t, recs)
			if len(us) != 4 {
				t.Fatalf("%d users, want 4", len(us))
			}
			for _, r := range recs {
				data, _ := r.MarshalJSON()
				if strings.ContainsRune(r.Key, utf8.RuneError) || strings.ContainsRune(string(data), utf8.RuneError) {
					t.Errorf("record %q holds U+FFFD: %s", r.Key, data)
				}
			}
			if us[0].Invalid != "" || us[3].Invalid != "" || us[3].UID != "dave" {
				t.Fatalf("valid users around the bad ones: %+v / %+v", us[0], us[3])
			}
			if u := us[1]; u.UID != "#record 2" || !strings.Contains(u.Invalid, c.wantUID) ||
				!strings.Contains(u.Invalid, `"bad\xffuid"`) || !strings.Contains(u.Invalid, "not valid UTF-8") {
				t.Errorf("bad uid: %q / %q", u.UID, u.Invalid)
			}
			if u := us[2]; u.UID != "carol" || !strings.Contains(u.Invalid, c.wantName) {
				t.Errorf("bad display name: %q / %q", u.UID, u.Invalid)
			}
		})
	}
	t.Run("csv", func(t *testing.T) {
		row := func(uid, name string) string {
			return uid + ",,false,,," + name + strings.Repeat(",", 22) + "\n"
		}
		src := row("ok", "") + row("bad\xffuid", "") + row("carol", "Caro\xc3l") + row("dave", "")
		us := users(t, checkResumeFromEveryCursor(t, mustFile(t, writeFile(t, "users.csv", src))))
		if len(us) != 4 || us[0].Invalid != "" || us[3].Invalid != "" {
			t.Fatalf("users: %+v", us)
		}
		if u := us[1]; u.UID != "#line 2" || !strings.Contains(u.Invalid, `line 2`) || !strings.Contains(u.Invalid, `"bad\xffuid"`) {
			t.Errorf("bad uid: %q / %q", u.UID, u.Invalid)
		}
		if u := us[2]; u.UID != "carol" || !strings.Contains(u.Invalid, `line 3: field 6`) || !strings.Contains(u.Invalid, "not valid UTF-8") {
			t.Errorf("bad display name: %q / %q", u.UID, u.Invalid)
		}
	})
}

// TestLeadingBOMIsAccepted: editors and Windows tools put a UTF-8 byte
// order mark before the text; it is not part of the data.
func TestLeadingBOMIsAccepted(t *testing.T) {
	for name, src := range map[string]string{
		"users.json":    authExportJSON,
		"accounts.json": emulatorAccounts,
		"users.csv":     authExportCSV,
		"noext":         authExportJSON,
	} {
		t.Run(name, func(t *testing.T) {
			plain := users(t, checkResumeFromEveryCursor(t, mustFile(t, writeFile(t, name, src))))
			bom := users(t, checkResumeFromEveryCursor(t, mustFile(t, writeFile(t, name, "\xef\xbb\xbf"+src))))
			if len(bom) != len(plain) {
				t.Fatalf("with a BOM: %d users, without: %d", len(bom), len(plain))
			}
			for i := range bom {
				bom[i].Position, plain[i].Position = nil, nil
				if !reflect.DeepEqual(bom[i], plain[i]) {
					t.Errorf("user %d with a BOM:\n%+v\nwithout:\n%+v", i, bom[i], plain[i])
				}
			}
		})
	}
}

// TestRecordsCarryTheirPosition: every user read from a file says where it
// was (record number and first line), the same when the read resumes.
func TestRecordsCarryTheirPosition(t *testing.T) {
	for _, c := range []struct {
		name, src string
		lines     []int64
	}{
		{"users.json", authExportJSON, []int64{2, 31, 44}},
		{"users.csv", authExportCSV, []int64{1, 2, 3, 5}},
		{"top-array.json", "[{\"localId\":\"a\"},{\"localId\":\"b\"}\n,\n\n {\"localId\":\"c\"}]", []int64{1, 1, 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := mustFile(t, writeFile(t, c.name, c.src))
			us := users(t, checkResumeFromEveryCursor(t, e))
			if len(us) != len(c.lines) {
				t.Fatalf("%d users, want %d", len(us), len(c.lines))
			}
			for i, u := range us {
				p := u.Position
				if p == nil || p.File != e.path || p.Read == "" || p.Record != int64(i+1) || p.Line != c.lines[i] {
					t.Errorf("user %d: position %+v, want record %d at line %d of %s", i, p, i+1, c.lines[i], e.path)
				}
				if p != nil && p.Read != us[0].Position.Read {
					t.Errorf("user %d: read %q, want the run's %q", i, p.Read, us[0].Position.Read)
				}
			}
		})
	}
}

// TestLoneSurrogateIsRejectedNotReplaced: JSON can escape half of a UTF-16
// surrogate pair (JavaScript strings, and so Firebase uids, can hold one);
// encoding/json decodes it to U+FFFD. Found by FuzzJSONExport.
func TestLoneSurrogateIsRejectedNotReplaced(t *testing.T) {
	src := "{\"users\": [\n{\"localId\":\"a\\ud800b\"},\n{\"localId\":\"ok\",\"displayName\":\"\\ud83d\\ude00 \\\\ud800\"},\n" +
		"{\"localId\":\"c\",\n\"email\":\"\\udc00\"}]}"
	us := users(t, checkResumeFromEveryCursor(t, mustFile(t, writeFile(t, "users.json", src))))
	if len(us) != 3 {
		t.Fatalf("%d users, want 3", len(us))
	}
	if u := us[0]; u.UID != "#record 1" || !strings.Contains(u.Invalid, `record 1 (line 2): the uid "a\\ud800b" holds \ud800, half of a UTF-16 surrogate pair`) {
		t.Errorf("uid with a lone surrogate: %q / %q", u.UID, u.Invalid)
	}
	if u := us[1]; u.Invalid != "" || *u.DisplayName != "\U0001F600 \\ud800" {
		t.Errorf("a pair and an escaped backslash are not surrogates: %+v", u)
	}
	if u := us[2]; u.UID != "c" || !strings.Contains(u.Invalid, `record 3 (line 4): field "email" holds \udc00`) || !strings.Contains(u.Invalid, "line 5)") {
		t.Errorf("email with a lone surrogate: %q / %q", u.UID, u.Invalid)
	}
}
