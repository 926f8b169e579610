// Package chaos is the fault campaign behind `make chaos`: for each kind of
// record (documents, users, files) and each fault (kill -9, PostgreSQL
// restart, source stall, source errors, object store errors, disk full,
// SIGTERM) it seeds a source with a known dataset, runs the real
// baasmigrate binary under the fault, re-runs it without the fault until it
// finishes, and checks the target twice: with `baasmigrate verify` and by
// counting rows and objects directly against what was seeded. A case fails
// when anything was lost or duplicated, the target does not verify, or the
// binary did not react to the fault as the CLI contract says (exit 3 on
// SIGTERM, a stalled source cut within --source-timeout, exit 2 on a full
// disk).
//
// Random choices (where to kill, which calls fail) come from one seed,
// printed in the report, so a campaign can be repeated.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/extractors/gcs/gcstest"
)

// Kind is a kind of record the campaign migrates.
type Kind string

// The kinds, as `migrate --only` names them.
const (
	Documents Kind = "documents"
	Users     Kind = "users"
	Files     Kind = "files"
)

// Kinds lists every kind, in campaign order.
var Kinds = []Kind{Documents, Users, Files}

// Fault is a kind of failure injected into one run.
type Fault string

// The faults.
const (
	// Kill9 kills the binary with SIGKILL at seeded random points of its
	// progress (twice).
	Kill9 Fault = "kill9"
	// PGRestart restarts the target PostgreSQL (a throwaway cluster the
	// campaign starts itself) mid-run with pg_ctl restart -m fast.
	PGRestart Fault = "pg-restart"
	// SourceStall makes the source stop answering mid-run: the Firestore
	// emulator's stall fault, SIGSTOP of the campaign's fake-gcs-server, a
	// frozen TCP proxy in front of the Auth emulator. The run gets
	// --source-timeout (Config.SourceTimeout).
	SourceStall Fault = "source-stall"
	// SourceErrors makes a share of source calls fail with retryable
	// errors (UNAVAILABLE, RESOURCE_EXHAUSTED, cut streams, HTTP 503/429,
	// cut connections).
	SourceErrors Fault = "source-errors"
	// ObjectStoreErrors puts an error-injecting, connection-cutting proxy
	// in front of MinIO (files only).
	ObjectStoreErrors Fault = "objectstore-errors"
	// DiskFull copies files to a directory on a tmpfs too small for them
	// (files only; needs root to mount), then grows it for the re-run.
	DiskFull Fault = "disk-full"
	// SIGTERM sends SIGTERM at a seeded random point: the binary must stop
	// with exit status 3 ("interrupted, run again to resume").
	SIGTERM Fault = "sigterm"
)

// Faults lists every fault, in campaign order.
var Faults = []Fault{Kill9, PGRestart, SourceStall, SourceErrors, ObjectStoreErrors, DiskFull, SIGTERM}

// Case is one cell of the matrix.
type Case struct {
	Kind  Kind
	Fault Fault
}

func (c Case) String() string { return string(c.Kind) + "/" + string(c.Fault) }

