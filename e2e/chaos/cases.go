package chaos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"
	firebase "firebase.google.com/go/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/api/option"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/mappings"
)

// caseEnv is one case's source, target and the runs' command lines.
type caseEnv struct {
	cs   Case
	res  *Result
	dir  string
	dsn  string
	pool *pgxpool.Pool
	// env and args are a run without the fault; verifyArgs the check.
	env, args, verifyArgs []string
	seeded                int64
	rejectsExpected       bool
	// count compares the target with what was seeded.
	count func(ctx context.Context) (lost, dup int64, detail string, err error)

	project string
	// Files: the bucket, the object target, and the S3 client (nil for a
	// directory target).
	bucket, objDir, s3Bucket string
	s3                       *minio.Client
	gcsPID                   int
	// Proxies in front of a source or the object store, and the tmpfs
	// mount of a disk-full case.
	source      *faultProxy
	objectProxy *faultProxy
	mount       string

	closers []func()
	runs    int // runs started, for their log files
}

func (e *caseEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// progress is the number of records committed so far (0 before the state
// schema exists, or while PostgreSQL restarts).
func (e *caseEnv) progress(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, _ := testenv.CommittedRecords(ctx, e.pool)
	return n
}

// setup creates the case's source and target and seeds the source.
func (c *Campaign) setup(ctx context.Context, cs Case, res *Result) (*caseEnv, error) {
	e := &caseEnv{cs: cs, res: res}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	var err error
	if e.dir, err = c.caseDir(cs); err != nil {
		return nil, err
	}
	seq := fmt.Sprintf("%d%02d", time.Now().UnixNano()%1e9, c.seq)
	e.project = "demo-chaos-" + seq
	// The target database: the campaign's own cluster when it will be
	// restarted, else the shared one.
	admin, owner := c.cfg.PostgresAdminURL, c.cfg.PostgresURL
	if cs.Fault == PGRestart {
		if c.cluster == nil {
			if c.cluster, err = startCluster(c.cfg.PGBin); err != nil {
				res.Skipped = "cannot start a throwaway PostgreSQL cluster: " + err.Error()
				return nil, nil
			}
		}
		admin, owner = c.cluster.url("postgres"), c.cluster.url("postgres")
	}
	dsn, drop, err := createDatabase(ctx, admin, owner, "chaos_"+seq)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, drop)
	e.dsn = dsn
	if e.pool, err = pgxpool.New(ctx, dsn); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, e.pool.Close)

	base := []string{"DATABASE_URL=" + dsn, "GCLOUD_PROJECT=" + e.project}
	switch cs.Kind {
	case Documents:
		err = c.setupDocuments(ctx, e, base)
	case Users:
		err = c.setupUsers(ctx, e, base)
	case Files:
		err = c.setupFiles(ctx, e, base)
	}
	if err != nil || res.Skipped != "" {
		return nil, err
	}
	res.Seeded = e.seeded
	ok = true
	return e, nil
}

// environ is the binary's environment: PATH and HOME only, plus vars.
func environ(vars ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(env, vars...)
}

// --- documents ---------------------------------------------------------------

