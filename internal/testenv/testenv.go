// Package testenv connects tests to the local service stack that
// `make services-up` starts (scripts/services-up.sh): PostgreSQL, the
// Firestore emulator, the Firebase Auth emulator, fake-gcs-server and MinIO.
//
// Configuration comes from the process environment first and then from
// .local/services.env, found by walking up from the working directory to the
// directory holding go.mod (or from $BAASMIGRATE_LOCAL_DIR/services.env). So
// `go test ./...` works without the shell having sourced the file.
//
// Every accessor skips the calling test with a message naming the missing
// variable when a service is not configured, unless BAASMIGRATE_REQUIRE_SERVICES
// is "1" (as `make test` and CI set it): then it fails the test instead, so a
// run can never go green by silently skipping. A service that is configured
// but broken is always a failure, never a skip.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Environment variables read by this package and written by services-up.
const (
	// RequireServicesVar, when "1", turns every skip for a missing service
	// into a test failure.
	RequireServicesVar = "BAASMIGRATE_REQUIRE_SERVICES"
	// LocalDirVar overrides where services.env is looked for
	// ($BAASMIGRATE_LOCAL_DIR/services.env instead of <module root>/.local/).
	LocalDirVar = "BAASMIGRATE_LOCAL_DIR"
	// KeepDatabasesVar, when "1", keeps the databases of failed tests made
	// by NewDatabase, for inspection; their names are logged.
	KeepDatabasesVar = "BAASMIGRATE_KEEP_DATABASES"

	DatabaseURLVar       = "DATABASE_URL"
	PostgresAdminURLVar  = "BAASMIGRATE_PG_ADMIN_URL"
	FirestoreEmulatorVar = "FIRESTORE_EMULATOR_HOST"
	AuthEmulatorVar      = "FIREBASE_AUTH_EMULATOR_HOST"
	StorageEmulatorVar   = "STORAGE_EMULATOR_HOST"
	S3EndpointVar        = "S3_ENDPOINT"
	S3AccessKeyVar       = "S3_ACCESS_KEY"
	S3SecretKeyVar       = "S3_SECRET_KEY"
	S3RegionVar          = "AWS_REGION"
)

const (
	defaultS3Region       = "us-east-1"
	servicesEnvFile       = "services.env"
	postgresIdentifierMax = 63 // NAMEDATALEN - 1
	projectIDMax          = 30
	databaseTimeout       = 30 * time.Second
	randomSuffixBytes     = 4
)

var (
	loadOnce sync.Once
	fileVars map[string]string
	filePath string // the services.env that was loaded, or ""
	searched string // where services.env was looked for
	loadErr  error
)

// load reads services.env once per process. Values from the file that the
// process environment does not already define are also exported into the
// process environment (os.Setenv), exactly as sourcing the file would: the
// Firebase Admin SDK and Google's Go clients read FIREBASE_AUTH_EMULATOR_HOST,
// FIRESTORE_EMULATOR_HOST and STORAGE_EMULATOR_HOST from there.
func load() {
	loadOnce.Do(func() {
		filePath, loadErr = findEnvFile()
		if loadErr != nil || filePath == "" {
			return
		}
		f, err := os.Open(filePath)
		if err != nil {
			loadErr = fmt.Errorf("testenv: opening %s: %w", filePath, err)
			return
		}
		defer f.Close()
		fileVars, loadErr = parseEnv(f)
		if loadErr != nil {
			loadErr = fmt.Errorf("testenv: parsing %s: %w", filePath, loadErr)
			return
		}
		for k, v := range fileVars {
			if _, set := os.LookupEnv(k); !set {
				if err := os.Setenv(k, v); err != nil {
					loadErr = fmt.Errorf("testenv: exporting %s: %w", k, err)
					return
				}
			}
		}
	})
}

// findEnvFile returns the path of services.env, or "" when there is none.
func findEnvFile() (string, error) {
	if dir := os.Getenv(LocalDirVar); dir != "" {
		return existing(filepath.Join(dir, servicesEnvFile))
	}
	root, err := ModuleRoot()
	if errors.Is(err, errNoModule) {
		return "", nil // not inside a module: nothing to load
	}
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	return existing(filepath.Join(root, ".local", servicesEnvFile))
}

var errNoModule = errors.New("not inside the baasmigrate module (no go.mod above the working directory)")

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory: where tests, benchmarks and scripts find the
// checkout.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoModule
		}
		dir = parent
	}
}

func existing(path string) (string, error) {
	searched = path
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("testenv: %w", err)
	}
	return path, nil
}

