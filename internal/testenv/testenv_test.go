package testenv

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestParseEnv(t *testing.T) {
	in := `# Written by scripts/services-up.sh
export DATABASE_URL='postgres://u:p@127.0.0.1:5/db?sslmode=disable'

# a comment
export BARE=value=with=equals
PLAIN="double quoted"
export EMPTY=''
`
	got, err := parseEnv(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"DATABASE_URL": "postgres://u:p@127.0.0.1:5/db?sslmode=disable",
		"BARE":         "value=with=equals",
		"PLAIN":        "double quoted",
		"EMPTY":        "",
	}
	if len(got) != len(want) {
		t.Errorf("got %d vars %v, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestParseEnvRejectsGarbage(t *testing.T) {
	for _, in := range []string{"no equals sign", "export X='unterminated", "=value", "A B=c"} {
		if _, err := parseEnv(strings.NewReader(in)); err == nil {
			t.Errorf("parseEnv(%q) = nil error, want one", in)
		}
	}
}

// fakeTB records Skip and Fatal instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skip(args ...any)               { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed, f.msg = true, fmt.Sprintf(format, a...) }

func TestMissingServiceSkipsOrFails(t *testing.T) {
	const key = "BAASMIGRATE_TESTENV_NEVER_SET"
	if _, ok := Lookup(key); ok {
		t.Fatalf("%s is set; this test needs it unset", key)
	}

	t.Setenv(RequireServicesVar, "")
	f := &fakeTB{TB: t}
	require(f, "the widget service", key)
	if !f.skipped || f.failed {
		t.Errorf("without %s: skipped=%v failed=%v, want a skip", RequireServicesVar, f.skipped, f.failed)
	}
	if !strings.Contains(f.msg, key) || !strings.Contains(f.msg, "the widget service") {
		t.Errorf("skip message %q should name the service and %s", f.msg, key)
	}

	t.Setenv(RequireServicesVar, "1")
	f = &fakeTB{TB: t}
	require(f, "the widget service", key)
	if f.skipped || !f.failed {
		t.Errorf("with %s=1: skipped=%v failed=%v, want a failure", RequireServicesVar, f.skipped, f.failed)
	}
}

func TestProcessEnvWinsOverFile(t *testing.T) {
	load()
	for k := range fileVars {
		t.Setenv(k, "from-process")
		if v, _ := Lookup(k); v != "from-process" {
			t.Errorf("Lookup(%s) = %q, want the process value", k, v)
		}
		return // one key is enough
	}
	t.Skip("no .local/services.env to compare against")
}

func TestUniqueName(t *testing.T) {
	long := strings.Repeat("Ab/-", 40)
	a, b := UniqueName(long, 63), UniqueName(long, 63)
	if a == b {
		t.Errorf("two calls returned the same name %q", a)
	}
	if len(a) > 63 {
		t.Errorf("len(%q) = %d, want <= 63", a, len(a))
	}
	if !regexp.MustCompile(`^ab__+.*_[0-9a-f]{8}$`).MatchString(a) {
		t.Errorf("UniqueName(%q) = %q, want it sanitised with a hex suffix", long, a)
	}
}

func TestFreshProjectID(t *testing.T) {
	re := regexp.MustCompile(`^demo-[a-z0-9]{0,12}-[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for range 100 {
		id := FreshProjectID(t)
		if !re.MatchString(id) || len(id) > 30 {
			t.Fatalf("FreshProjectID = %q, want demo-<name>-<hex>, <= 30 chars", id)
		}
		if seen[id] {
			t.Fatalf("FreshProjectID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p%40ss@127.0.0.1:5432/base?sslmode=disable", "t_x")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://u:p%40ss@127.0.0.1:5432/t_x?sslmode=disable"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, _ := withDatabase("host=h dbname=base", "t_x"); got != "host=h dbname=base dbname=t_x" {
		t.Errorf("keyword/value: got %q", got)
	}
	if _, err := withDatabase("postgres://u:secret@[bad", "x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: err = %v, want an error that does not quote the password", err)
	}
}

// TestNewDatabase needs the stack's PostgreSQL: the database exists, is
// empty and current while the test runs, and is gone after its cleanup.
func TestNewDatabase(t *testing.T) {
	base := PostgresURL(t)
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		// Cleanups run last-in first-out: this one runs after NewDatabase's
		// drop, so the drop meets an open connection and must force it.
		var conn *pgx.Conn
		t.Cleanup(func() {
			if conn != nil {
				conn.Close(ctx)
			}
		})
		dsn := NewDatabase(t)
		var err error
		conn, err = pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "test_testnewdatabase_inner_") {
			t.Errorf("database name %q does not derive from the test name", name)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("fresh database has %d tables", tables)
		}
	})
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if name == "" || exists {
		t.Errorf("database %q still exists after the test's cleanup", name)
	}
}

// TestCommittedRecords: 0 without the state schema, the sum of the
// partitions' read counts with it, and an error (0 from Committed) when
// the database cannot be read.
func TestCommittedRecords(t *testing.T) {
	ctx := context.Background()
	pool := NewPool(t)
	if n, err := CommittedRecords(ctx, pool); n != 0 || err != nil {
		t.Fatalf("before the state schema: %d, %v; want 0, nil", n, err)
	}
	for _, stmt := range []string{
		`CREATE SCHEMA baasmigrate`,
		`CREATE TABLE baasmigrate.partition_counts (read bigint NOT NULL)`,
		`INSERT INTO baasmigrate.partition_counts VALUES (3), (4)`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := CommittedRecords(ctx, pool); n != 7 || err != nil {
		t.Fatalf("CommittedRecords = %d, %v; want 7", n, err)
	}
	if n := Committed(pool)(); n != 7 {
		t.Fatalf("Committed = %d; want 7", n)
	}
	pool.Close()
	if _, err := CommittedRecords(ctx, pool); err == nil {
		t.Fatal("no error from a closed pool")
	}
	if n := Committed(pool)(); n != 0 {
		t.Fatalf("Committed from a closed pool = %d; want 0", n)
	}
}
