package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/memory"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/argon2id"
)

// The second source: TestSecondSource registers a source named "memory"
// the way a new source's package does in its init (one extractors.Spec per
// kind, built on extractors/memory), and runs the real commands with
// --source memory against PostgreSQL and a directory object store. That
// nothing but this registration is needed is the proof of docs/sources.md's
// claim that a source is a package plus one import line in extractors/all.

// memorySource holds the records the "memory" source serves; the test
// changes them between commands, as the records of a real source change.
var memorySource struct {
	sync.Mutex
	recs map[record.Kind][]record.Record
}

// memoryBucket is the bucket the memory source's files are in.
const memoryBucket = "memory-bucket"

var registerMemory sync.Once

// registerMemorySource registers the "memory" source once per test binary.
// It declares no options, so the flags of every command stay those of the
// sources in extractors/all; tests that look at the registry tolerate a
// source more.
func registerMemorySource() {
	registerMemory.Do(func() {
		for _, kind := range []record.Kind{record.KindDocument, record.KindUser, record.KindFile} {
			extractors.Register(extractors.Spec{
				Source: "memory",
				Name:   "memory-" + string(kind) + "s",
				Kind:   kind,
				Help:   "The " + string(kind) + "s a test holds in memory.",
				New: func(context.Context, plugin.Config) (extractors.Extractor, error) {
					memorySource.Lock()
					recs := append([]record.Record(nil), memorySource.recs[kind]...)
					memorySource.Unlock()
					ex, err := memory.New(recs, memory.Options{Name: string(kind) + "s"})
					if err != nil {
						return nil, err
					}
					if kind == record.KindFile {
						return memoryFiles{ex}, nil
					}
					return ex, nil
				},
			})
		}
	})
}

// memoryFiles is what a files source adds to the memory extractor: the
// bucket it reads (extractors.Bucketed), without which plan and verify
// cannot tell which rows of the files table are its.
type memoryFiles struct{ *memory.Extractor }

func (memoryFiles) Bucket() string { return memoryBucket }
func (memoryFiles) Prefix() string { return "" }

var _ extractors.Bucketed = memoryFiles{}

// Passwords of the users with hashes.
const (
	bcryptPassword = "correct horse"
	argonPassword  = "battery staple"
)

func str(s string) *string { return &s }

