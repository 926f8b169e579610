package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// These tests freeze and fill real services: a Firestore emulator process
// stopped with SIGSTOP, a directory target on a tiny tmpfs, a PostgreSQL
// table whose rows another session holds locked. Each starts its own
// instance of what it breaks; the shared services are never touched.

// frozenEmulator is a Firestore emulator running as a process of its own,
// so that it can be stopped (SIGSTOP) and continued (SIGCONT).
type frozenEmulator struct {
	cmd  *exec.Cmd
	host string
}

// startEmulatorProcess builds e2e/firestoreemu/cmd/firestoreemu once
// (clitest.Build) and runs it on a free port for the duration of t.
func startEmulatorProcess(t *testing.T) *frozenEmulator {
	t.Helper()
	cmd := exec.Command(clitest.Build(t, "./e2e/firestoreemu/cmd/firestoreemu"), "--port", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the Firestore emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	host, ok := strings.CutPrefix(strings.TrimSpace(line), "firestoreemu listening on ")
	if err != nil || !ok {
		t.Fatalf("the Firestore emulator said %q (%v), want its address", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return &frozenEmulator{cmd: cmd, host: host}
}

func (e *frozenEmulator) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := e.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to the emulator: %v", sig, err)
	}
}

// waitLine waits for a stderr line of the run containing sub and returns
// the first such line, failing t when the run ends (or ten minutes pass)
// without one.
func waitLine(t *testing.T, p *clitest.Process, sub string) string {
	t.Helper()
	if !p.WaitStderr(t, sub, 10*time.Minute) {
		t.Fatalf("the run ended without a line containing %q:\n%s", sub, p.Stderr())
	}
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestDocumentsSourceFrozenMidRun stops the Firestore emulator (SIGSTOP)
// while a migration is reading from it, for longer than a short
// --source-timeout: the stalled call is cut and logged, and once the
// emulator continues (SIGCONT) the run resumes from its cursor and ends
// exact. Before the fix the run waited forever without a word.
func TestDocumentsSourceFrozenMidRun(t *testing.T) {
	emu := startEmulatorProcess(t)
	f := newDocsFixtureAt(t, emu.host)
	f.seed(demoapp.Documents(11, demoapp.Scale{Users: 600, Posts: 200, CommentsPerPost: 1, Orders: 50, ItemsPerOrder: 1}))
	mapping := f.infer()
	sum := filepath.Join(f.dir, "summary.json")
	run := clitest.Start(t, f.env(), "migrate", "-v", "--only", "documents", "--mapping", mapping, "--workers", "1",
		"--batch-size", "10", "--firestore-page-size", "25", "--source-timeout", "2s", "--retry-backoff", "10ms", "--summary", sum)

	// Freeze the source once the run has committed something: it is then
	// reading mid-stream.
	f.waitForCommit(5*time.Minute, run.Stderr)
	emu.signal(t, syscall.SIGSTOP)
	stall := waitLine(t, run, "stopped answering")
	emu.signal(t, syscall.SIGCONT)
	t.Logf("stall detected: %s", stall)
	if code := run.Result().Code; code != 0 {
		t.Fatalf("migrate exited %d after the source came back:\n%s", code, run.Stderr())
	}
	out := run.Stderr()
	if !strings.Contains(stall, "no answer for 2s (--source-timeout)") || !strings.Contains(out, "level=DEBUG msg=retrying") {
		t.Fatalf("want the stall and its retry logged:\n%s", out)
	}
	checkBalance(t, f.summary(sum))
	compareDocs(t, f.sourceDocs(demoapp.Groups...), f.targetDocs(loadMapping(t, mapping)))
}

// waitForCommit waits until a running migration has committed a batch,
// polling the target, and fails the test (with output()) when it has not
// within limit.
func (f *docsFixture) waitForCommit(limit time.Duration, output func() string) {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if testenv.Committed(f.pool)() > 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the run committed nothing in %s\n%s", limit, output())
		}
		time.Sleep(5 * time.Millisecond) // polling the target for progress
	}
}

