package firebaseauth

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// The fuzz targets feed arbitrary bytes to each export file parser. Seeds
// are the package's fixtures (f.Add) and testdata/fuzz/<target>; `go test`
// runs the seeds, `make fuzz` or `go test -fuzz` explores. Properties:
//
//   - the parser never panics; a file it cannot read is an error naming a
//     line;
//   - every record comes back from its user record unchanged, has a
//     position and valid UTF-8 in its key and reason;
//   - a byte that is not UTF-8 never turns into U+FFFD silently: a record
//     holding U+FFFD is rejected unless the input held U+FFFD itself;
//   - reading again after the first record's cursor yields the rest;
//   - re-encoding what was read and parsing it again gives the same users.

func FuzzJSONExport(f *testing.F) {
	f.Add([]byte(authExportJSON))
	f.Add([]byte("\xef\xbb\xbf" + authExportJSON))
	f.Add([]byte(`[{"localId":"ok1"},42,{"email":"x@y"},{"localId":"badtype","emailVerified":"yes"},{"localId":"ok2","createdAt":1600000000000,"customAttributes":{"a":1.50}}]`))
	f.Add([]byte("{\"users\": [\n{\"localId\":\"bad\xffuid\"},\n{\"localId\":\"c\",\"displayName\":\"Caro\xc3l\"}]}"))
	f.Add([]byte("{\"users\": [\n{\"localId\":\"a\"},\n{\"localId\": \"c\" \"x\"}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := fuzzRead(t, "users.json", data)
		fuzzReencodeJSON(t, "users.json", data, recs)
	})
}

func FuzzEmulatorAccounts(f *testing.F) {
	f.Add([]byte(emulatorAccounts))
	f.Add([]byte(`{"kind":"identitytoolkit#DownloadAccountResponse","users":[{"localId":"a","mfaInfo":[{"mfaEnrollmentId":"m","totpInfo":{}},{"mfaEnrollmentId":"e","emailInfo":{"emailAddress":"e@x"}}],"tenantId":""}]}`))
	f.Add([]byte(`{"kind":"identitytoolkit#DownloadAccountResponse","users":[{"localId":"` + "\xed\xa0\x80" + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := fuzzRead(t, "accounts.json", data)
		fuzzReencodeJSON(t, "accounts.json", data, recs)
	})
}

func FuzzCSVExport(f *testing.F) {
	f.Add([]byte(authExportCSV))
	f.Add([]byte("\xef\xbb\xbf" + authExportCSV))
	f.Add([]byte("a,,false,,,,,,,,,,,,,,,,,,,,,,,,,,\nb,,false,,,\"never closed,\n"))
	f.Add([]byte("bad\xffuid,,false" + strings.Repeat(",", 26) + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := fuzzRead(t, "users.csv", data)
		fuzzReencodeCSV(t, recs)
	})
}

