package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// runSummaryJSON is `migrate --summary` with the fields that say how the
// invocation ended.
type runSummaryJSON struct {
	summaryJSON
	Error       string `json:"error"`
	Interrupted bool   `json:"interrupted"`
	NextStep    string `json:"next_step"`
	ExitStatus  int    `json:"exit_status"`
}

// TestMigrateInterruptedBySignals interrupts migrate with SIGTERM, then the
// resumed run with SIGINT, each right after a batch was committed, then a
// run whose batch is blocked on a locked table with two SIGINTs (the first
// waits for the batch, the second abandons it). Every time the process
// exits 3 with the
// message that says to run again, writes its summary (interrupted, no
// error), reports no cancellation as an error or retry, and leaves the
// checkpoints agreeing with the counts; the final run completes the target
// exactly.
func TestMigrateInterruptedBySignals(t *testing.T) {
	f := newDocsFixture(t)
	docs := demoapp.Documents(13, demoapp.Scale{Users: 1500, Posts: 800, CommentsPerPost: 1, Orders: 400, ItemsPerOrder: 1, Archive: 40})
	f.seed(docs)
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	args := []string{"migrate", "-v", "--only", "documents", "--mapping", mapping, "--workers", "2",
		"--batch-size", "20", "--firestore-page-size", "50", "--summary", sum}
	ctx := context.Background()
	committed := func() int64 {
		n, err := testenv.CommittedRecords(ctx, f.pool)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	checkInterrupted := func(name string, res clitest.Result) {
		t.Helper()
		if res.Code != 3 {
			t.Fatalf("%s: exit %d, want 3 (interrupted)\nstdout:\n%s\nstderr:\n%s", name, res.Code, res.Stdout, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "interrupted; run the same command again to resume") {
			t.Errorf("%s: stderr does not say how to resume:\n%s", name, res.Stderr)
		}
		for _, bad := range []string{"context canceled", "retrying"} {
			if strings.Contains(res.Stderr, bad) {
				t.Errorf("%s: stderr reports %q for an interrupt:\n%s", name, bad, res.Stderr)
			}
		}
		checkStreamLog(t, name, res.Stderr)
		if !strings.Contains(res.Stdout, "interrupted") {
			t.Errorf("%s: the summary on stdout does not say the run was interrupted:\n%s", name, res.Stdout)
		}
		s := readSummary[runSummaryJSON](t, sum)
		if !s.Interrupted || s.Error != "" || s.ExitStatus != 3 || !strings.Contains(s.NextStep, "run the same command again") {
			t.Errorf("%s: summary interrupted=%v error=%q exit_status=%d next_step=%q", name, s.Interrupted, s.Error, s.ExitStatus, s.NextStep)
		}
		checkBalance(t, s.summaryJSON)
		// The batch in flight committed whole or not at all: the summary
		// counts what the checkpoints hold, and the run is not over.
		if n := committed(); s.Totals.Read != n || n == 0 || n >= int64(len(docs)) {
			t.Fatalf("%s: summary read %d, checkpoints cover %d, the source has %d", name, s.Totals.Read, n, len(docs))
		}
		t.Logf("%s: stopped with %d of %d records committed (%d stream(s) interrupted mid-way)",
			name, s.Totals.Read, len(docs), strings.Count(res.Stderr, `msg="stream interrupted"`))
	}
	// interrupt signals a run right after the first commit of stream (the
	// first progress line), so mid-stream, with batches in flight.
	interrupt := func(name, stream string, sig os.Signal) {
		t.Helper()
		_ = os.Remove(sum)
		p := clitest.Start(t, f.env(), args...)
		if !p.WaitStderr(t, "msg=progress stream="+stream+" ", 2*time.Minute) {
			res := p.Result()
			t.Fatalf("%s: the run ended (exit %d) before committing anything:\n%s", name, res.Code, res.Stderr)
		}
		p.Signal(t, sig)
		<-p.Done()
		checkInterrupted(name, p.Result())
	}
	// Streams are read in name order: archive, kitchen_sink, orders, posts,
	// users.
	interrupt("SIGTERM", "orders", syscall.SIGTERM)
	interrupt("SIGINT, resumed run", "posts", os.Interrupt)

	// A batch that cannot commit (its table is locked) is waited for after
	// the first SIGINT; the second one rolls it back and exits at once.
	lock, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE users IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(sum)
	p := clitest.Start(t, f.env(), args...)
	f.waitBlocked(p, "users")
	p.Signal(t, os.Interrupt)
	if !p.WaitStderr(t, "stopping after the work in flight", time.Minute) {
		t.Fatalf("the run ended at the first SIGINT with a batch blocked:\n%s", p.Result().Stderr)
	}
	p.Signal(t, os.Interrupt)
	<-p.Done() // with the lock still held: the batch was abandoned
	res := p.Result()
	if !strings.Contains(res.Stderr, "again: stopping at once") || strings.Contains(res.Stderr, "did not finish within") {
		t.Errorf("the second SIGINT did not stop the run at once:\n%s", res.Stderr)
	}
	checkInterrupted("two SIGINTs, batch blocked", res)
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	res = f.run(0, args...)
	s := readSummary[runSummaryJSON](t, sum)
	if s.Interrupted || s.Error != "" || s.ExitStatus != 0 || len(s.Jobs) != 1 || !s.Jobs[0].Resumed {
		t.Fatalf("final run: %+v\n%s", s, res.Stdout)
	}
	checkBalance(t, s.summaryJSON)
	if s.Totals.Read != int64(len(docs)) || committed() != int64(len(docs)) {
		t.Fatalf("final run read %d (checkpoints %d); the source has %d", s.Totals.Read, committed(), len(docs))
	}
	compareDocs(t, f.sourceDocs(demoapp.Groups...), f.targetDocs(loadMapping(t, mapping)))
	f.run(0, "verify", "--only", "documents", "--mapping", mapping)

	// verify, waiting on a locked table, stops at SIGTERM and says so.
	lock, err = f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE users IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	p = clitest.Start(t, f.env(), "verify", "--only", "documents", "--mapping", mapping)
	f.waitBlocked(p, "users")
	p.Signal(t, syscall.SIGTERM)
	<-p.Done()
	res = p.Result()
	if res.Code != 3 || !strings.Contains(res.Stderr, "interrupted; run the same command again") || strings.Contains(res.Stderr, "context canceled") {
		t.Fatalf("verify interrupted: exit %d, want 3 and the message without a cancellation error:\n%s", res.Code, res.Stderr)
	}
}

// waitBlocked waits until a session of the target waits for a lock on
// table, polling the server (the state under test), and fails if p exits
// first.
func (f *docsFixture) waitBlocked(p *clitest.Process, table string) {
	f.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var blocked int
		if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE NOT l.granted AND c.relname = $1`, table).Scan(&blocked); err != nil {
			f.t.Fatal(err)
		}
		if blocked > 0 {
			return
		}
		select {
		case <-p.Done():
			f.t.Fatalf("baasmigrate ended before waiting for a lock on %s:\n%s", table, p.Result().Stderr)
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("nothing waited for a lock on %s within two minutes", table)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	streamStartLine = regexp.MustCompile(`msg="reading stream" kind=\S+ stream=(\S+)`)
	streamEndLine   = regexp.MustCompile(`msg="stream (done|interrupted|failed)" stream=(\S+) records=(\d+)(?: total=(-?\d+))?`)
)

// checkStreamLog asserts that every stream migrate started (-v) ends with
// one line, and that "stream done" is said only of a complete stream: its
// records equal the count of the stream the log reports beside them (when
// the count came in: it is abandoned when it takes too long).
func checkStreamLog(t *testing.T, name, stderr string) {
	t.Helper()
	started := streamStartLine.FindAllStringSubmatch(stderr, -1)
	ends := streamEndLine.FindAllStringSubmatch(stderr, -1)
	if len(ends) != len(started) {
		t.Errorf("%s: %d streams started, %d ended in the log:\n%s", name, len(started), len(ends), stderr)
	}
	for _, m := range ends {
		if m[1] == "done" && m[4] != "" && m[4] != "-1" && m[3] != m[4] {
			t.Errorf("%s: stream %s logged done with %s of its %s records:\n%s", name, m[2], m[3], m[4], stderr)
		}
	}
}

// TestMigrateFailureWritesTheSummary makes every query of the source fail:
// migrate exits 2 and still writes its summary, with the error (no secret)
// and what to do next; the failed stream is logged as failed, not done.
func TestMigrateFailureWritesTheSummary(t *testing.T) {
	f := newDocsFixture(t)
	f.seed(demoapp.Documents(4, demoapp.Scale{Users: 30, Posts: 10, CommentsPerPost: 1}))
	mapping := f.infer()
	hooks := firestoreemu.HooksFor(f.host)
	ctx := context.Background()
	// Queries are cut after a few documents: the failure comes mid-stream.
	after := 3
	err := hooks.SetFaults(ctx, f.project, firestoreemu.FaultConfig{Rules: []firestoreemu.FaultRule{
		{Methods: []string{"RunQuery"}, Code: "PERMISSION_DENIED", AfterDocuments: &after},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.ClearFaults(context.Background(), f.project) })
	sum := filepath.Join(f.dir, "summary.json")
	res := f.run(2, "migrate", "-v", "--only", "documents", "--mapping", mapping, "--retry-attempts", "1", "--summary", sum)
	s := readSummary[runSummaryJSON](t, sum)
	if s.Error == "" || s.Interrupted || s.ExitStatus != 2 || s.NextStep == "" {
		t.Fatalf("summary of a failed run: error=%q interrupted=%v exit_status=%d next_step=%q", s.Error, s.Interrupted, s.ExitStatus, s.NextStep)
	}
	if !strings.Contains(s.Error, "PermissionDenied") && !strings.Contains(s.Error, "PERMISSION_DENIED") {
		t.Errorf("summary error %q does not name the cause", s.Error)
	}
	if u, err := url.Parse(f.dsn); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			data, _ := os.ReadFile(sum)
			if strings.Contains(string(data), pw) || strings.Contains(res.Stdout+res.Stderr, pw) {
				t.Fatal("the database password is in the summary or the output")
			}
		}
	}
	if !strings.Contains(res.Stderr, `msg="stream failed"`) {
		t.Errorf("the failed stream is not logged as failed:\n%s", res.Stderr)
	}
	checkStreamLog(t, "failed run", res.Stderr)
	if !strings.Contains(res.Stdout, "failed") {
		t.Errorf("the summary on stdout does not say the run failed:\n%s", res.Stdout)
	}
}

// TestMigrateNoOpRerunReportsNothingChanged re-runs a finished migration:
// the summary says so and counts nothing for this invocation, in the JSON
// and in the text.
func TestMigrateNoOpRerunReportsNothingChanged(t *testing.T) {
	f := newDocsFixture(t)
	f.seed(demoapp.Documents(6, demoapp.Scale{Users: 20, Posts: 5, CommentsPerPost: 1}))
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--summary", sum)
	first := readSummary[runSummaryJSON](t, sum)
	if first.Totals.Changed == 0 || first.Totals.Read == 0 {
		t.Fatalf("first run: %+v", first.Totals)
	}
	res := f.run(0, "migrate", "--only", "documents", "--mapping", mapping, "--summary", sum)
	s := readSummary[runSummaryJSON](t, sum)
	if len(s.Jobs) != 1 || !s.Jobs[0].AlreadyFinished {
		t.Fatalf("second run: %+v", s.Jobs)
	}
	if s.Totals.Read != 0 || s.Totals.Changed != 0 || s.Totals.Loaded != 0 || len(s.Jobs[0].Tables) != 0 {
		t.Fatalf("a no-op re-run reports %+v over %d tables; want nothing done by this invocation", s.Totals, len(s.Jobs[0].Tables))
	}
	if !strings.Contains(res.Stdout, "already migrated by run") || !strings.Contains(res.Stdout, "nothing changed") {
		t.Fatalf("stdout of a no-op re-run:\n%s", res.Stdout)
	}
}

// TestPlanExitsOneWhenMigrateWouldRefuse changes a column's type in the
// mapping after a migration: plan shows that migrate would refuse, and says
// so with exit status 1 as well.
func TestPlanExitsOneWhenMigrateWouldRefuse(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{{Path: "things/a", Fields: map[string]any{"n": int64(1)}}, {Path: "things/b", Fields: map[string]any{"n": int64(2)}}})
	mapping := f.infer()
	f.run(0, "migrate", "--only", "documents", "--mapping", mapping)
	f.run(0, "plan", "--only", "documents", "--mapping", mapping)
	m := loadMapping(t, mapping)
	for _, tb := range m.Tables {
		for _, c := range tb.Columns {
			if c.Field == "n" {
				c.Type, c.Source = "text", ""
			}
		}
	}
	saveMapping(t, mapping, m)
	res := f.run(1, "plan", "--only", "documents", "--mapping", mapping)
	if !strings.Contains(res.Stdout, "migrate would refuse") || !strings.Contains(res.Stderr, "migrate would refuse") {
		t.Fatalf("plan does not say migrate would refuse:\nstdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	}
	f.run(2, "migrate", "--only", "documents", "--mapping", mapping)
}

// TestFilesInterruptedBySIGTERM stops a copy of files to a versioned S3
// bucket with SIGTERM after its first commit, with uploads in flight: exit
// 3, the summary says interrupted, and the resumed run completes the
// target with every object uploaded exactly once.
func TestFilesInterruptedBySIGTERM(t *testing.T) {
	src := newFilesSource(t)
	objs := filesDemo(9, 400, []int{7 << 20, 6 << 20})
	src.seed(objs)
	ft := newFilesTarget(t, src, true)
	ft.makeVersionedBucket()
	opts := []string{"--workers", "3", "--batch-size", "10", "--objects-part-size", "5MiB", "--allow-rejects"}
	sum := filepath.Join(ft.work, "interrupted.json")
	p := clitest.Start(t, ft.env, ft.args(append([]string{"-v", "--summary", sum}, opts...)...)...)
	if !p.WaitStderr(t, "msg=progress", 2*time.Minute) {
		t.Fatalf("the run ended before committing anything:\n%s", p.Result().Stderr)
	}
	p.Signal(t, syscall.SIGTERM)
	<-p.Done()
	res := p.Result()
	if res.Code != 3 || !strings.Contains(res.Stderr, "interrupted; run the same command again to resume") {
		t.Fatalf("exit %d, want 3 with the resume message:\n%s", res.Code, res.Stderr)
	}
	checkStreamLog(t, "files", res.Stderr)
	s := readSummary[runSummaryJSON](t, sum)
	// The files table holds exactly what the summary counts as loaded.
	if !s.Interrupted || s.Error != "" || s.Totals.Read == 0 || s.Totals.Read >= int64(len(objs)) || int64(ft.committed()) != s.Totals.Loaded {
		t.Fatalf("summary of the interrupted run: interrupted=%v error=%q totals %+v, %d committed, %d objects",
			s.Interrupted, s.Error, s.Totals, ft.committed(), len(objs))
	}
	final, _ := ft.migrate(0, opts...)
	if final.Totals.Read != int64(len(objs)) || !final.Jobs[0].Resumed {
		t.Fatalf("final run: %+v resumed=%v; want all %d objects", final.Totals, final.Jobs[0].Resumed, len(objs))
	}
	ft.compare(src, filesS3Rejects)
	for key, versions := range ft.s3Versions() {
		if len(versions) != 1 {
			t.Errorf("%q was uploaded %d times: %v", key, len(versions), versions)
		}
	}
}
