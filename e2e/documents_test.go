package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
	"github.com/baasmigrate/baasmigrate/transformers"
)

// docsFixture is one test's source project and target database.
type docsFixture struct {
	t       *testing.T
	project string
	host    string
	dsn     string
	client  *firestore.Client
	pool    *pgxpool.Pool
	dir     string
}

func newDocsFixture(t *testing.T) *docsFixture {
	return newDocsFixtureAt(t, testenv.FirestoreEmulatorHost(t))
}

func newDocsFixtureAt(t *testing.T, host string) *docsFixture {
	t.Helper()
	ctx := context.Background()
	f := &docsFixture{t: t, host: host, project: testenv.FreshProjectID(t), dsn: testenv.NewDatabase(t), dir: t.TempDir()}
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	var err error
	if f.client, err = firestore.NewClient(ctx, f.project); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.client.Close() })
	if f.pool, err = pgxpool.New(ctx, f.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.pool.Close)
	return f
}

// env is the environment the CLI runs with: the source and target only.
func (f *docsFixture) env() []string {
	return clitest.Env("FIRESTORE_EMULATOR_HOST="+f.host, "GCLOUD_PROJECT="+f.project, "DATABASE_URL="+f.dsn)
}

func (f *docsFixture) seed(docs []demoapp.Doc) {
	f.t.Helper()
	if err := demoapp.Seed(context.Background(), f.client, docs); err != nil {
		f.t.Fatal(err)
	}
}

// run runs the CLI and fails the test unless it exits with want.
func (f *docsFixture) run(want int, args ...string) clitest.Result {
	f.t.Helper()
	res := clitest.Run(f.t, f.env(), args...)
	if res.Code != want {
		f.t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.Code, want, res.Stdout, res.Stderr)
	}
	return res
}

func (f *docsFixture) infer(extra ...string) string {
	f.t.Helper()
	path := filepath.Join(f.dir, "mapping.yaml")
	f.run(0, append([]string{"infer", "--out", path}, extra...)...)
	return path
}

func (f *docsFixture) summary(path string) summaryJSON {
	f.t.Helper()
	return readSummary[summaryJSON](f.t, path)
}

// readSummary reads the --summary file at path into a T (summaryJSON,
// runSummaryJSON), failing t when it is missing or not JSON.
func readSummary[T any](t testing.TB, path string) T {
	t.Helper()
	var s T
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the summary was not written: %v", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("summary %s: %v\n%s", path, err, data)
	}
	return s
}

// summaryJSON is the part of `migrate --summary` the tests read.
type summaryJSON struct {
	Jobs []struct {
		Kind             string `json:"kind"`
		Resumed          bool   `json:"resumed"`
		AlreadyFinished  bool   `json:"already_finished"`
		SnapshotRenewals int    `json:"snapshot_renewals"`
		Tables           []struct {
			Table    string `json:"table"`
			Read     int64  `json:"read"`
			Loaded   int64  `json:"loaded"`
			Rejected int64  `json:"rejected"`
			Changed  int64  `json:"changed"`
		} `json:"tables"`
	} `json:"jobs"`
	Totals struct {
		Read, Loaded, Rejected, Changed int64
	} `json:"totals"`
}

// checkBalance asserts read = loaded + rejected for every table.
func checkBalance(t *testing.T, s summaryJSON) {
	t.Helper()
	for _, j := range s.Jobs {
		for _, tb := range j.Tables {
			if tb.Read != tb.Loaded+tb.Rejected {
				t.Errorf("%s %s: read %d != loaded %d + rejected %d", j.Kind, tb.Table, tb.Read, tb.Loaded, tb.Rejected)
			}
		}
	}
}

// sourceDocs reads every document of the given collection groups through
// the official Firestore client (not through baasmigrate's extractor).
func (f *docsFixture) sourceDocs(groups ...string) map[string]record.Record {
	f.t.Helper()
	docs, err := demoapp.ReadAll(context.Background(), f.client, f.project, groups...)
	if err != nil {
		f.t.Fatal(err)
	}
	return docs
}