// fuzzRead checks the properties every parser shares and returns the
// records read before any error.
func fuzzRead(t *testing.T, name string, data []byte) []record.Record {
	t.Helper()
	e := mustFile(t, writeFile(t, name, string(data)))
	p := planOne(t, e)
	recs, err := readPartition(t, e, p, "")
	if err != nil && !strings.Contains(err.Error(), "line ") {
		t.Fatalf("the error does not name a line: %v", err)
	}
	inputHasFFFD := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
	for i, r := range recs {
		u, uerr := record.UserFrom(r)
		if uerr != nil {
			t.Fatalf("record %d: %v", i+1, uerr)
		}
		if back := u.Record(r.Cursor); back.Key != r.Key || !record.Equal(record.Map(back.Fields), record.Map(r.Fields)) {
			t.Fatalf("record %d does not survive record.User and back:\n%v\n%v", i+1, r.Fields, back.Fields)
		}
		if u.Position == nil || u.Position.Record != int64(i+1) || u.Position.Line < 1 {
			t.Fatalf("record %d: position %+v", i+1, u.Position)
		}
		if !utf8.ValidString(r.Key) || !utf8.ValidString(u.Invalid) {
			t.Fatalf("record %d: key %q or reason %q is not UTF-8", i+1, r.Key, u.Invalid)
		}
		if u.Invalid == "" && !inputHasFFFD {
			if js, _ := r.MarshalJSON(); bytes.ContainsRune(js, utf8.RuneError) || strings.ContainsRune(r.Key, utf8.RuneError) {
				t.Fatalf("record %d holds U+FFFD the input did not: %s", i+1, js)
			}
		}
	}
	if len(recs) > 0 {
		rest, err2 := readPartition(t, e, p, recs[0].Cursor)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("from the start: %v; after record 1: %v", err, err2)
		}
		if len(rest) != len(recs)-1 {
			t.Fatalf("after record 1: %d records, want %d", len(rest), len(recs)-1)
		}
		for j, r := range rest {
			if w := recs[j+1]; r.Key != w.Key || r.Cursor != w.Cursor || !record.Equal(record.Map(r.Fields), record.Map(w.Fields)) {
				t.Fatalf("after record 1, record %d is %q at %s, want %q at %s", j+2, r.Key, r.Cursor, w.Key, w.Cursor)
			}
		}
	}
	return recs
}

// comparable drops what depends on the bytes' layout (the position, the
// wording of a reason, which names lines) from the users read.
func comparableUsers(t *testing.T, recs []record.Record) []record.User {
	t.Helper()
	us := users(t, recs)
	for i := range us {
		us[i].Position = nil
		if us[i].Invalid != "" {
			us[i].Invalid = "invalid"
		}
	}
	return us
}

// fuzzReencodeJSON re-encodes a JSON file that decodes completely (and is
// UTF-8) with encoding/json and wants the same users from both.
func fuzzReencodeJSON(t *testing.T, name string, data []byte, recs []record.Record) {
	t.Helper()
	if !utf8.Valid(data) || loneSurrogateAt(data) >= 0 {
		return // encoding/json would alter the text (the parser rejects it)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil || dec.More() {
		return
	}
	again, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	e := mustFile(t, writeFile(t, name, string(again)))
	recs2, err := readAll(t, e, "")
	if err != nil {
		// The original may fail too, after the records (a non-export).
		if len(recs2) != 0 && len(recs2) != len(recs) {
			t.Fatalf("re-encoded: %v after %d records; the original gave %d", err, len(recs2), len(recs))
		}
		return
	}
	if a, b := comparableUsers(t, recs), comparableUsers(t, recs2); !reflect.DeepEqual(a, b) {
		t.Fatalf("re-encoded, the users differ:\n%+v\n%+v\n(re-encoded: %s)", a, b, again)
	}
}

// fuzzReencodeCSV writes the valid users read back as auth:export CSV
// (authExportCSVOf) and wants them again. Custom claims with a backslash are
// skipped: auth:export leaves \" in them undoubled, so they cannot always
// be written back unambiguously.
func fuzzReencodeCSV(t *testing.T, recs []record.Record) {
	t.Helper()
	var valid []record.User
	for _, u := range users(t, recs) {
		if u.Invalid == "" && (u.CustomClaims == nil || !strings.Contains(*u.CustomClaims, `\`)) {
			valid = append(valid, u)
		}
	}
	if len(valid) == 0 {
		return
	}
	again := authExportCSVOf(valid)
	recs2, err := readAll(t, mustFile(t, writeFile(t, "again.csv", again)), "")
	if err != nil {
		t.Fatalf("re-encoded: %v\n%s", err, again)
	}
	got := comparableUsers(t, recs2)
	for i := range valid {
		valid[i].Position = nil
	}
	if !reflect.DeepEqual(got, valid) {
		t.Fatalf("re-encoded, the users differ:\n%+v\n%+v\n(re-encoded: %q)", valid, got, again)
	}
}