func (c *Campaign) setupDocuments(ctx context.Context, e *caseEnv, base []string) error {
	client, err := firestore.NewClient(ctx, e.project)
	if err != nil {
		return err
	}
	defer client.Close()
	k := max(c.cfg.Scale.DocumentsScale, 1)
	docs := demoapp.Documents(c.cfg.Seed+uint64(c.seq), demoapp.Scale{Users: 60 * k, Posts: 60 * k, CommentsPerPost: 3, Orders: 50 * k, ItemsPerOrder: 2, Archive: 10 * k})
	if err := demoapp.Seed(ctx, client, docs); err != nil {
		return err
	}
	e.seeded = int64(len(docs))
	e.closers = append(e.closers, func() {
		_ = c.hooks.ClearFaults(context.Background(), e.project)
		_ = c.hooks.Reset(context.Background(), e.project)
	})
	e.env = environ(append(base, "FIRESTORE_EMULATOR_HOST="+c.cfg.FirestoreHost)...)
	mapping := filepath.Join(e.dir, "mapping.yaml")
	if out := c.runToEnd(ctx, e, []string{"infer", "--out", mapping}, e.env); out.code != 0 {
		return fmt.Errorf("infer exited %d: %s", out.code, tail(out.stderr(), 400))
	}
	e.args = []string{"migrate", "--only", "documents", "--mapping", mapping, "--workers", "2", "--batch-size", "100",
		"--firestore-page-size", "200", "--retry-backoff", "20ms", "--no-progress"}
	e.verifyArgs = []string{"verify", "--only", "documents", "--mapping", mapping, "--no-progress"}
	m, err := mappings.Load(mapping)
	if err != nil {
		return err
	}
	e.count = func(ctx context.Context) (int64, int64, string, error) { return countDocuments(ctx, e.pool, m, docs) }
	return nil
}

// countDocuments compares the rows of every mapped table with the seeded
// documents plus one placeholder row per missing ancestor document.
func countDocuments(ctx context.Context, pool *pgxpool.Pool, m *mappings.Mapping, docs []demoapp.Doc) (lost, dup int64, detail string, err error) {
	want := map[string]int64{}
	exists := map[string]bool{}
	for _, d := range docs {
		exists[d.Path] = true
	}
	ancestors := map[string]bool{}
	for _, d := range docs {
		segs := strings.Split(d.Path, "/")
		for n := 2; n < len(segs); n += 2 {
			if p := strings.Join(segs[:n], "/"); !exists[p] {
				ancestors[p] = true
			}
		}
	}
	add := func(path string) error {
		pattern, _, err := mappings.PatternOf(path)
		if err != nil {
			return err
		}
		if t := m.TableFor(pattern); t != nil {
			want[t.Name]++
		}
		return nil
	}
	for p := range exists {
		if err := add(p); err != nil {
			return 0, 0, "", err
		}
	}
	for p := range ancestors {
		if err := add(p); err != nil {
			return 0, 0, "", err
		}
	}
	rejected, err := countRejects(ctx, pool, "")
	if err != nil {
		return 0, 0, "", err
	}
	var diffs []string
	var short int64
	for _, t := range m.Tables {
		var got int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{m.Schema, t.Name}.Sanitize()).Scan(&got); err != nil {
			return 0, 0, "", fmt.Errorf("counting %s: %w", t.Name, err)
		}
		if got != want[t.Name] {
			diffs = append(diffs, fmt.Sprintf("%s: %d rows, want %d", t.Name, got, want[t.Name]))
		}
		if got < want[t.Name] {
			short += want[t.Name] - got
		} else {
			dup += got - want[t.Name]
		}
	}
	lost = max(short-rejected, 0)
	return lost, dup, strings.Join(diffs, "; "), nil
}