// parseEnv reads the `export KEY='value'` lines that services-up writes.
// It accepts blank lines, # comments, an optional "export ", and values that
// are bare, 'single-quoted' (literal) or "double-quoted" (no escapes).
func parseEnv(r io.Reader) (map[string]string, error) {
	vars := make(map[string]string)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t'\"") {
			return nil, fmt.Errorf("line %d: want KEY=value", n)
		}
		if len(value) >= 2 && (value[0] == '\'' || value[0] == '"') {
			if value[len(value)-1] != value[0] {
				return nil, fmt.Errorf("line %d: unterminated quote in %s", n, key)
			}
			value = value[1 : len(value)-1]
		}
		vars[key] = value
	}
	return vars, sc.Err()
}

// Lookup returns the value of key from the process environment or, failing
// that, from services.env. It reports whether the key was found with a
// non-empty value. A services.env that cannot be read or parsed makes every
// later accessor call fail; Lookup itself just reports the key as absent.
func Lookup(key string) (string, bool) {
	load()
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v, true
	}
	v, ok := fileVars[key]
	return v, ok && v != ""
}

// ServicesRequired reports whether BAASMIGRATE_REQUIRE_SERVICES=1, i.e.
// whether a missing service fails tests instead of skipping them.
func ServicesRequired() bool {
	v := os.Getenv(RequireServicesVar)
	return v == "1" || strings.EqualFold(v, "true")
}

// require returns the values of keys, or skips (or, when services are
// required, fails) t naming the service and the first missing variable.
func require(t testing.TB, service string, keys ...string) []string {
	t.Helper()
	load()
	if loadErr != nil {
		t.Fatalf("%v", loadErr)
	}
	values := make([]string, len(keys))
	for i, k := range keys {
		v, ok := Lookup(k)
		if !ok {
			where := "the environment has no " + k + " and no services.env was found"
			if searched != "" {
				where += " (looked for " + searched + ")"
			}
			if filePath != "" {
				where = "neither the environment nor " + filePath + " sets " + k
			}
			msg := fmt.Sprintf("%s is not configured: %s; run `make services-up`", service, where)
			if ServicesRequired() {
				t.Fatalf("%s (%s=1 forbids skipping)", msg, RequireServicesVar)
			} else {
				t.Skip(msg)
			}
			return nil // unreachable with a real testing.TB
		}
		values[i] = v
	}
	return values
}

// PostgresURL returns the DSN (DATABASE_URL) of the stack's `baasmigrate`
// database, as role `baasmigrate`, which has CREATEDB and a password. Tests
// that write should prefer NewDatabase, which isolates them.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return require(t, "PostgreSQL", DatabaseURLVar)[0]
}

// PostgresAdminURL returns a superuser DSN (BAASMIGRATE_PG_ADMIN_URL) for
// the rare test that needs one, e.g. to create roles or extensions.
func PostgresAdminURL(t testing.TB) string {
	t.Helper()
	return require(t, "PostgreSQL (superuser)", PostgresAdminURLVar)[0]
}

// FirestoreEmulatorHost returns FIRESTORE_EMULATOR_HOST (host:port, no
// scheme), which cloud.google.com/go/firestore also reads by itself.
func FirestoreEmulatorHost(t testing.TB) string {
	t.Helper()
	return require(t, "the Firestore emulator", FirestoreEmulatorVar)[0]
}

// AuthEmulatorHost returns FIREBASE_AUTH_EMULATOR_HOST (host:port, no
// scheme), which the Firebase Admin SDK also reads by itself. The emulator
// keeps one user store per project id: use FreshProjectID to isolate tests.
func AuthEmulatorHost(t testing.TB) string {
	t.Helper()
	return require(t, "the Firebase Auth emulator", AuthEmulatorVar)[0]
}

// StorageEmulatorHost returns STORAGE_EMULATOR_HOST as services-up writes
// it: a URL with scheme ("http://127.0.0.1:PORT"), the form both
// cloud.google.com/go/storage (which reads it by itself) and Node's
// @google-cloud/storage accept. Bucket names are global in the emulator:
// tests should make unique ones.
func StorageEmulatorHost(t testing.TB) string {
	t.Helper()
	return require(t, "the Cloud Storage emulator (fake-gcs-server)", StorageEmulatorVar)[0]
}

// S3Config is how to reach the stack's S3-compatible store (MinIO).
type S3Config struct {
	// Endpoint is a URL with scheme, e.g. "http://127.0.0.1:9000".
	Endpoint string
	// AccessKey and SecretKey are the MinIO root credentials.
	AccessKey string
	SecretKey string
	// Region is AWS_REGION, "us-east-1" when unset.
	Region string
}

// Host returns the endpoint without its scheme, as minio-go wants it, and
// whether the scheme is https.
func (c S3Config) Host() (host string, secure bool) {
	if u, err := url.Parse(c.Endpoint); err == nil && u.Host != "" {
		return u.Host, u.Scheme == "https"
	}
	return c.Endpoint, false
}