// secondSourceRecords makes the source's records: documents with
// subcollections and every value type (and IDs where whole-key byte order
// and segment order differ: users/a/orders/x and users/a-b/orders/y),
// users with a bcrypt hash, an argon2id PHC string and no exported hash
// (passwords.None), and files with bytes.
func secondSourceRecords(t *testing.T) map[record.Kind][]record.Record {
	t.Helper()
	t0 := time.Date(2024, 3, 4, 5, 6, 7, 891000000, time.UTC)
	doc := func(key string, i int, fields map[string]record.Value) record.Record {
		return record.Record{
			Kind: record.KindDocument, Key: key, Fields: fields,
			CreateTime: t0.Add(time.Duration(i) * time.Hour), UpdateTime: t0.Add(time.Duration(i)*time.Hour + time.Minute),
		}
	}
	person := func(name string, age int64) map[string]record.Value {
		return map[string]record.Value{
			"name": record.String(name), "age": record.Int(age), "score": record.Double(float64(age) / 4),
			"active": record.Bool(age%2 == 0), "tags": record.Array(record.String("x"), record.String(name)),
			"address": record.Map(map[string]record.Value{"city": record.String("Lyon"), "zip": record.Int(69000 + age)}),
			"joined":  record.Timestamp(t0.Add(-time.Duration(age) * 24 * time.Hour)), "avatar": record.Bytes([]byte{0, 1, byte(age)}),
			"home": record.Geo(45.76, 4.84), "nothing": record.Null(),
		}
	}
	docs := []record.Record{
		doc("users/a", 1, person("Ann", 30)),
		doc("users/a-b", 2, person("Abe", 41)),
		doc("users/b", 3, person("Bea", 22)),
		doc("users/a/orders/x", 4, map[string]record.Value{"total": record.Double(12.5), "items": record.Int(2), "by": record.Reference("users/a")}),
		doc("users/a/orders/x-y", 5, map[string]record.Value{"total": record.Double(3), "items": record.Int(1), "by": record.Reference("users/a")}),
		doc("users/a-b/orders/y", 6, map[string]record.Value{"total": record.Double(7.25), "items": record.Int(5), "by": record.Reference("users/a-b")}),
		doc("posts/p1", 7, map[string]record.Value{"title": record.String("Hello"), "likes": record.Int(3)}),
		doc("posts/p2", 8, map[string]record.Value{"title": record.String("World"), "likes": record.Int(0)}),
	}

	bhash, err := bcrypt.GenerateFromPassword([]byte(bcryptPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ahash, err := argon2id.Hash([]byte(argonPassword), argon2id.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	user := func(uid, email string, c *passwords.Credential, i int) record.Record {
		u := record.User{
			UID: uid, Email: str(email), EmailVerified: i%2 == 0, DisplayName: str(strings.ToUpper(uid)),
			CreatedAt: t0.Add(time.Duration(i) * time.Minute), LastSignInAt: t0.Add(time.Duration(i) * time.Hour),
			CustomClaims: str(`{"role":"member"}`), Password: c,
			Providers: []record.Provider{{ProviderID: "password", RawID: email, Email: str(email)}},
		}
		return u.Record(uid)
	}
	users := []record.Record{
		user("u-bcrypt", "b@example.com", &passwords.Credential{Algorithm: passwords.Bcrypt, Hash: string(bhash)}, 1),
		user("u-argon", "a@example.com", &passwords.Credential{Algorithm: passwords.Argon2id, Hash: ahash}, 2),
		user("u-none", "n@example.com", &passwords.Credential{Algorithm: passwords.None}, 3),
	}

	file := func(name, contentType string, data []byte, i int) record.Record {
		sum := md5.Sum(data)
		f := record.File{
			Bucket: memoryBucket, Name: name, Size: int64(len(data)), ContentType: contentType,
			MD5: sum[:], CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), HasCRC32C: true,
			Metadata: map[string]string{"owner": "test"}, DownloadTokens: []string{fmt.Sprintf("token-%d", i)},
			Created: t0.Add(time.Duration(i) * time.Second), Updated: t0.Add(time.Duration(i) * time.Minute),
		}
		return record.Record{
			Kind: record.KindFile, Key: name, Fields: f.Fields(), CreateTime: f.Created, UpdateTime: f.Updated,
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		}
	}
	files := []record.Record{
		file("img/a/x.png", "image/png", []byte("\x89PNG not really"), 1),
		file("img/a-b.png", "image/png", bytes.Repeat([]byte{7}, 3000), 2),
		file("notes.txt", "text/plain", []byte("hello from memory\n"), 3),
	}
	return map[record.Kind][]record.Record{record.KindDocument: docs, record.KindUser: users, record.KindFile: files}
}

// runIn is run with text on standard input.
func runIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	root := newRootCommand()
	root.SetIn(strings.NewReader(stdin))
	return runTree(t, root, args...)
}

// count returns the number of rows of a table of the target.
func count(t *testing.T, pool *pgxpool.Pool, table string) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

// readSummary decodes migrate's --summary file.
func readSummary(t *testing.T, path string) migrateSummary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sum migrateSummary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestSecondSource migrates, verifies and plans a source that is not
// Firebase, registered as a new source's package would register it.
func TestSecondSource(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	clearServiceEnv(t) // after: it clears DATABASE_URL
	registerMemorySource()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	recs := secondSourceRecords(t)
	memorySource.Lock()
	memorySource.recs = recs
	memorySource.Unlock()

	objects := t.TempDir()
	target := []string{"--source", "memory", "--postgres", dsn, "--objects", (&url.URL{Scheme: "file", Path: objects}).String()}
	args := func(command string, more ...string) []string {
		return append(append([]string{command}, target...), more...)
	}

	// The source is listed with its kinds.
	if res := run(t, "sources"); res.code != 0 || !strings.Contains(res.stdout, "memory (--source memory)") ||
		!strings.Contains(res.stdout, "documents: extractor memory-documents") || !strings.Contains(res.stdout, "firebase (--source firebase)") {
		t.Fatalf("sources: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// infer reads the source's documents: a table per collection pattern.
	if res := run(t, "infer", "--source", "memory"); res.code != 0 || !strings.Contains(res.stdout, "users_orders") || !strings.Contains(res.stdout, "posts") {
		t.Fatalf("infer: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// plan before anything: exit 0 (differences are what plan shows), and
	// nothing written.
	if res := run(t, args("plan")...); res.code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog','information_schema')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("plan created %d tables", tables)
	}
	if entries, _ := os.ReadDir(objects); len(entries) != 0 {
		t.Fatalf("plan wrote into the object store: %v", entries)
	}

	// migrate: every record lands.
	summary := filepath.Join(t.TempDir(), "summary.json")
	if res := run(t, args("migrate", "--summary", summary)...); res.code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	sum := readSummary(t, summary)
	loaded := map[string]int64{}
	for _, j := range sum.Jobs {
		if j.Status != statusFinished {
			t.Errorf("job %s: status %s", j.Kind, j.Status)
		}
		for _, tb := range j.Tables {
			loaded[j.Kind] += tb.Loaded
		}
	}
	for kind, want := range map[string]int{"document": len(recs[record.KindDocument]), "user": len(recs[record.KindUser]), "file": len(recs[record.KindFile])} {
		if loaded[kind] != int64(want) {
			t.Errorf("%ss: %d loaded, want %d (summary %+v)", kind, loaded[kind], want, sum.Jobs)
		}
	}
	if n := count(t, pool, "users") + count(t, pool, "users_orders") + count(t, pool, "posts"); n != int64(len(recs[record.KindDocument])) {
		t.Errorf("document rows: %d, want %d", n, len(recs[record.KindDocument]))
	}
	if n := count(t, pool, postgres.DefaultUsersSchema+".users"); n != 3 {
		t.Errorf("users rows: %d, want 3", n)
	}
	if n := count(t, pool, "files"); n != 3 {
		t.Errorf("files rows: %d, want 3", n)
	}
	for _, f := range recs[record.KindFile] {
		rc, _ := f.Open(ctx)
		want, _ := io.ReadAll(rc)
		got, err := os.ReadFile(filepath.Join(objects, filepath.FromSlash(f.Key)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("object %s: %d bytes (%v), want %d", f.Key, len(got), err, len(want))
		}
	}

	// verify: identical.
	if res := run(t, args("verify")...); res.code != 0 {
		t.Fatalf("verify after migrate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// A second migrate changes nothing: every job is already finished;
	// and one started over (--restart) reads everything again and changes
	// no row.
	if res := run(t, args("migrate", "--summary", summary)...); res.code != 0 {
		t.Fatalf("second migrate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, j := range readSummary(t, summary).Jobs {
		if !j.AlreadyFinished || len(j.Tables) != 0 {
			t.Errorf("second migrate, %ss: %+v, want already finished with nothing read", j.Kind, j)
		}
	}
	if res := run(t, args("migrate", "--restart", "--summary", summary)...); res.code != 0 {
		t.Fatalf("migrate --restart: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	read := map[string]int64{}
	for _, j := range readSummary(t, summary).Jobs {
		for _, tb := range j.Tables {
			read[j.Kind] += tb.Read
			if tb.Changed != 0 || tb.Rejected != 0 {
				t.Errorf("migrate --restart, %s table %s: %+v, want no row changed", j.Kind, tb.Table, tb.summaryCounts)
			}
		}
	}
	if read["document"] != int64(len(recs[record.KindDocument])) || read["user"] != 3 || read["file"] != 3 {
		t.Errorf("migrate --restart read %v", read)
	}

	// Passwords: bcrypt and argon2id are verified, NONE cannot be.
	for _, c := range []struct {
		uid, password string
		code          int
		says          string
	}{
		{"u-bcrypt", bcryptPassword, exitOK, "match"},
		{"u-bcrypt", bcryptPassword + "!", exitProblems, "no match"},
		{"u-argon", argonPassword, exitOK, "match"},
		{"u-argon", bcryptPassword, exitProblems, "no match"},
		{"u-none", "anything", exitError, "its source exports none"},
	} {
		res := runIn(t, c.password+"\n", "auth", "verify-password", "--uid", c.uid, "--postgres", dsn)
		if res.code != c.code || !strings.Contains(res.stdout+res.stderr, c.says) {
			t.Errorf("verify-password %s: exit %d, want %d saying %q\n%s%s", c.uid, res.code, c.code, c.says, res.stdout, res.stderr)
		}
		if strings.Contains(res.stdout+res.stderr, c.password) {
			t.Errorf("verify-password %s shows the password", c.uid)
		}
	}

	// One changed source record: verify says so, and where.
	memorySource.Lock()
	changed := recs[record.KindDocument][3] // users/a/orders/x
	changed.Fields = map[string]record.Value{"total": record.Double(99), "items": record.Int(2), "by": record.Reference("users/a")}
	docs := append([]record.Record(nil), recs[record.KindDocument]...)
	docs[3] = changed
	memorySource.recs = map[record.Kind][]record.Record{record.KindDocument: docs, record.KindUser: recs[record.KindUser], record.KindFile: recs[record.KindFile]}
	memorySource.Unlock()
	res := run(t, args("verify", "--format", "json")...)
	if res.code != exitProblems {
		t.Fatalf("verify after a change: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	var doc diff.Document
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, res.stdout)
	}
	var mismatched []string
	for _, k := range doc.Kinds {
		for _, r := range k.Tables {
			for _, s := range r.Samples {
				if s.Outcome == diff.Mismatched {
					mismatched = append(mismatched, s.Key)
				}
			}
		}
	}
	if len(mismatched) != 1 || mismatched[0] != "users/a/orders/x" {
		t.Errorf("verify found mismatches %q, want users/a/orders/x\n%s", mismatched, res.stdout)
	}

	// plan writes nothing either once the target exists: the same rows,
	// the same objects.
	before := count(t, pool, "users_orders")
	if res := run(t, args("plan")...); res.code != 0 {
		t.Fatalf("plan after a change: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := run(t, args("verify")...); res.code != exitProblems {
		t.Errorf("plan wrote the change: verify exits %d, want 1", res.code)
	}
	if count(t, pool, "users_orders") != before {
		t.Error("plan changed the orders table")
	}

	// Migrating again (--restart) writes exactly the change.
	if res := run(t, args("migrate", "--restart", "--summary", summary)...); res.code != 0 {
		t.Fatalf("migrate --restart after a change: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	changes := map[string]int64{}
	for _, j := range readSummary(t, summary).Jobs {
		for _, tb := range j.Tables {
			changes[tb.Table] += tb.Changed
		}
	}
	var total int64
	for _, n := range changes {
		total += n
	}
	if total != 1 || changes["users_orders"] != 1 {
		t.Errorf("migrate --restart after a change changed %v, want one row of users_orders", changes)
	}
	if res := run(t, args("verify")...); res.code != 0 {
		t.Errorf("verify after migrating the change: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestLaterKindsSettingsAreCheckedFirst: a setting of the last kind
// (files' required --objects) that is missing stops migrate before the
// first kind is migrated: nothing is written to the target, not even the
// tool's state.
func TestLaterKindsSettingsAreCheckedFirst(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	clearServiceEnv(t)
	registerMemorySource()
	memorySource.Lock()
	memorySource.recs = secondSourceRecords(t)
	memorySource.Unlock()
	res := run(t, "migrate", "--source", "memory", "--postgres", dsn)
	if res.code != exitError || !strings.Contains(res.stderr, "files: missing required option(s): --objects") {
		t.Fatalf("exit %d, want 2 naming --objects of files:\n%s", res.code, res.stderr)
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var schemas int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.schemata
		WHERE schema_name NOT IN ('public', 'information_schema') AND schema_name NOT LIKE 'pg\_%'`).Scan(&schemas); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, "information_schema.tables WHERE table_schema = 'public'"); schemas != 0 || n != 0 {
		t.Fatalf("%d schemas and %d public tables created; want none", schemas, n)
	}
}