// countRejects counts the distinct records rejected (of kind, or all).
func countRejects(ctx context.Context, pool *pgxpool.Pool, kind string) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT count(DISTINCT (kind, source_key)) FROM baasmigrate.rejects WHERE $1 = '' OR kind = $1`, kind).Scan(&n)
	var missing interface{ SQLState() string }
	if errors.As(err, &missing) && missing.SQLState() == "42P01" {
		return 0, nil
	}
	return n, err
}

// --- users ---------------------------------------------------------------------

func (c *Campaign) setupUsers(ctx context.Context, e *caseEnv, base []string) error {
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: e.project})
	if err != nil {
		return err
	}
	client, err := app.Auth(ctx)
	if err != nil {
		return err
	}
	n := max(c.cfg.Scale.Users, 1)
	if err := demoapp.SeedUsers(ctx, client, demoapp.VariedUsers(c.cfg.Seed+uint64(c.seq), "u%06d", n)); err != nil {
		return err
	}
	e.seeded = int64(n)
	host := c.cfg.AuthHost
	if e.cs.Fault == SourceErrors || e.cs.Fault == SourceStall {
		if e.source, err = newFaultProxy("http://"+host, false, c.cfg.Seed); err != nil {
			return err
		}
		e.closers = append(e.closers, e.source.unhold, e.source.close)
		host = e.source.HostPort()
	}
	e.env = environ(append(base, "FIREBASE_AUTH_EMULATOR_HOST="+host,
		"FIREBASE_HASH_SIGNER_KEY="+demoapp.HashSignerKey, "FIREBASE_HASH_SALT_SEPARATOR="+demoapp.HashSaltSeparator,
		fmt.Sprintf("FIREBASE_HASH_ROUNDS=%d", demoapp.HashRounds), fmt.Sprintf("FIREBASE_HASH_MEM_COST=%d", demoapp.HashMemCost))...)
	e.args = []string{"migrate", "--only", "users", "--batch-size", "50", "--auth-page-size", "50", "--retry-backoff", "20ms", "--no-progress"}
	e.verifyArgs = []string{"verify", "--only", "users", "--no-progress"}
	e.count = func(ctx context.Context) (int64, int64, string, error) {
		var rows, distinct int64
		if err := e.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT uid) FROM firebase_auth.users`).Scan(&rows, &distinct); err != nil {
			return 0, 0, "", fmt.Errorf("counting users: %w", err)
		}
		rejected, err := countRejects(ctx, e.pool, "")
		if err != nil {
			return 0, 0, "", err
		}
		detail := fmt.Sprintf("firebase_auth.users: %d rows (%d distinct uids), %d rejected, %d seeded", rows, distinct, rejected, e.seeded)
		return max(e.seeded-distinct-rejected, 0), max(rows-e.seeded, 0), detail, nil
	}
	return nil
}

// --- files ---------------------------------------------------------------------