// ParseCase parses "kind/fault".
func ParseCase(s string) (Case, error) {
	k, f, ok := strings.Cut(s, "/")
	c := Case{Kind(k), Fault(f)}
	if !ok || !contains(Kinds, c.Kind) || !contains(Faults, c.Fault) {
		return c, fmt.Errorf("%q is not a case: want KIND/FAULT, KIND one of %v, FAULT one of %v", s, Kinds, Faults)
	}
	return c, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Applicable says whether the fault exists for the kind, and if not why.
func (c Case) Applicable() (bool, string) {
	switch {
	case c.Fault == ObjectStoreErrors && c.Kind != Files:
		return false, "only files use the object store"
	case c.Fault == DiskFull && c.Kind != Files:
		return false, "disk full is exercised on the files directory target; PostgreSQL out of space is not in this campaign"
	}
	return true, ""
}

// Matrix returns every applicable case, kinds outer, faults inner.
func Matrix() []Case {
	var out []Case
	for _, k := range Kinds {
		for _, f := range Faults {
			if ok, _ := (Case{k, f}).Applicable(); ok {
				out = append(out, Case{k, f})
			}
		}
	}
	return out
}

// Scale sets the size of each case's dataset.
type Scale struct {
	// DocumentsScale multiplies a base of about 700 documents.
	DocumentsScale int
	Users          int
	Files          int
}

// Small is for the tests' slice of the campaign; Full for `make chaos`.
var (
	Small = Scale{DocumentsScale: 1, Users: 300, Files: 40}
	Full  = Scale{DocumentsScale: 10, Users: 6000, Files: 300}
)

// Config is where the services are and how the campaign runs.
type Config struct {
	// Binary is the baasmigrate binary to run.
	Binary string
	// PostgresURL is a DSN (URL form) of a role that may create
	// databases; PostgresAdminURL a superuser's (used to create and drop
	// the campaign's databases).
	PostgresURL, PostgresAdminURL string
	// FirestoreHost and AuthHost are the emulators (host:port). The
	// process environment's FIRESTORE_EMULATOR_HOST and
	// FIREBASE_AUTH_EMULATOR_HOST must name the same ones (the Go clients
	// read them).
	FirestoreHost, AuthHost string
	// StorageHost is a fake-gcs-server with the memory backend
	// ("http://host:port") that the campaign may SIGSTOP: StoragePID is its
	// process id. When empty, the campaign starts one from FakeGCSBinary.
	StorageHost   string
	StoragePID    int
	FakeGCSBinary string
	// S3 is MinIO.
	S3Endpoint, S3AccessKey, S3SecretKey, S3Region string
	// PGBin holds initdb and pg_ctl, for the campaign's own cluster (the
	// PostgreSQL restart cases); empty: found like scripts/lib.sh does.
	PGBin string
	// WorkDir holds mappings, summaries, directory targets and the
	// throwaway cluster; empty: a temporary directory.
	WorkDir string
	// Seed drives every random choice.
	Seed  uint64
	Scale Scale
	// SourceTimeout is passed as --source-timeout in stall cases.
	SourceTimeout time.Duration
	// RunTimeout bounds one run of the binary (it is killed after it).
	RunTimeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Result is the outcome of one case.
type Result struct {
	Case Case
	// Skipped is why the case did not run ("" when it ran).
	Skipped string
	// Seeded is the number of records the source was seeded with.
	Seeded int64
	// Injected describes the faults injected ("2 × kill -9 at 312, 977").
	Injected []string
	// Exits are the exit statuses of the runs in order: the runs under the
	// fault, then the re-runs without it (-1: killed by a signal).
	Exits []int
	// Verify is `baasmigrate verify`'s exit status (0: identical).
	Verify int
	// Lost and Duplicated come from the direct count: records seeded but
	// not in the target (and not rejected), and rows or objects beyond
	// the seeded ones.
	Lost, Duplicated int64
	// StallDetect is how long the stalled source went unnoticed (0 when
	// not a stall case or not detected: see Problems).
	StallDetect time.Duration
	// Problems lists everything that makes the case fail.
	Problems []string
	// Notes are observations that do not fail the case.
	Notes    []string
	Duration time.Duration
}

// OK reports whether the case passed (or was skipped).
func (r *Result) OK() bool { return r.Skipped != "" || len(r.Problems) == 0 }

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Campaign runs cases. It owns the processes it started (a fake-gcs-server,
// a PostgreSQL cluster, proxies, tmpfs mounts) until Close.
type Campaign struct {
	cfg     Config
	rng     *rand.Rand
	hooks   *firestoreemu.Hooks
	gcs     *gcstest.Server // nil when Config.StorageHost was given
	cluster *cluster
	cleanup []func()
	seq     int
	ownWork bool
}

// New checks cfg and prepares a campaign.
func New(cfg Config) (*Campaign, error) {
	for name, v := range map[string]string{"Binary": cfg.Binary, "PostgresURL": cfg.PostgresURL, "PostgresAdminURL": cfg.PostgresAdminURL,
		"FirestoreHost": cfg.FirestoreHost, "AuthHost": cfg.AuthHost, "S3Endpoint": cfg.S3Endpoint} {
		if v == "" {
			return nil, fmt.Errorf("chaos: Config.%s is not set", name)
		}
	}
	if os.Getenv("FIRESTORE_EMULATOR_HOST") != cfg.FirestoreHost || os.Getenv("FIREBASE_AUTH_EMULATOR_HOST") != cfg.AuthHost {
		return nil, errors.New("chaos: FIRESTORE_EMULATOR_HOST and FIREBASE_AUTH_EMULATOR_HOST must name Config.FirestoreHost and Config.AuthHost (the Go clients read them)")
	}
	if cfg.Scale == (Scale{}) {
		cfg.Scale = Small
	}
	if cfg.SourceTimeout == 0 {
		cfg.SourceTimeout = 5 * time.Second
	}
	if cfg.RunTimeout == 0 {
		cfg.RunTimeout = 2 * time.Minute
	}
	if cfg.S3Region == "" {
		cfg.S3Region = "us-east-1"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	c := &Campaign{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), hooks: firestoreemu.HooksFor(cfg.FirestoreHost)}
	if c.cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "baasmigrate-chaos-")
		if err != nil {
			return nil, fmt.Errorf("chaos: creating a work directory: %w", err)
		}
		c.cfg.WorkDir, c.ownWork = dir, true
	}
	return c, nil
}

// Close stops everything the campaign started and removes what it created.
func (c *Campaign) Close() error {
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		c.cleanup[i]()
	}
	c.cleanup = nil
	if c.cluster != nil {
		c.cluster.stop()
		c.cluster = nil
	}
	if c.gcs != nil {
		c.gcs.Stop()
		c.gcs = nil
	}
	if c.ownWork {
		return os.RemoveAll(c.cfg.WorkDir)
	}
	return nil
}

