package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/type/latlng"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/transformers/pii"
)

// piiMapping uses every field transform on the people collection.
const piiMapping = `version: 1
schema: public
tables:
  - collection: people
    table: people
    id_column: id
    columns:
      - {field: name, column: name, type: text}
      - {field: phone, column: phone, type: text, transform: mask, mask: {keep_last: 4}}
      - {field: email, column: email, type: text, transform: mask, mask: {email: true}}
      - {field: login, column: login_hash, type: text, transform: hash, hash: {key_env: PII_E2E_HASH_KEY}}
      - {field: ids.ssn, column: ssn, type: text, transform: tokenize, tokenize: {key_env: PII_E2E_TOKEN_KEY}}
      - {field: born, column: born, type: timestamptz, transform: truncate}
      - {field: home, column: home, type: point, transform: truncate, truncate: {grid: 0.1}}
      - {field: salary, column: salary, type: bigint, transform: truncate, truncate: {digits: -3}}
      - {field: diary, transform: drop}
      - {field: ids.passport, transform: drop}
`

// piiPerson is a document whose personal data is told apart by n; clear
// lists the strings that must appear nowhere but the vault.
func piiPerson(n int) (demoapp.Doc, []string) {
	phone := fmt.Sprintf("+3361234%04d", 1000+n)
	email := fmt.Sprintf("clear.mail.%d@example.com", n)
	login := fmt.Sprintf("clear-login-%d", n)
	ssn := fmt.Sprintf("987-65-%04d", 4000+n)
	diary := fmt.Sprintf("clear diary entry %d", n)
	passport := fmt.Sprintf("PASSPORT%06d", n)
	born := time.Date(1980+n, 5, 17, 13, 47, 21, 0, time.UTC)
	// Clear numbers long enough not to turn up by chance in the output
	// scanned for them (durations, counts, ports).
	lat := 48.858437 + float64(n)/1e6
	doc := demoapp.Doc{Path: fmt.Sprintf("people/p%d", n), Fields: map[string]any{
		"name":   fmt.Sprintf("person %d", n),
		"phone":  phone,
		"email":  email,
		"login":  login,
		"ids":    map[string]any{"ssn": ssn, "passport": passport, "kept": int64(n)},
		"born":   born,
		"home":   &latlng.LatLng{Latitude: lat, Longitude: 2.294517},
		"salary": int64(7654321987 + n),
		"diary":  diary,
	}}
	return doc, []string{
		phone[:len(phone)-4], email[:strings.IndexByte(email, '@')], login, ssn, diary, passport,
		"13:47:21", strconv.FormatFloat(lat, 'f', -1, 64), "2.294517", fmt.Sprint(7654321987 + n),
	}
}

