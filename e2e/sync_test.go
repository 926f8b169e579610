package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/e2e/syncwriter"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// syncSeed is the seed of a sync test's random writer and kill moments:
// BAASMIGRATE_SYNC_SEED repeats a run; otherwise a fixed default, so a
// failure can be reproduced.
func syncSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(20261206)
	if s := os.Getenv("BAASMIGRATE_SYNC_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BAASMIGRATE_SYNC_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (repeat with BAASMIGRATE_SYNC_SEED=%d)", seed, seed)
	return seed
}

// syncDocs is a source project whose documents a syncwriter changes, and a
// target database migrated from it.
type syncDocs struct {
	*docsFixture
	w       *syncwriter.Writer
	mapping string
}

// newSyncDocs seeds docs documents of the writer's own collections into a
// fresh project on the emulator at host, infers a mapping and migrates.
func newSyncDocs(t *testing.T, host string, docs int, opts syncwriter.Options) *syncDocs {
	t.Helper()
	f := newDocsFixtureAt(t, host)
	s := &syncDocs{docsFixture: f, w: syncwriter.New(f.client, opts)}
	if err := s.w.Seed(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	s.mapping = f.infer()
	f.run(0, "migrate", "--only", "documents", "--mapping", s.mapping)
	return s
}

// syncArgs are the arguments of `sync` for documents; the mapping is the
// one stored with the migration.
func (s *syncDocs) syncArgs(extra ...string) []string {
	return append([]string{"sync", "--only", "documents", "-v"}, extra...)
}

// startSync starts `sync` in the background.
func (s *syncDocs) startSync(extra ...string) *clitest.Process {
	s.t.Helper()
	return clitest.Start(s.t, s.env(), s.syncArgs(extra...)...)
}

// stopSync interrupts a running sync with SIGINT: it must exit 0.
func stopSync(t *testing.T, p *clitest.Process) clitest.Result {
	t.Helper()
	select {
	case <-p.Done():
		res := p.Result()
		t.Fatalf("sync ended (exit %d) before it was stopped:\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	default:
	}
	p.Signal(t, syscall.SIGINT)
	<-p.Done()
	res := p.Result()
	if res.Code != 0 {
		t.Fatalf("sync stopped with SIGINT: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// cutover runs `cutover` for documents and checks its exit status; on a
// failure it shows the log of the running sync p too (when not nil).
func (s *syncDocs) cutover(p *clitest.Process, want int, extra ...string) clitest.Result {
	s.t.Helper()
	args := append([]string{"cutover", "--only", "documents"}, extra...)
	res := clitest.Run(s.t, s.env(), args...)
	if res.Code != want {
		log := "(sync not running)"
		if p != nil {
			log = syncTail(p.Stderr(), 40)
		}
		s.t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nsync's log (last lines):\n%s",
			strings.Join(args, " "), res.Code, want, res.Stdout, res.Stderr, log)
	}
	return res
}

// verifyUntilSynced runs verify until it exits 0 (the target caught up
// with the source while sync p polls), failing t with sync's log when it
// exits otherwise than 0 or 1, or still finds differences after two
// minutes.
func verifyUntilSynced(t *testing.T, env []string, verify []string, p *clitest.Process) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res := clitest.Run(t, env, verify...)
		if res.Code == 0 {
			return
		}
		if res.Code != 1 || time.Now().After(deadline) {
			t.Fatalf("verify while sync polls: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
		}
	}
}

// syncTail is the last n lines of text.
func syncTail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// syncPositions is what the target's sync state says of the documents
// stream: its position and the changes applied so far ("" before sync).
func (s *syncDocs) syncPositions() string {
	s.t.Helper()
	var out string
	err := s.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(position || ' ' || applied, ','), '')
		FROM baasmigrate.sync_streams WHERE kind = 'document'`).Scan(&out)
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		s.t.Fatal(err)
	}
	return out
}

// syncBackground is a writer running in the background.
type syncBackground struct {
	w      *syncwriter.Writer
	cancel context.CancelFunc
	done   chan error
}

// runWriter starts the writer; stop it with stop.
func runWriter(t *testing.T, w *syncwriter.Writer) *syncBackground {
	ctx, cancel := context.WithCancel(context.Background())
	b := &syncBackground{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- w.Run(ctx) }()
	t.Cleanup(cancel)
	return b
}

// stop stops the writer after its commit in flight and fails t if it
// failed.
func (b *syncBackground) stop(t *testing.T) {
	t.Helper()
	b.cancel()
	if err := <-b.done; err != nil {
		t.Fatalf("the writer failed: %v", err)
	}
	b.done <- nil
}

// waitCommits waits until the writer has made n commits in all.
func (b *syncBackground) waitCommits(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for b.w.Stats().Commits < n {
		select {
		case err := <-b.done:
			t.Fatalf("the writer ended at %d commits of %d: %v", b.w.Stats().Commits, n, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer made %d of %d commits in two minutes", b.w.Stats().Commits, n)
		}
		time.Sleep(2 * time.Millisecond) // polling the writer's progress
	}
}

// targetMapping is the mapping the target is in now: the one sync stored
// when it added tables for new collections (baasmigrate.sync_streams), else
// the one stored with the newest documents run, else the migration's file.
func (s *syncDocs) targetMapping() *mappings.Mapping {
	s.t.Helper()
	var text string
	err := s.pool.QueryRow(context.Background(), `SELECT coalesce(
		(SELECT mapping FROM baasmigrate.sync_streams WHERE kind = 'document' AND mapping <> '' ORDER BY updated_at DESC LIMIT 1),
		(SELECT config->>'mapping' FROM baasmigrate.runs WHERE kind = 'document' AND config ? 'mapping' ORDER BY id DESC LIMIT 1), '')`).Scan(&text)
	if err != nil {
		s.t.Fatal(err)
	}
	if text == "" {
		return loadMapping(s.t, s.mapping)
	}
	m, err := mappings.Parse([]byte(text), "(the target's stored mapping)")
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// compare checks the target against the source as it really is now (read
// through the official client), document by document: every live document
// in exactly one row with its fields and times, a placeholder row only for
// a missing parent of a live document, no row for a deleted one; and every
// collection the writer used, brand-new ones included, has a table.
func (s *syncDocs) compare() {
	s.t.Helper()
	m := s.targetMapping()
	tables := map[string]bool{}
	for _, tb := range m.Tables {
		segs := strings.Split(tb.Collection, "/")
		tables[segs[len(segs)-1]] = true
	}
	src := s.sourceDocs(s.w.Groups()...)
	live := map[string]bool{}
	for path := range src {
		segs := strings.Split(path, "/")
		live[segs[len(segs)-2]] = true
	}
	for g := range live {
		if !tables[g] {
			s.t.Errorf("collection group %s holds documents but has no table in the target's mapping", g)
		}
	}
	compareDocs(s.t, src, s.targetDocs(m))
	s.t.Logf("compared %d source documents of %d collection groups with %d tables; the writer: %+v",
		len(src), len(s.w.Groups()), len(m.Tables), s.w.Stats())
}

// syncStatusJSON is the part of `status --json` the tests read.
type syncStatusJSON struct {
	Syncs []struct {
		Kind            string    `json:"kind"`
		Mode            string    `json:"mode"`
		Running         bool      `json:"running"`
		ReadTime        time.Time `json:"read_time"`
		LagSeconds      float64   `json:"lag_seconds"`
		Applied         int64     `json:"applied"`
		Deleted         int64     `json:"deleted"`
		MappingExtended bool      `json:"mapping_extended"`
	} `json:"syncs"`
	Cutovers []struct {
		ID         int64
		FreezeTime time.Time
		Status     string
	} `json:"cutovers"`
}

// syncStatus runs `status --json` and decodes it.
func (s *syncDocs) syncStatus() syncStatusJSON {
	s.t.Helper()
	res := s.run(0, "status", "--json")
	var out syncStatusJSON
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	return out
}

// TestSyncWriterKilledAndCutover: a writer makes every kind of change
// (updates, adds, field deletes, brand-new collections and subcollections,
// deletes of leaves and of parents with children) while sync follows it and
// is killed -9 at random moments and restarted, several times; after the
// writer stops, cutover exits 0, and the target equals the source document
// by document.
func TestSyncWriterKilledAndCutover(t *testing.T) {
	seed := syncSeed(t)
	s := newSyncDocs(t, syncEmulatorHost(t), 400, syncwriter.Options{Seed: seed, Rate: 150, MaxBatch: 4, NewCollections: 6})
	r := rand.New(rand.NewPCG(seed, 11))
	bg := runWriter(t, s.w)
	for i := range 5 {
		before := s.syncPositions()
		p := s.startSync()
		// A random moment: sync has committed a batch in this run (its
		// position moved), then the writer made a random number of commits
		// more (sync may be reading, applying, or committing a batch).
		deadline := time.Now().Add(time.Minute)
		for s.syncPositions() == before {
			select {
			case <-p.Done():
				res := p.Result()
				t.Fatalf("sync %d ended by itself (exit %d):\n%s", i, res.Code, res.Stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("sync %d committed nothing in a minute:\n%s", i, syncTail(p.Stderr(), 40))
			}
			time.Sleep(2 * time.Millisecond) // polling the sync state
		}
		at := s.w.Stats().Commits + r.Int64N(40)
		bg.waitCommits(t, at)
		select {
		case <-p.Done():
			res := p.Result()
			t.Fatalf("sync %d ended by itself (exit %d):\n%s", i, res.Code, res.Stderr)
		default:
		}
		p.Kill()
		t.Logf("sync %d killed -9 after the writer's commit %d; state: %s", i, at, s.syncPositions())
	}
	p := s.startSync()
	bg.waitCommits(t, s.w.Stats().Commits+50)
	s.cutover(p, 0, "--prepare")
	bg.waitCommits(t, s.w.Stats().Commits+50)
	bg.stop(t)
	res := s.cutover(p, 0)
	t.Logf("cutover:\n%s", res.Stdout)
	// status tells the same story: a running documents stream that applied
	// the writer's changes, including deletes, extended the mapping, and
	// reflects the source at least up to the cutover's freeze point, which
	// is recorded as identical.
	st := s.syncStatus()
	if len(st.Syncs) != 1 || len(st.Cutovers) == 0 {
		t.Fatalf("status --json: %+v; want one sync and the cutovers", st)
	}
	sy, cut := st.Syncs[0], st.Cutovers[0]
	if sy.Kind != "document" || sy.Mode != "stream" || !sy.Running || sy.Applied == 0 || sy.Deleted == 0 || !sy.MappingExtended ||
		sy.ReadTime.Before(cut.FreezeTime) || cut.Status != "identical" {
		t.Errorf("status --json after cutover: sync %+v, last cutover %+v", sy, cut)
	}
	stopSync(t, p)
	if st := s.syncStatus(); st.Syncs[0].Running {
		t.Errorf("status says sync runs after it stopped: %+v", st.Syncs[0])
	}
	s.compare()
	if st := s.w.Stats(); st.ByOp[syncwriter.OpDeleteParent] == 0 || st.ByOp[syncwriter.OpNewSubcoll] == 0 || st.ByOp[syncwriter.OpFieldDelete] == 0 {
		t.Errorf("the writer did not make every kind of change: %v", st.ByOp)
	}
}

// syncEmulatorHost is the shared Firestore emulator of the local stack.
func syncEmulatorHost(t *testing.T) string { return testenv.FirestoreEmulatorHost(t) }

// TestSyncChangesBeforeSyncStarts: changes made between the end of migrate
// and the start of sync (every kind, deletes included) are applied.
func TestSyncChangesBeforeSyncStarts(t *testing.T) {
	seed := syncSeed(t)
	s := newSyncDocs(t, syncEmulatorHost(t), 300, syncwriter.Options{Seed: seed + 1, MaxBatch: 5})
	if err := s.w.Steps(context.Background(), 150); err != nil {
		t.Fatal(err)
	}
	// Without sync, the target is behind: verify sees the difference.
	s.run(1, "verify", "--only", "documents")
	p := s.startSync()
	s.cutover(p, 0)
	stopSync(t, p)
	s.compare()
}

// syncPastTheHistory prepares a sync that must catch up: against its own
// emulator keeping two seconds of history, it migrates the writer's
// documents, makes changes of every kind (new collections and
// subcollections, deletes), and waits until the emulator refuses to read at
// the migration's read time, so the position sync would start from is out
// of the source's window.
func syncPastTheHistory(t *testing.T) *syncDocs {
	t.Helper()
	seed := syncSeed(t)
	emu := firestoreemu.New(firestoreemu.Options{History: 2 * time.Second})
	t.Cleanup(func() { emu.Close() })
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(ln)
	s := newSyncDocs(t, ln.Addr().String(), 300, syncwriter.Options{Seed: seed + 2, MaxBatch: 4})
	ctx := context.Background()
	if err := s.w.Steps(ctx, 100); err != nil {
		t.Fatal(err)
	}
	var readTime time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(read_time) FROM baasmigrate.streams`).Scan(&readTime); err != nil {
		t.Fatal(err)
	}
	// WithReadOptions changes the client it is called on: probe with a
	// client of its own.
	probe, err := firestore.NewClient(ctx, s.project)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probe.WithReadOptions(firestore.ReadTime(readTime))
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := probe.Collection("probe").Doc("x").Get(ctx)
		if status.Code(err) == codes.FailedPrecondition {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator still reads at %s after a minute (last: %v)", readTime, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the emulator's window
	}
}

// TestSyncCatchesUpPastTheHistory: a sync whose starting read time has left
// the source's window says so, catches up by a snapshot comparison (new
// collections get tables, deletes are applied), then follows the writer;
// cutover exits 0 and the target is exact.
func TestSyncCatchesUpPastTheHistory(t *testing.T) {
	s := syncPastTheHistory(t)
	p := s.startSync()
	if !p.WaitStderr(t, "catching up by comparing a fresh snapshot", time.Minute) {
		t.Fatalf("sync ended without saying it catches up:\n%s", p.Result().Stderr)
	}
	if !p.WaitStderr(t, "by a snapshot comparison", time.Minute) {
		t.Fatalf("sync ended without saying it caught up:\n%s", p.Result().Stderr)
	}
	bg := runWriter(t, s.w)
	bg.waitCommits(t, s.w.Stats().Commits+60)
	bg.stop(t)
	s.cutover(p, 0)
	stopSync(t, p)
	s.compare()
}

// TestCutoverWhileSyncCatchesUp starts a sync that must catch up past the
// source's window (and add tables for collections that appeared meanwhile)
// with the writer running at once, and runs cutover as soon as the writer
// stops, without waiting for anything: cutover waits for sync, exits 0, and
// the target is exact.
func TestCutoverWhileSyncCatchesUp(t *testing.T) {
	s := syncPastTheHistory(t)
	p := s.startSync()
	bg := runWriter(t, s.w)
	bg.waitCommits(t, s.w.Stats().Commits+60)
	bg.stop(t)
	s.cutover(p, 0)
	stopSync(t, p)
	s.compare()
}

// TestSyncSurvivesStreamFaults cuts sync's Listen streams with UNAVAILABLE
// (after some documents, and at their start) while the writer runs:
// nothing is lost; cutover exits 0 and the target is exact.
func TestSyncSurvivesStreamFaults(t *testing.T) {
	seed := syncSeed(t)
	s := newSyncDocs(t, syncEmulatorHost(t), 300, syncwriter.Options{Seed: seed + 3, Rate: 150, MaxBatch: 4, NewCollections: 3})
	ctx := context.Background()
	hooks := firestoreemu.HooksFor(s.host)
	// The first two Listen calls fail at once; then four streams are cut
	// after 40 documents each: six faults, each followed by a reconnect.
	after := 40
	err := hooks.SetFaults(ctx, s.project, firestoreemu.FaultConfig{Seed: seed, Rules: []firestoreemu.FaultRule{
		{Methods: []string{"Listen"}, Code: "UNAVAILABLE", AfterDocuments: &after, Times: 4},
		{Methods: []string{"Listen"}, Code: "UNAVAILABLE", Times: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.ClearFaults(context.Background(), s.project) })
	p := s.startSync("--retry-backoff", "20ms")
	bg := runWriter(t, s.w)
	// Wait until every fault was injected into sync's streams.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := hooks.Faults(ctx, s.project)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, k := range st.Injected {
			n += k
		}
		if n >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 6 faults were injected in two minutes; sync's stderr:\n%s", n, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's fault status
	}
	bg.waitCommits(t, s.w.Stats().Commits+30)
	bg.stop(t)
	s.cutover(p, 0)
	stopSync(t, p)
	s.compare()
}

// TestSyncUsersAndFiles: Auth users and Cloud Storage objects are added,
// changed (profile, claims, disabled; new bytes, new metadata) and deleted
// while sync polls them; the target converges while sync runs; after more
// changes `cutover --only users,files` exits 0, and users (every field,
// providers, passwords) and files (rows and bytes) equal the source, with
// nothing left of what was deleted.
func TestSyncUsersAndFiles(t *testing.T) {
	seed := syncSeed(t)
	ctx := context.Background()
	uf := newUsersFixture(t)
	src := newFilesSource(t)
	dir := filepath.Join(t.TempDir(), "files")
	env := clitest.Env("FIREBASE_AUTH_EMULATOR_HOST="+uf.host, "STORAGE_EMULATOR_HOST="+src.host,
		"GCLOUD_PROJECT="+uf.project, "DATABASE_URL="+uf.dsn)
	run := func(want int, args ...string) clitest.Result {
		t.Helper()
		res := clitest.Run(t, env, args...)
		if res.Code != want {
			t.Fatalf("baasmigrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", usersRedact(args), res.Code, want, res.Stdout, res.Stderr)
		}
		return res
	}
	users, err := syncwriter.NewUsers(uf.client, seed, "su")
	if err != nil {
		t.Fatal(err)
	}
	files := syncwriter.NewFiles(src.client, filesBucket, seed, "sync")
	if err := users.Add(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if err := files.Add(ctx, 15); err != nil {
		t.Fatal(err)
	}
	kinds := append([]string{"--only", "users,files", "--firebase-project", uf.project, "--storage-bucket", filesBucket, "--objects", "file://" + dir}, usersHashFlags()...)
	run(0, append([]string{"migrate"}, kinds...)...)

	p := clitest.Start(t, env, append(append([]string{"sync", "-v"}, kinds...), "--poll-interval", "1s")...)
	changes := func(n int) {
		t.Helper()
		for range n {
			if err := users.Step(ctx); err != nil {
				t.Fatal(err)
			}
			if err := files.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Sync alone brings the target to the source.
	changes(15)
	deadline := time.Now().Add(time.Minute)
	for {
		du, df := syncUsersDiff(t, uf), syncFilesDiff(t, uf, src)
		if du == "" && df == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not converge within a minute: users %s; files %s\nstderr:\n%s", du, df, p.Stderr())
		}
		time.Sleep(50 * time.Millisecond) // polling the target for sync's polls
	}
	// Changes right before the freeze: cutover waits for them.
	changes(10)
	res := run(0, append([]string{"cutover"}, kinds...)...)
	t.Logf("cutover:\n%s", res.Stdout)
	stopSync(t, p)

	uf.usersCompareWithSource(uf.sourceUsers())
	passwords := map[string]string{}
	for i, uid := range users.Live() {
		if i%5 == 0 {
			passwords[uid] = syncwriter.Password(uid)
		}
	}
	usersCheckPasswords(t, env, passwords)
	src.objects = syncSourceObjects(t, src)
	ft := &filesTarget{t: t, url: "file://" + dir, dir: dir, dsn: uf.dsn, pool: uf.pool, env: env, work: t.TempDir()}
	ft.compare(src, nil)
	rows := ft.rows()
	for name := range rows {
		if _, ok := src.objects[name]; !ok {
			t.Errorf("%q: deleted at the source, still a row in the target", name)
		}
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if _, ok := src.objects[filepath.ToSlash(rel)]; !ok && !strings.HasPrefix(filepath.Base(path), ".") {
			t.Errorf("%q: deleted at the source, its bytes still in the target directory", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("users: %d added, %d changed, %d deleted; files: %d added, %d overwritten, %d retagged, %d deleted",
		users.Added, users.Changed, users.Deleted, files.Added, files.Overwritten, files.Retagged, files.Deleted)
}

// syncUsersDiff compares the source's users (Admin SDK) with the target's
// users table on uid, e-mail, name, flags and claims; "" when they agree,
// else a description of the first differences.
func syncUsersDiff(t *testing.T, uf *usersFixture) string {
	t.Helper()
	want := map[string]string{}
	for uid, u := range uf.sourceUsers() {
		claims, _ := json.Marshal(u.CustomClaims)
		if u.CustomClaims == nil {
			claims = nil
		}
		want[uid] = fmt.Sprintf("%s|%s|%v|%v|%s", u.Email, u.DisplayName, u.Disabled, u.EmailVerified, syncCanonJSON(claims))
	}
	got := map[string]string{}
	rows, err := uf.pool.Query(context.Background(), `SELECT uid, coalesce(email, ''), coalesce(display_name, ''), disabled, email_verified,
		coalesce(custom_claims::text, '') FROM firebase_auth.users`)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return "no users table yet"
		}
		t.Fatal(err)
	}
	for rows.Next() {
		var uid, email, name, claims string
		var disabled, verified bool
		if err := rows.Scan(&uid, &email, &name, &disabled, &verified, &claims); err != nil {
			t.Fatal(err)
		}
		got[uid] = fmt.Sprintf("%s|%s|%v|%v|%s", email, name, disabled, verified, syncCanonJSON([]byte(claims)))
	}
	rows.Close()
	return syncMapDiff(want, got)
}

// syncCanonJSON re-encodes JSON with sorted keys ("" for none).
func syncCanonJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// syncFilesDiff compares the source bucket's objects (name, generation,
// size, MD5, custom metadata) with the target's files table.
func syncFilesDiff(t *testing.T, uf *usersFixture, src *filesSource) string {
	t.Helper()
	ctx := context.Background()
	want := map[string]string{}
	it := src.client.Bucket(filesBucket).Objects(ctx, nil)
	for {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want[a.Name] = fmt.Sprintf("%d|%x|%v", a.Size, a.MD5, a.Metadata)
	}
	got := map[string]string{}
	rows, err := uf.pool.Query(ctx, `SELECT name, size, coalesce(md5, ''), metadata FROM public.files WHERE bucket = $1`, filesBucket)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return "no files table yet"
		}
		t.Fatal(err)
	}
	for rows.Next() {
		var name, md5 string
		var size int64
		var meta map[string]string
		if err := rows.Scan(&name, &size, &md5, &meta); err != nil {
			t.Fatal(err)
		}
		got[name] = fmt.Sprintf("%d|%s|%v", size, md5, meta)
	}
	rows.Close()
	return syncMapDiff(want, got)
}

// syncMapDiff describes up to five keys where want and got differ.
func syncMapDiff(want, got map[string]string) string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, k+": missing")
		} else if g != w {
			out = append(out, fmt.Sprintf("%s: %s, want %s", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+": extra")
		}
	}
	sort.Strings(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("… %d in all", len(out)))
	}
	return strings.Join(out, "; ")
}

// syncSourceObjects reads every object of the source bucket as it is now:
// bytes and the attributes filesTarget.compare checks.
func syncSourceObjects(t *testing.T, src *filesSource) map[string]*filesObject {
	t.Helper()
	ctx := context.Background()
	out := map[string]*filesObject{}
	it := src.client.Bucket(filesBucket).Objects(ctx, nil)
	for {
		a, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.client.Bucket(filesBucket).Object(a.Name).ReadCompressed(true).NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[a.Name] = &filesObject{name: a.Name, data: data, contentType: a.ContentType, cacheControl: a.CacheControl,
			contentEncoding: a.ContentEncoding, metadata: a.Metadata}
	}
}