func (c *Campaign) setupFiles(ctx context.Context, e *caseEnv, base []string) error {
	host, pid, err := c.storage()
	if err != nil {
		return err
	}
	e.gcsPID = pid
	client, err := storage.NewClient(ctx, option.WithEndpoint(host+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		return err
	}
	defer client.Close()
	e.bucket = e.project + ".appspot.com"
	n := max(c.cfg.Scale.Files, 1)
	bytes, err := demoapp.SeedFiles(ctx, client, e.bucket, n)
	if err != nil {
		return err
	}
	e.seeded = int64(n)
	gcs := host
	e.closers = append(e.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cl, err := storage.NewClient(ctx, option.WithEndpoint(gcs+"/storage/v1/"), option.WithoutAuthentication()); err == nil {
			_ = demoapp.ClearBucket(ctx, cl, e.bucket)
			_ = cl.Bucket(e.bucket).Delete(ctx)
			cl.Close()
		}
	})
	if e.cs.Fault == SourceErrors {
		if e.source, err = newFaultProxy(host, false, c.cfg.Seed); err != nil {
			return err
		}
		e.closers = append(e.closers, e.source.close)
		host = e.source.URL()
	}
	vars := append(base, "STORAGE_EMULATOR_HOST="+host)
	var objects string
	if e.cs.Fault == DiskFull {
		if os.Geteuid() != 0 {
			e.res.Skipped = "needs root to mount a tmpfs"
			return nil
		}
		e.mount = filepath.Join(e.dir, "tmpfs")
		if err := os.MkdirAll(e.mount, 0o755); err != nil {
			return err
		}
		// A quarter of the data fits.
		size := max(bytes/4, 1<<20)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", e.mount).CombinedOutput(); err != nil {
			e.res.Skipped = fmt.Sprintf("mount -t tmpfs failed: %v: %s", err, strings.TrimSpace(string(out)))
			return nil
		}
		e.closers = append(e.closers, func() { _ = exec.Command("umount", "-l", e.mount).Run() })
		e.res.note("directory target on a %d KiB tmpfs; %d KiB of files", size>>10, bytes>>10)
		e.objDir = filepath.Join(e.mount, "files")
		objects = "file://" + e.objDir
	} else {
		endpoint := c.cfg.S3Endpoint
		if e.cs.Fault == ObjectStoreErrors {
			if e.objectProxy, err = newFaultProxy(endpoint, true, c.cfg.Seed); err != nil {
				return err
			}
			e.closers = append(e.closers, e.objectProxy.close)
			endpoint = e.objectProxy.URL()
		}
		e.s3Bucket = strings.ToLower(strings.ReplaceAll(e.project, "_", "-"))
		objects = fmt.Sprintf("s3://%s?endpoint=%s&region=%s", e.s3Bucket, endpoint, c.cfg.S3Region)
		vars = append(vars, "AWS_ACCESS_KEY_ID="+c.cfg.S3AccessKey, "AWS_SECRET_ACCESS_KEY="+c.cfg.S3SecretKey)
		hostPort, secure := testenv.S3Config{Endpoint: c.cfg.S3Endpoint}.Host()
		if e.s3, err = minio.New(hostPort, &minio.Options{Creds: credentials.NewStaticV4(c.cfg.S3AccessKey, c.cfg.S3SecretKey, ""), Secure: secure, Region: c.cfg.S3Region}); err != nil {
			return err
		}
		e.closers = append(e.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for o := range e.s3.ListObjects(ctx, e.s3Bucket, minio.ListObjectsOptions{Recursive: true}) {
				_ = e.s3.RemoveObject(ctx, e.s3Bucket, o.Key, minio.RemoveObjectOptions{})
			}
			_ = e.s3.RemoveBucket(ctx, e.s3Bucket)
		})
	}
	e.env = environ(vars...)
	common := []string{"--only", "files", "--storage-bucket", e.bucket, "--objects", objects, "--no-progress"}
	e.args = append([]string{"migrate", "--workers", "2", "--batch-size", "10", "--objects-concurrency", "4", "--retry-backoff", "20ms"}, common...)
	e.verifyArgs = append([]string{"verify"}, common...)
	e.count = func(ctx context.Context) (int64, int64, string, error) { return e.countFiles(ctx) }
	return nil
}

// countFiles compares the files table and the objects in the target with
// the seeded objects.
func (e *caseEnv) countFiles(ctx context.Context) (lost, dup int64, detail string, err error) {
	var rows, distinct int64
	if err := e.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT name) FROM public.files WHERE bucket = $1`, e.bucket).Scan(&rows, &distinct); err != nil {
		return 0, 0, "", fmt.Errorf("counting files rows: %w", err)
	}
	rejected, err := countRejects(ctx, e.pool, "")
	if err != nil {
		return 0, 0, "", err
	}
	var objects, leftovers int64
	if e.s3 != nil {
		for o := range e.s3.ListObjects(ctx, e.s3Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				return 0, 0, "", fmt.Errorf("listing %s: %w", e.s3Bucket, o.Err)
			}
			objects++
		}
	} else {
		err := filepath.WalkDir(e.objDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.IsDir() && d.Name() == ".baasmigrate-tmp":
				entries, _ := os.ReadDir(p)
				leftovers += int64(len(entries))
				return filepath.SkipDir
			case d.Type().IsRegular():
				objects++
			}
			return nil
		})
		if err != nil {
			return 0, 0, "", fmt.Errorf("walking %s: %w", e.objDir, err)
		}
	}
	detail = fmt.Sprintf("files: %d rows (%d distinct names), %d objects, %d rejected, %d seeded", rows, distinct, objects, rejected, e.seeded)
	if leftovers > 0 {
		detail += fmt.Sprintf(", %d temporary files left", leftovers)
	}
	lost = max(e.seeded-distinct-rejected, e.seeded-objects-rejected, 0)
	dup = max(rows-e.seeded, objects-e.seeded, 0)
	return lost, dup, detail, nil
}