// targetText is every row of every table of the target database, the
// baasmigrate state schema and its rejects included, as text — except the
// token vault.
func targetText(t *testing.T, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema', $1) AND table_type = 'BASE TABLE'`, pii.VaultSchema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var n [2]string
		err := r.Scan(&n[0], &n[1])
		return n, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		rows, err := pool.Query(ctx, fmt.Sprintf("SELECT t::text FROM %s t", pgx.Identifier{n[0], n[1]}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== %s.%s\n%s\n", n[0], n[1], strings.Join(texts, "\n"))
	}
	return b.String()
}

func noClearValues(t *testing.T, where, text string, clear []string) {
	t.Helper()
	for _, c := range clear {
		if i := strings.Index(text, c); i >= 0 {
			// The surroundings tell a leak from a chance match.
			t.Errorf("%s holds the clear value %q: …%s…", where, c, text[max(0, i-60):min(len(text), i+len(c)+60)])
		}
	}
}

// TestFieldTransforms migrates documents through a mapping with every
// transform, verifies them (exit 0, comparing transformed values), scans
// the target database — rows, state schema, rejects — and everything the
// runs printed or wrote for the clear values, finds none, and takes the
// tokens back to their values through the vault. A tampered transformed
// value is a difference for verify; a changed transform is a changed
// setting.
func TestFieldTransforms(t *testing.T) {
	f := newDocsFixture(t)
	var docs []demoapp.Doc
	var clear []string
	for n := range 5 {
		d, c := piiPerson(n)
		docs = append(docs, d)
		clear = append(clear, c...)
	}
	f.seed(docs)
	mapping := filepath.Join(f.dir, "people.yaml")
	if err := os.WriteFile(mapping, []byte(piiMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	hashKey, tokenKey := "e2e-hash-key-"+t.Name(), "e2e-token-key-"+t.Name()
	env := append(f.env(), "PII_E2E_HASH_KEY="+hashKey, "PII_E2E_TOKEN_KEY="+tokenKey)
	run := func(want int, args ...string) clitest.Result {
		t.Helper()
		res := clitest.Run(t, env, args...)
		if res.Code != want {
			t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.Code, want, res.Stdout, res.Stderr)
		}
		return res
	}
	// Without the key, nothing runs, and the error names the variable.
	res := clitest.Run(t, f.env(), "migrate", "--only", "documents", "--mapping", mapping)
	if res.Code == 0 || !strings.Contains(res.Stderr, "PII_E2E_HASH_KEY") {
		t.Fatalf("migrate without the key: exit %d\n%s", res.Code, res.Stderr)
	}
	sum := filepath.Join(f.dir, "summary.json")
	var output strings.Builder
	for _, args := range [][]string{
		{"migrate", "--only", "documents", "-v", "--mapping", mapping, "--summary", sum},
		{"verify", "--only", "documents", "-v", "--mapping", mapping},
		{"verify", "--only", "documents", "--mapping", mapping, "--format", "json"},
	} {
		res := run(0, args...)
		output.WriteString(res.Stdout + res.Stderr)
	}
	summary, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	output.Write(summary)
	noClearValues(t, "the runs' output and summary", output.String(), clear)
	noClearValues(t, "the target database", targetText(t, f.pool), clear)
	for _, key := range []string{hashKey, tokenKey} {
		if strings.Contains(output.String()+targetText(t, f.pool), key) {
			t.Errorf("a key appears in the output or the target")
		}
	}

	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `SELECT id, phone, email, login_hash, ssn, born, home::text, salary, _overflow::text FROM people ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type person struct {
		ID, Phone, Email, Login, SSN string
		Born                         time.Time
		Home                         string
		Salary                       int64
		Overflow                     string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[person])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d rows, want 5", len(got))
	}
	for n, p := range got {
		_, c := piiPerson(n)
		if want := fmt.Sprintf("********%04d", 1000+n); p.Phone != want {
			t.Errorf("%s phone %q, want %q", p.ID, p.Phone, want)
		}
		if !strings.HasPrefix(p.Email, strings.Repeat("*", len(c[1]))+"@example.com") {
			t.Errorf("%s email %q", p.ID, p.Email)
		}
		if want := pii.Hash([]byte(hashKey), c[2]); p.Login != want {
			t.Errorf("%s login hash %q, want %q (HMAC-SHA-256, hex)", p.ID, p.Login, want)
		}
		if !p.Born.Equal(time.Date(1980+n, 5, 17, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s born %v, want the day", p.ID, p.Born)
		}
		if p.Home != "(2.2,48.8)" || p.Salary != 7654321000 {
			t.Errorf("%s home %s salary %d", p.ID, p.Home, p.Salary)
		}
		if !strings.Contains(p.Overflow, `"kept"`) || strings.Contains(p.Overflow, "passport") || strings.Contains(p.Overflow, "diary") {
			t.Errorf("%s overflow %s", p.ID, p.Overflow)
		}
		value, ok, err := pii.Detokenize(ctx, f.pool, p.SSN)
		if err != nil || !ok || value != c[3] {
			t.Errorf("%s token %q gives %q, %v, %v; want the clear value back", p.ID, p.SSN, value, ok, err)
		}
	}

	// verify compares transformed values: a tampered hash is a difference.
	if _, err := f.pool.Exec(ctx, `UPDATE people SET login_hash = 'tampered' WHERE id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	res = run(1, "verify", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout, "p1") {
		t.Errorf("verify does not name the tampered row:\n%s", res.Stdout)
	}
	noClearValues(t, "verify's report of a difference", res.Stdout+res.Stderr, clear)

	// Another transform is another setting: a new run, which rewrites.
	if err := os.WriteFile(mapping, []byte(strings.Replace(piiMapping, "keep_last: 4", "keep_last: 2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	res = run(0, "migrate", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout, "settings changed since run") {
		t.Errorf("a changed transform did not start a new run:\n%s", res.Stdout)
	}
	var phone string
	if err := f.pool.QueryRow(ctx, `SELECT phone FROM people WHERE id = 'p0'`).Scan(&phone); err != nil || phone != "**********00" {
		t.Errorf("phone after keep_last: 2 = %q, %v", phone, err)
	}
	res = run(0, "verify", "--only", "documents", "--mapping", mapping)
	noClearValues(t, "the target database after the second run", targetText(t, f.pool), clear)
}

// TestFieldTransformFailureRejects: with the vault unreachable (--vault on
// a closed port) every document with a tokenized value, and a document
// whose masked field holds a map, are rejected — and neither the rejects
// nor the output hold their clear values.
func TestFieldTransformFailureRejects(t *testing.T) {
	f := newDocsFixture(t)
	d0, clear := piiPerson(0)
	d1, c1 := piiPerson(1)
	clear = append(clear, c1...)
	d1.Fields["phone"] = map[string]any{"home": "+33698765432"}
	clear = append(clear, "+33698765432")
	d2 := demoapp.Doc{Path: "people/p2", Fields: map[string]any{"name": "no ssn", "diary": "clear diary without ssn"}}
	clear = append(clear, "clear diary without ssn")
	f.seed([]demoapp.Doc{d0, d1, d2})
	mapping := filepath.Join(f.dir, "people.yaml")
	if err := os.WriteFile(mapping, []byte(piiMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	env := append(f.env(), "PII_E2E_HASH_KEY=k1", "PII_E2E_TOKEN_KEY=k2")
	res := clitest.Run(t, env, "migrate", "--only", "documents", "--mapping", mapping, "--vault", "postgres://vault@"+closed+"/vault?connect_timeout=5")
	if res.Code != 1 || !strings.Contains(res.Stderr, "2 record(s) rejected") {
		t.Fatalf("migrate with the vault unreachable: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	noClearValues(t, "the run's output", res.Stdout+res.Stderr, clear)
	noClearValues(t, "the target database", targetText(t, f.pool), clear)
	rows, err := f.pool.Query(context.Background(), `SELECT source_key, reason, record::text FROM baasmigrate.rejects ORDER BY source_key`)
	if err != nil {
		t.Fatal(err)
	}
	type reject struct{ Key, Reason, Record string }
	rejects, err := pgx.CollectRows(rows, pgx.RowToStructByPos[reject])
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 2 || rejects[0].Key != "people/p0" || rejects[1].Key != "people/p1" {
		t.Fatalf("rejects %+v", rejects)
	}
	if !strings.Contains(rejects[0].Reason, "field ids.ssn (transform tokenize)") || !strings.Contains(rejects[1].Reason, "field phone (transform mask): mask takes strings, the value is a map") {
		t.Errorf("reasons: %q, %q", rejects[0].Reason, rejects[1].Reason)
	}
	// The rest of the record is kept, transformed.
	if !strings.Contains(rejects[0].Record, "person 0") || !strings.Contains(rejects[0].Record, "********1000") {
		t.Errorf("reject record %s", rejects[0].Record)
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM people WHERE id = 'p2' AND NOT _missing`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the document without a tokenized value: %d rows, %v", n, err)
	}
}

// TestFieldTransformsSync: sync applies the mapping's transforms to the
// changes it copies (a new document, an update), cutover's comparison
// passes on the transformed values, and neither the target nor sync's log
// holds a clear value.
func TestFieldTransformsSync(t *testing.T) {
	f := newDocsFixture(t)
	d0, clear := piiPerson(0)
	f.seed([]demoapp.Doc{d0})
	mapping := filepath.Join(f.dir, "people.yaml")
	if err := os.WriteFile(mapping, []byte(piiMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(f.env(), "PII_E2E_HASH_KEY=sync-hash-key", "PII_E2E_TOKEN_KEY=sync-token-key")
	if res := clitest.Run(t, env, "migrate", "--only", "documents", "--mapping", mapping); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s", res.Code, res.Stderr)
	}
	p := clitest.Start(t, env, "sync", "--only", "documents", "-v")
	d7, c7 := piiPerson(7)
	clear = append(clear, c7...)
	ctx := context.Background()
	if _, err := f.client.Doc(d7.Path).Set(ctx, d7.Fields); err != nil {
		t.Fatal(err)
	}
	updated := "+33699990000"
	clear = append(clear, "+3369999")
	if _, err := f.client.Doc(d0.Path).Update(ctx, []firestore.Update{{Path: "phone", Value: updated}}); err != nil {
		t.Fatal(err)
	}
	s := &syncDocs{docsFixture: f}
	s.waitRow("public", "people", "id", "p0", "phone", "********0000")
	s.waitRow("public", "people", "id", "p7", "phone", "********1007")
	if res := clitest.Run(t, env, "cutover", "--only", "documents"); res.Code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res := stopSync(t, p)
	noClearValues(t, "sync's output", res.Stdout+res.Stderr, clear)
	noClearValues(t, "the target database", targetText(t, f.pool), clear)
	var token string
	if err := f.pool.QueryRow(ctx, `SELECT ssn FROM people WHERE id = 'p7'`).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if value, ok, err := pii.Detokenize(ctx, f.pool, token); err != nil || !ok || value != c7[3] {
		t.Errorf("p7's token gives %q, %v, %v", value, ok, err)
	}
}