// targetDocs reads every row of every mapped table back as documents.
func (f *docsFixture) targetDocs(m *mappings.Mapping) map[string]postgres.DocumentRow {
	f.t.Helper()
	ctx := context.Background()
	tr, err := transformers.NewDocuments(m)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]postgres.DocumentRow{}
	for _, tb := range m.Tables {
		err := postgres.ReadDocuments(ctx, f.pool, m, tr, tb, nil, func(r postgres.DocumentRow) error {
			if _, dup := out[r.Path]; dup {
				return fmt.Errorf("document %s has two rows", r.Path)
			}
			out[r.Path] = r
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

// compareDocs asserts the target holds exactly the source's documents,
// field by field, plus one placeholder row per missing ancestor.
func compareDocs(t *testing.T, src map[string]record.Record, dst map[string]postgres.DocumentRow) {
	t.Helper()
	bad := 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 15 {
			t.Errorf(format, args...)
		}
	}
	for path, s := range src {
		d, ok := dst[path]
		switch {
		case !ok:
			fail("%s: missing from the target", path)
		case d.Missing:
			fail("%s: loaded as a missing-parent placeholder", path)
		case !record.Equal(record.Map(d.Fields), record.Map(s.Fields)):
			fail("%s: fields differ:\n source %v\n target %v", path, record.Map(s.Fields), record.Map(d.Fields))
		case !d.CreateTime.Equal(s.CreateTime) || !d.UpdateTime.Equal(s.UpdateTime):
			fail("%s: times differ: source %v/%v, target %v/%v", path, s.CreateTime, s.UpdateTime, d.CreateTime, d.UpdateTime)
		}
	}
	ancestors := map[string]bool{}
	for path := range src {
		segs := strings.Split(path, "/")
		for n := 2; n < len(segs); n += 2 {
			ancestors[strings.Join(segs[:n], "/")] = true
		}
	}
	for path, d := range dst {
		if _, ok := src[path]; ok {
			continue
		}
		if !d.Missing || !ancestors[path] {
			fail("%s: in the target but not a source document (missing=%v)", path, d.Missing)
		}
	}
	if bad > 15 {
		t.Errorf("… and %d more differences", bad-15)
	}
}

func loadMapping(t *testing.T, path string) *mappings.Mapping {
	t.Helper()
	m, err := mappings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// saveMapping writes m to path, for the next run to use.
func saveMapping(t *testing.T, path string, m *mappings.Mapping) {
	t.Helper()
	text, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rowVersions returns every table's (key, xmin) pairs: xmin changes
// whenever PostgreSQL rewrites a row.
func (f *docsFixture) rowVersions(m *mappings.Mapping) map[string]string {
	f.t.Helper()
	out := map[string]string{}
	for _, tb := range m.Tables {
		rows, err := f.pool.Query(context.Background(), fmt.Sprintf("SELECT (%s)::text, xmin::text FROM %s",
			"ROW("+strings.Join(quoted(tb.KeyColumns()), ", ")+")", pgx.Identifier{m.Schema, tb.Name}.Sanitize()))
		if err != nil {
			f.t.Fatal(err)
		}
		for rows.Next() {
			var k, x string
			if err := rows.Scan(&k, &x); err != nil {
				f.t.Fatal(err)
			}
			out[tb.Name+" "+k] = x
		}
		rows.Close()
	}
	return out
}

func quoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return out
}

// TestDocumentsRoundTrip migrates the demo app (every value type, three
// levels of subcollections, subcollections under missing parents, type
// conflicts) and compares every source document field by field with what
// the target gives back; then re-runs and checks nothing was rewritten.
func TestDocumentsRoundTrip(t *testing.T) {
	f := newDocsFixture(t)
	f.seed(demoapp.Documents(7, demoapp.Small))
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--workers", "3", "--batch-size", "97", "--summary", sum)

	s := f.summary(sum)
	checkBalance(t, s)
	src := f.sourceDocs(demoapp.Groups...)
	if s.Totals.Read != int64(len(src)) || s.Totals.Rejected != 0 {
		t.Fatalf("summary: read %d, rejected %d; the source has %d documents", s.Totals.Read, s.Totals.Rejected, len(src))
	}
	m := loadMapping(t, mapping)
	compareDocs(t, src, f.targetDocs(m))

	// Subcollections under missing parents got placeholder parents.
	var placeholders int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM archive WHERE _missing`).Scan(&placeholders); err != nil || placeholders != 4 {
		t.Fatalf("archive placeholders = %d, %v; want 4 (one per year)", placeholders, err)
	}
	// Typed columns hold the values a user queries.
	var intMax int64
	var nan, negZero float64
	if err := f.pool.QueryRow(context.Background(), `SELECT int_max, nan, negzero FROM kitchen_sink WHERE id = 'k00'`).Scan(&intMax, &nan, &negZero); err != nil {
		t.Fatal(err)
	}
	if intMax != math.MaxInt64 || !math.IsNaN(nan) || !math.Signbit(negZero) {
		t.Fatalf("kitchen_sink k00: int_max %d, nan %v, negzero %v", intMax, nan, negZero)
	}
	var overflow string
	if err := f.pool.QueryRow(context.Background(), `SELECT _overflow::text FROM users WHERE id = 'user0007'`).Scan(&overflow); err != nil || overflow != `{"age": "unknown"}` {
		t.Fatalf("user0007 overflow = %q, %v; want the conflicting age", overflow, err)
	}

	// A second run does nothing; --restart re-reads everything and rewrites
	// no row.
	before := f.rowVersions(m)
	res := f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout, "already migrated") {
		t.Fatalf("second run did not report the finished migration:\n%s", res.Stdout)
	}
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--restart", "--summary", sum)
	s = f.summary(sum)
	if s.Totals.Changed != 0 || s.Totals.Read != int64(len(src)) {
		t.Fatalf("--restart over an identical target: read %d, changed %d; want %d, 0", s.Totals.Read, s.Totals.Changed, len(src))
	}
	after := f.rowVersions(m)
	if len(after) != len(before) {
		t.Fatalf("row count changed from %d to %d", len(before), len(after))
	}
	for k, x := range before {
		if after[k] != x {
			t.Fatalf("row %s was rewritten by an identical re-run (xmin %s → %s)", k, x, after[k])
		}
	}
}

// TestDocumentsKillAndResume kills migrate with SIGKILL at several random
// moments while it copies more than 20,000 documents over several
// partitions and workers, re-running each time; the final target must be
// exact.
func TestDocumentsKillAndResume(t *testing.T) {
	f := newDocsFixture(t)
	scale := demoapp.Scale{Users: 2500, Posts: 3000, CommentsPerPost: 3, Orders: 2000, ItemsPerOrder: 2, Archive: 500}
	docs := demoapp.Documents(11, scale)
	if len(docs) < 20000 {
		t.Fatalf("only %d documents; the test wants at least 20,000", len(docs))
	}
	f.seed(docs)
	mapping := f.infer()
	args := []string{"migrate", "--only", "documents", "--mapping", mapping, "--workers", "4", "--batch-size", "150", "--firestore-page-size", "400"}

	committed := testenv.Committed(f.pool)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	midRun := 0
	for attempt := 0; attempt < 5; attempt++ {
		target := committed() + 1 + r.Int64N(int64(len(docs))/6)
		if clitest.KillAt(t, f.env(), args, target, committed, 2*time.Minute) {
			midRun++
			t.Logf("attempt %d: killed with %d records committed", attempt, committed())
		}
	}
	if midRun < 3 {
		t.Fatalf("only %d of 5 attempts were killed mid-run; the test did not test resumption", midRun)
	}
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, append(args, "--summary", sum)...)
	s := f.summary(sum)
	checkBalance(t, s)
	if s.Totals.Read != int64(len(docs)) {
		t.Fatalf("after %d kills the run read %d records; the source has %d", midRun, s.Totals.Read, len(docs))
	}
	compareDocs(t, f.sourceDocs(demoapp.Groups...), f.targetDocs(loadMapping(t, mapping)))
}

// TestDocumentsConflictsAndRejects edits a mapping the way users do and
// checks that documents that disagree with it lose nothing: values a
// column cannot hold go to _overflow, documents without a table are
// rejected with a reason and their raw record, and the exit status says so.
func TestDocumentsConflictsAndRejects(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{
		{Path: "things/a", Fields: map[string]any{"n": int64(1), "label": "one", "secret": "drop me"}},
		{Path: "things/b", Fields: map[string]any{"n": int64(1) << 60, "label": "two"}},
		{Path: "things/c", Fields: map[string]any{"n": "not a number", "label": int64(3)}},
		{Path: "things/d", Fields: map[string]any{"n": 2.5, "extra": true}},
		{Path: "logs/x", Fields: map[string]any{"msg": "a log line"}},
		{Path: "logs/y", Fields: map[string]any{"msg": "another"}},
	})
	mappingPath := f.infer()
	m := loadMapping(t, mappingPath)
	// The user drops the logs table, narrows n to integer, excludes secret.
	var kept []*mappings.Table
	for _, tb := range m.Tables {
		if tb.Collection == "logs" {
			continue
		}
		for _, c := range tb.Columns {
			if c.Field == "n" {
				c.Type, c.Source = "integer", ""
			}
		}
		tb.Exclude = append(tb.Exclude, "secret")
		var cols []*mappings.Column
		for _, c := range tb.Columns {
			if c.Field != "secret" {
				cols = append(cols, c)
			}
		}
		tb.Columns = cols
		kept = append(kept, tb)
	}
	m.Tables = kept
	saveMapping(t, mappingPath, m)
	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(1, "migrate", "--only", "documents", "--mapping", mappingPath, "--summary", sum)
	if !strings.Contains(res.Stderr, "2 record(s) rejected") {
		t.Fatalf("stderr does not count the rejects:\n%s", res.Stderr)
	}
	s := f.summary(sum)
	checkBalance(t, s)
	if s.Totals.Read != 6 || s.Totals.Loaded != 4 || s.Totals.Rejected != 2 {
		t.Fatalf("totals %+v; want read 6, loaded 4, rejected 2", s.Totals)
	}
	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `SELECT source_key, reason, record::text FROM baasmigrate.rejects ORDER BY source_key`)
	if err != nil {
		t.Fatal(err)
	}
	type reject struct{ Key, Reason, Raw string }
	rejects, err := pgx.CollectRows(rows, pgx.RowToStructByPos[reject])
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 2 || rejects[0].Key != "logs/x" || !strings.Contains(rejects[0].Reason, `"logs"`) || !strings.Contains(rejects[1].Raw, "another") {
		t.Fatalf("rejects = %+v", rejects)
	}
	// Every value of things is somewhere: in its column or in _overflow.
	m = loadMapping(t, mappingPath)
	dst := f.targetDocs(m)
	src := f.sourceDocs("things")
	for path, s := range src {
		delete(s.Fields, "secret") // excluded on purpose
		if d := dst[path]; !record.Equal(record.Map(d.Fields), record.Map(s.Fields)) {
			t.Errorf("%s: target %v, source %v", path, record.Map(d.Fields), record.Map(s.Fields))
		}
	}
	var n *int32
	var overflow *string
	if err := f.pool.QueryRow(ctx, `SELECT n, _overflow::text FROM things WHERE id = 'b'`).Scan(&n, &overflow); err != nil {
		t.Fatal(err)
	}
	if n != nil || overflow == nil || !strings.Contains(*overflow, "1152921504606846976") {
		t.Fatalf("things/b: n = %v, overflow %v; want the out-of-range integer in _overflow", n, overflow)
	}
	f.run(0, "migrate", "--only", "documents", "--mapping", mappingPath, "--allow-rejects")
}

// TestDocumentsSurviveThrottlingAndCutStreams makes the emulator refuse a
// third of the calls (UNAVAILABLE, RESOURCE_EXHAUSTED) and cut query
// streams; the migration retries and the target is exact.
func TestDocumentsSurviveThrottlingAndCutStreams(t *testing.T) {
	f := newDocsFixture(t)
	f.seed(demoapp.Documents(3, demoapp.Scale{Users: 300, Posts: 300, CommentsPerPost: 2, Orders: 100, ItemsPerOrder: 2, Archive: 20}))
	mapping := f.infer()
	hooks := firestoreemu.HooksFor(f.host)
	ctx := context.Background()
	// One worker keeps the sequence of calls, and so the seeded choice of
	// failing ones, the same on every run.
	fifth, tenth, third := 0.2, 0.1, 0.3
	cut := 37
	err := hooks.SetFaults(ctx, f.project, firestoreemu.FaultConfig{Seed: 5, Rules: []firestoreemu.FaultRule{
		{Methods: []string{"RunQuery", "ListDocuments", "PartitionQuery", "ListCollectionIds", "RunAggregationQuery"}, Code: "UNAVAILABLE", Fraction: &fifth},
		{Methods: []string{"RunQuery"}, Code: "RESOURCE_EXHAUSTED", Fraction: &tenth},
		{Methods: []string{"RunQuery"}, Code: "UNAVAILABLE", Fraction: &third, AfterDocuments: &cut},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.ClearFaults(context.Background(), f.project) })
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--workers", "1", "--batch-size", "50",
		"--firestore-page-size", "100", "--retry-backoff", "5ms", "--summary", sum)
	st, err := hooks.Faults(ctx, f.project)
	if err != nil {
		t.Fatal(err)
	}
	var injected int64
	for _, n := range st.Injected {
		injected += n
	}
	if injected < 10 {
		t.Fatalf("only %d faults were injected; the test did not exercise retries", injected)
	}
	if err := hooks.ClearFaults(ctx, f.project); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, f.summary(sum))
	compareDocs(t, f.sourceDocs(demoapp.Groups...), f.targetDocs(loadMapping(t, mapping)))
}

// TestDocumentsSnapshotExpiry runs against an emulator that keeps past
// versions for two seconds: a run interrupted and resumed after that
// continues at a new read time, says so, and still ends exact.
func TestDocumentsSnapshotExpiry(t *testing.T) {
	emu := firestoreemu.New(firestoreemu.Options{History: 2 * time.Second})
	t.Cleanup(func() { emu.Close() })
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(ln)
	f := newDocsFixtureAt(t, ln.Addr().String())
	f.seed(demoapp.Documents(5, demoapp.Scale{Users: 400, Posts: 100, CommentsPerPost: 1, Orders: 50, ItemsPerOrder: 1}))
	mapping := f.infer()
	args := []string{"migrate", "--only", "documents", "--mapping", mapping, "--workers", "1", "--batch-size", "10", "--firestore-page-size", "10"}

	p := clitest.Start(t, f.env(), args...)
	f.waitForCommit(time.Minute, func() string { return "" })
	p.Kill()
	// Let the snapshot leave the emulator's two-second window. This sleep
	// is the passing of time under test, not synchronisation.
	time.Sleep(3 * time.Second)
	// Writes after the snapshot must not confuse the resumed run: a
	// document added now is read (the new snapshot sees it) or not, but
	// nothing is lost or doubled of what existed.
	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(0, append(args, "--summary", sum)...)
	s := f.summary(sum)
	if len(s.Jobs) != 1 || s.Jobs[0].SnapshotRenewals < 1 || !s.Jobs[0].Resumed {
		t.Fatalf("summary %+v: want a resumed run with a renewed snapshot", s.Jobs)
	}
	if !strings.Contains(res.Stderr, "outlived the source's snapshot window") {
		t.Fatalf("no warning about the renewed snapshot on stderr:\n%s", res.Stderr)
	}
	checkBalance(t, s)
	compareDocs(t, f.sourceDocs(demoapp.Groups...), f.targetDocs(loadMapping(t, mapping)))
}

// TestDocumentsBadMappingNamesTheLine checks that a mapping migrate cannot
// apply is refused before anything is written, with every problem named by
// file and line.
func TestDocumentsBadMappingNamesTheLine(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{{Path: "things/a", Fields: map[string]any{"n": int64(1)}}})
	bad := filepath.Join(f.dir, "bad.yaml")
	text := "version: 1\ntables:\n  - collection: things\n    table: things\n    id_column: id\n    columns:\n      - field: n\n        column: n\n        type: money\n      - field: m\n        column: n\n        type: text\n"
	if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res := f.run(2, "migrate", "--only", "documents", "--mapping", bad)
	for _, want := range []string{"bad.yaml:7:", "money", "bad.yaml:10:", `already the name of the column for field n`} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.Stderr)
		}
	}
	var exists bool
	if err := f.pool.QueryRow(context.Background(), `SELECT to_regclass('public.things') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("table created despite the bad mapping (exists=%v, %v)", exists, err)
	}
}

// TestMigrateKeepsSecretsOutOfOutput runs migrate with a wrong database
// password and a config file: the password never appears in what the user
// sees.
func TestMigrateKeepsSecretsOutOfOutput(t *testing.T) {
	f := newDocsFixture(t)
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "Wr0ng-Passw0rd-" + fmt.Sprint(rand.Int())
	dsn := strings.Replace(f.dsn, cfg.Password, wrong, 1)
	res := clitest.Run(t, f.env(), "migrate", "--only", "documents", "--postgres", dsn)
	if res.Code != 2 || strings.Contains(res.Stdout+res.Stderr, wrong) || strings.Contains(res.Stdout+res.Stderr, cfg.Password) {
		t.Fatalf("exit %d; output must name no password:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "connecting to postgres://") {
		t.Fatalf("the error does not say what failed:\n%s", res.Stderr)
	}
	// Connection strings pgx cannot read, or reads wrongly, are not echoed.
	for _, bad := range []string{
		"host=127.0.0.1 user=x password = " + wrong + " port=abc",
		"postgres://u:" + wrong[:5] + "@" + wrong[5:] + "@127.0.0.1:1/db",
	} {
		res := clitest.Run(t, f.env(), "migrate", "--only", "documents", "--postgres", bad)
		if res.Code != 2 || strings.Contains(res.Stdout+res.Stderr, wrong[5:]) {
			t.Fatalf("exit %d; output must not quote the connection string:\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
	}

	// Settings from --config work, and flags win over the file.
	f.seed([]demoapp.Doc{{Path: "things/a", Fields: map[string]any{"n": int64(1)}}})
	conf := filepath.Join(f.dir, "conf.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("postgres: %q\nworkers: 2\nonly: [documents]\nfirebase-project: %s\n", dsn, f.project)), 0o600); err != nil {
		t.Fatal(err)
	}
	res = clitest.Run(t, clitest.Env("FIRESTORE_EMULATOR_HOST="+f.host), "migrate", "--config", conf, "--postgres", f.dsn)
	if res.Code != 0 {
		t.Fatalf("migrate --config: exit %d\n%s", res.Code, res.Stderr)
	}
	if err := os.WriteFile(conf, []byte("workers: 2\nwokers: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = clitest.Run(t, f.env(), "migrate", "--config", conf)
	if res.Code != 2 || !strings.Contains(res.Stderr, "conf.yaml:2: unknown setting \"wokers\"") {
		t.Fatalf("a misspelt setting: exit %d\n%s", res.Code, res.Stderr)
	}
}

// netListen opens a listener on a free loopback port.
func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// TestMigrateMemoryIsBoundedByBatches migrates a collection and then one ten
// times larger with the same workers and batch size: peak memory must not
// follow the data.
func TestMigrateMemoryIsBoundedByBatches(t *testing.T) {
	peak := func(users int) int64 {
		f := newDocsFixture(t)
		f.seed(demoapp.Documents(4, demoapp.Scale{Users: users}))
		mapping := f.infer()
		res := f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--workers", "4", "--batch-size", "100", "--firestore-page-size", "200")
		return res.PeakRSS
	}
	small, large := peak(3000), peak(30000)
	t.Logf("migrate peak RSS: %d MiB for 3,000 users, %d MiB for 30,000", small>>20, large>>20)
	if large > small*3/2+16<<20 {
		t.Fatalf("migrate's memory grows with the data: %d MiB for 3,000 users, %d MiB for 30,000", small>>20, large>>20)
	}
}

// TestDocumentsHostileNames migrates collections and documents whose names
// try SQL injection, path tricks, unicode and Firestore's 1,500-byte limit:
// everything round-trips or is rejected with a reason, and nothing escapes
// its quoting.
func TestDocumentsHostileNames(t *testing.T) {
	f := newDocsFixture(t)
	long := strings.Repeat("x", 1500)
	// Incompressible 1,500-byte IDs (PostgreSQL compresses long index keys).
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[r.IntN(62)]
		}
		return string(b)
	}
	longID, longChild := random(1500), random(1500)
	f.seed([]demoapp.Doc{
		{Path: `"; DROP TABLE users; --/a`, Fields: map[string]any{"v": int64(1)}},
		{Path: `"; DROP TABLE users; --/a/sub'; DELETE FROM x/b`, Fields: map[string]any{"v": int64(2)}},
		{Path: "ユーザー/名前", Fields: map[string]any{"名前": "値", "with space": true}},
		{Path: long + "/d", Fields: map[string]any{long: "long field name"}},
		{Path: "ids/" + longID, Fields: map[string]any{"n": int64(3)}},
		{Path: "ids/with space", Fields: map[string]any{"n": int64(4)}},
		{Path: "ids/quote'\"`", Fields: map[string]any{"n": int64(5)}},
		{Path: "ids/..dots..", Fields: map[string]any{"n": int64(6)}},
		{Path: "ids/Case", Fields: map[string]any{"n": int64(7)}},
		{Path: "ids/case", Fields: map[string]any{"n": int64(8)}},
		// Two 1,500-byte IDs make a primary key beyond PostgreSQL's index
		// row limit: the row must be rejected with the reason, not lost.
		{Path: "ids/" + longID + "/children/" + longChild, Fields: map[string]any{"n": int64(9)}},
		{Path: "ids/" + longID + "/children/short", Fields: map[string]any{"n": int64(10)}},
	})
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(1, "migrate", "--only", "documents", "--mapping", mapping, "--summary", sum)
	s := f.summary(sum)
	checkBalance(t, s)
	if s.Totals.Read != 12 || s.Totals.Rejected != 1 {
		t.Fatalf("totals %+v; want 12 read, 1 rejected (the over-long key)\n%s", s.Totals, res.Stdout)
	}
	var reason string
	if err := f.pool.QueryRow(context.Background(), `SELECT reason FROM baasmigrate.rejects`).Scan(&reason); err != nil || !strings.Contains(reason, "index row") {
		t.Fatalf("reject reason %q, %v; want PostgreSQL's index row size message", reason, err)
	}
	// The catalog holds exactly the tables of the mapping: no statement
	// escaped its quoting.
	m := loadMapping(t, mapping)
	var tables int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != len(m.Tables) {
		t.Fatalf("public has %d tables, the mapping %d (%v)", tables, len(m.Tables), err)
	}
	src := f.sourceDocs(`"; DROP TABLE users; --`, `sub'; DELETE FROM x`, "ユーザー", long, "ids", "children")
	delete(src, "ids/"+longID+"/children/"+longChild) // rejected above
	compareDocs(t, src, f.targetDocs(m))
	res = f.run(1, "verify", "--only", "documents", "--format", "json")
	for _, tr := range tableReports(t, compareDoc(t, res.Stdout), "document") {
		if tr.Mismatched != 0 || tr.ExtraInTarget != 0 || tr.MissingInTarget+tr.Rejected > 1 {
			t.Errorf("verify, table %s: %+v", tr.Table, tr)
		}
	}
}

// TestDocumentsCollectionsAreJobsOfTheirOwn migrates two root collections
// one after the other with --collections: each is its own job (the second
// is not "already migrated"), and verify of one ignores the other's tables.
func TestDocumentsCollectionsAreJobsOfTheirOwn(t *testing.T) {
	f := newDocsFixture(t)
	f.seed(demoapp.Documents(8, demoapp.Scale{Users: 30, Posts: 20, CommentsPerPost: 2}))
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--collections", "users", "--summary", sum)
	if s := f.summary(sum); s.Totals.Read != 30 {
		t.Fatalf("--collections users read %d documents, want 30", s.Totals.Read)
	}
	f.run(0, "verify", "--only", "documents", "--mapping", mapping, "--collections", "users")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--collections", "posts", "--summary", sum)
	if s := f.summary(sum); s.Totals.Read != 60 || s.Jobs[0].AlreadyFinished {
		t.Fatalf("--collections posts: read %d, already finished %v; want 60 posts and comments", s.Totals.Read, s.Jobs[0].AlreadyFinished)
	}
	f.run(0, "verify", "--only", "documents", "--mapping", mapping, "--collections", "posts,users")
}

// TestDocumentsChangedSettingsStartANewRun: after a finished migration,
// running again with another mapping is not "already migrated": a new run
// applies it.
func TestDocumentsChangedSettingsStartANewRun(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{{Path: "things/a", Fields: map[string]any{"n": int64(1), "label": "x"}}})
	mapping := f.infer()
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	m := loadMapping(t, mapping)
	m.Tables[0].Name = "renamed_things"
	saveMapping(t, mapping, m)
	res := f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	if strings.Contains(res.Stdout, "already migrated") || !strings.Contains(res.Stdout, "settings changed since run") {
		t.Fatalf("a changed mapping did not start a new run:\n%s", res.Stdout)
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM renamed_things`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("renamed_things has %d rows (%v); want 1", n, err)
	}
}