// TestFilesDiskFullFailsAtOnceAndResumes copies files into a directory on
// a 4 MiB tmpfs already three quarters full: the copy hits ENOSPC, which
// must fail the run at once (not be retried as if it might pass: it once
// took 64 attempts and 4 minutes) with a message saying what to do; after
// space is freed, a re-run resumes and ends exact.
func TestFilesDiskFullFailsAtOnceAndResumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs to fill needs root; this test runs as root in CI and `make test`")
	}
	src := newFilesSource(t)
	r := rand.New(rand.NewPCG(9, 9))
	var objs []*filesObject
	for i := range 40 {
		objs = append(objs, &filesObject{name: fmt.Sprintf("photos/%03d.jpg", i), data: filesRandom(r, 64<<10), contentType: "image/jpeg"})
	}
	src.seed(objs)
	ft := newFilesTarget(t, src, false)

	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ft.dir = filepath.Join(mnt, "files")
	ft.url = "file://" + ft.dir

	res := clitest.Run(t, ft.env, ft.args("-v", "--workers", "2", "--batch-size", "5", "--retry-backoff", "1ms")...)
	if res.Code != 2 {
		t.Fatalf("migrate into a full disk exited %d, want 2:\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "no space left on the target directory: free space and run again to resume") {
		t.Fatalf("the error does not say the disk is full and what to do:\n%s", res.Stderr)
	}
	t.Logf("into a full disk:\n%s", res.Stderr)
	// Attempts counted in the retry log: a full disk is not retried.
	if n := strings.Count(res.Stderr, "retrying"); n > 0 {
		t.Fatalf("a full disk was retried %d times:\n%s", n, res.Stderr)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s, _ := ft.migrate(0)
	if len(s.Jobs) != 1 || !s.Jobs[0].Resumed {
		t.Fatalf("the run after freeing space did not resume: %+v", s.Jobs)
	}
	ft.compare(src, nil)
}

// TestTargetLockTimesOutAndRetries holds every row of a target table
// locked from another session: the migration's statements wait at most
// --target-timeout, each wait is a transient failure that is logged and
// retried, and when the lock stays the run fails naming the table and the
// lock. Released in time, the lock only delays the run, which ends exact.
func TestTargetLockTimesOutAndRetries(t *testing.T) {
	f := newDocsFixture(t)
	var docs []demoapp.Doc
	for i := range 30 {
		docs = append(docs, demoapp.Doc{Path: fmt.Sprintf("items/i%02d", i), Fields: map[string]any{"n": int64(i)}})
	}
	f.seed(docs)
	mapping := f.infer()
	args := []string{"migrate", "--only", "documents", "--mapping", mapping, "--workers", "1", "--batch-size", "10",
		"--target-timeout", "1s", "--retry-backoff", "10ms", "--retry-attempts", "3", "-v"}
	f.run(0, args...)

	ctx := context.Background()
	lockRows := func() (release func()) {
		tx, err := f.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT count(*) FROM (SELECT 1 FROM public.items FOR UPDATE) locked`); err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback(ctx) }
	}

	// The lock stays: three attempts, then a message naming what waited.
	release := lockRows()
	res := f.run(2, append(args, "--restart")...)
	release()
	t.Logf("with the lock held:\n%s", res.Stderr)
	if n := strings.Count(res.Stderr, "msg=retrying"); n != 2 {
		t.Errorf("%d retries logged, want 2 (3 attempts):\n%s", n, res.Stderr)
	}
	for _, want := range []string{`"public"."items"`, "lock timeout", "gave up after 3 attempts", "another session holds"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the error does not say %q:\n%s", want, res.Stderr)
		}
	}

	// The lock goes after the first retry: the run only waits.
	release = lockRows()
	run := clitest.Start(t, f.env(), append(args, "--restart", "--retry-attempts", "8")...)
	waitLine(t, run, "msg=retrying")
	release()
	if code := run.Result().Code; code != 0 {
		t.Fatalf("migrate exited %d after the lock was released:\n%s", code, run.Stderr())
	}
	compareDocs(t, f.sourceDocs("items"), f.targetDocs(loadMapping(t, mapping)))
}

// TestTimeoutsRefuseZeroAndNegative: --source-timeout and --target-timeout
// refuse durations that would mean "no deadline" or nonsense, naming the
// option, before anything is read or written.
func TestTimeoutsRefuseZeroAndNegative(t *testing.T) {
	f := newDocsFixture(t)
	f.seed([]demoapp.Doc{{Path: "items/a", Fields: map[string]any{"n": int64(1)}}})
	for _, cmd := range []string{"migrate", "verify"} {
		for _, bad := range []string{"0", "-1h", "soon"} {
			for _, opt := range []string{"--source-timeout", "--target-timeout"} {
				res := f.run(2, cmd, "--only", "documents", opt, bad)
				if !strings.Contains(res.Stderr, opt+": ") || !strings.Contains(res.Stderr, "is not a positive duration") {
					t.Errorf("%s %s %s: want a refusal naming the option, got:\n%s", cmd, opt, bad, res.Stderr)
				}
			}
		}
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused run created %d tables (%v)", n, err)
	}
}