func (c *Campaign) logf(format string, args ...any) {
	fmt.Fprintf(c.cfg.Log, "[chaos] "+format+"\n", args...)
}

// storage returns the fake-gcs-server to use, starting it on first use.
func (c *Campaign) storage() (host string, pid int, err error) {
	if c.cfg.StorageHost != "" {
		return c.cfg.StorageHost, c.cfg.StoragePID, nil
	}
	if c.gcs == nil {
		if c.cfg.FakeGCSBinary == "" {
			return "", 0, errors.New("chaos: no fake-gcs-server binary (set BAASMIGRATE_FAKE_GCS_SERVER or run make services-up)")
		}
		// The campaign's own server, so a stall case may SIGSTOP it.
		if c.gcs, err = gcstest.Start(c.cfg.FakeGCSBinary); err != nil {
			return "", 0, err
		}
	}
	return c.gcs.URL, c.gcs.Process.Pid, nil
}

// Run runs one case. Errors of the harness itself (a service it could not
// reach) are returned; everything about baasmigrate is in the Result.
func (c *Campaign) Run(ctx context.Context, cs Case) (*Result, error) {
	res := &Result{Case: cs}
	if ok, why := cs.Applicable(); !ok {
		res.Skipped = why
		return res, nil
	}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	c.seq++
	c.logf("%s: seeding", cs)
	env, err := c.setup(ctx, cs, res)
	if err != nil || res.Skipped != "" {
		return res, err
	}
	defer env.close()
	c.logf("%s: %d %s seeded; running under the fault", cs, res.Seeded, cs.Kind)
	if err := c.inject(ctx, env); err != nil {
		return res, err
	}
	// Without the fault, until it finishes (at most three runs).
	for attempt := 0; ; attempt++ {
		out := c.runToEnd(ctx, env, env.args, env.env)
		res.Exits = append(res.Exits, out.code)
		if out.code == 0 || (out.code == 1 && env.rejectsExpected) {
			break
		}
		if attempt == 2 {
			res.problem("the re-runs without the fault did not finish: exits %v; last stderr: %s", res.Exits, tail(out.stderr(), 600))
			break
		}
	}
	c.logf("%s: exits %v; verifying", cs, res.Exits)
	out := c.runToEnd(ctx, env, env.verifyArgs, env.env)
	res.Verify = out.code
	if out.code != 0 {
		res.problem("verify exited %d: %s", out.code, tail(out.stdout+out.stderr(), 600))
	}
	env.pool.Reset() // connections may predate a PostgreSQL restart
	lost, dup, detail, err := env.count(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: counting the target: %w", cs, err)
	}
	res.Lost, res.Duplicated = lost, dup
	if lost != 0 || dup != 0 {
		res.problem("direct count: %d lost, %d duplicated (%s)", lost, dup, detail)
	}
	c.logf("%s: done in %s: lost %d, duplicated %d, verify %d, problems %d", cs, time.Since(start).Round(time.Millisecond), lost, dup, res.Verify, len(res.Problems))
	return res, nil
}

// withDatabase returns dsn (a URL) naming database db instead.
func withDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", errors.New("chaos: the PostgreSQL DSN is not a URL")
	}
	u.Path = "/" + db
	return u.String(), nil
}

// createDatabase creates database name owned by the role of ownerDSN,
// through the superuser DSN admin, and returns a DSN of the owner on it and
// a function dropping it.
func createDatabase(ctx context.Context, admin, ownerDSN, name string) (string, func(), error) {
	owner, err := url.Parse(ownerDSN)
	if err != nil {
		return "", nil, errors.New("chaos: the PostgreSQL DSN is not a URL")
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connecting as the PostgreSQL superuser: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER "+pgx.Identifier{owner.User.Username()}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	dsn, err := withDatabase(ownerDSN, name)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			conn.Close(ctx)
		}
	}
	return dsn, drop, err
}

// tail returns the last n bytes of s, on one line.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return strings.ReplaceAll(s, "\n", " ⏎ ")
}

// caseDir is the work directory of the current case.
func (c *Campaign) caseDir(cs Case) (string, error) {
	dir := filepath.Join(c.cfg.WorkDir, fmt.Sprintf("%02d-%s-%s", c.seq, cs.Kind, cs.Fault))
	return dir, os.MkdirAll(dir, 0o755)
}