// S3 returns the S3 endpoint and credentials (S3_ENDPOINT, S3_ACCESS_KEY,
// S3_SECRET_KEY, AWS_REGION). Bucket names are shared by all tests: make
// unique ones.
func S3(t testing.TB) S3Config {
	t.Helper()
	v := require(t, "the S3 store (MinIO)", S3EndpointVar, S3AccessKeyVar, S3SecretKeyVar)
	region, ok := Lookup(S3RegionVar)
	if !ok {
		region = defaultS3Region
	}
	return S3Config{Endpoint: v[0], AccessKey: v[1], SecretKey: v[2], Region: region}
}

// NewDatabase creates an empty database with a unique name derived from the
// test's name, owned by the DATABASE_URL role, and returns its DSN. The
// database is dropped in t.Cleanup (with FORCE, so connections a test left
// open do not block it), unless the test failed and
// BAASMIGRATE_KEEP_DATABASES=1. Skips like PostgresURL when PostgreSQL is
// not configured; fails when it is configured but cannot create the database.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	name := UniqueName("test_"+t.Name(), postgresIdentifierMax)
	ident := pgx.Identifier{name}.Sanitize()

	if err := execOnce(base, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv(KeepDatabasesVar) == "1" {
			t.Logf("testenv: kept database %s of the failed test (%s=1)", name, KeepDatabasesVar)
			return
		}
		drop := "DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)"
		err := execOnce(base, drop)
		var pgErr *pgconn.PgError
		if admin, ok := Lookup(PostgresAdminURLVar); ok && errors.As(err, &pgErr) && pgErr.Code == "42501" {
			// A session of another role is on the database (an
			// autovacuum worker, say): only a superuser may end it.
			err = execOnce(admin, drop)
		}
		if err != nil {
			t.Errorf("testenv: dropping database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// execOnce runs one statement on a short-lived connection to dsn.
func execOnce(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), databaseTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		// pgx errors carry host and user, never the password.
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns dsn with its database replaced by name. It handles
// URLs (postgres://...) and keyword/value DSNs (where a later dbname wins).
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("DATABASE_URL is not a valid URL") // the error would quote the password
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}

// NewPool returns a connection pool on a fresh database (NewDatabase),
// closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewDatabase(t))
	if err != nil {
		t.Fatalf("testenv: connecting to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// FreshProjectID returns a project id no other test uses, such as
// "demo-freshprojec-1a2b3c4d": a "demo-" prefix (which keeps firebase-tools
// and the SDKs from ever contacting Google for it), part of the test's name,
// and random hex; at most 30 characters of [a-z0-9-], as Google requires.
// The emulators keep separate data per project id, so this isolates tests.
func FreshProjectID(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if b.Len() == 12 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	id := "demo-" + b.String() + "-" + randomHex(randomSuffixBytes)
	if len(id) > projectIDMax { // cannot happen with the sizes above
		t.Fatalf("testenv: project id %q too long", id)
	}
	return id
}

// UniqueName returns prefix, lower-cased with every character outside
// [a-z0-9_] replaced by '_', truncated so that with a '_' and 8 random hex
// digits appended it fits in maxLen bytes. Use it for database, schema and
// table names that tests running in parallel must not share. Bucket names
// forbid '_': replace it with '-' for those.
func UniqueName(prefix string, maxLen int) string {
	suffix := "_" + randomHex(randomSuffixBytes)
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if b.Len()+len(suffix) >= maxLen {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + suffix
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(buf)
}

// RowQuerier is what CommittedRecords reads through: a pgx pool,
// connection or transaction.
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CommittedRecords returns how many records the checkpoints of every run
// in db's database cover: the sum of baasmigrate.partition_counts.read,
// which grows only when a batch commits with its checkpoint. It is 0
// before the state schema exists (the first instants of a run). Kill-and-
// resume tests compare it with the rows stored, and poll it (Committed) to
// kill a run at a chosen point.
func CommittedRecords(ctx context.Context, db RowQuerier) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT coalesce(sum(read), 0) FROM baasmigrate.partition_counts`).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("counting the records the checkpoints cover: %w", err)
	}
	return n, nil
}

// committedPollTimeout bounds one poll of Committed.
const committedPollTimeout = 2 * time.Second

// Committed returns a function polling CommittedRecords, for
// clitest.KillAt's progress and waiting loops: it reports 0 while the count
// cannot be read (a target restarting, say), and waits at most two seconds
// per call. It is safe to call from any goroutine.
func Committed(db RowQuerier) func() int64 {
	return func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), committedPollTimeout)
		defer cancel()
		n, _ := CommittedRecords(ctx, db)
		return n
	}
}

// ServicePID is the process id of a service `make services-up` started
// on this machine (name as in scripts/lib.sh: "firestoreemu", "postgres",
// …), read from the pid file beside services.env; 0 when there is none.
func ServicePID(name string) int {
	load()
	if filePath == "" {
		return 0
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(filePath), "run", name+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
