package manifest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestDigestIgnoresSessionSettings: the content digest depends on the
// target's content alone, not on the settings of the session that reads it
// (TimeZone, IntervalStyle, extra_float_digits, bytea_output change how
// to_jsonb renders timestamps, intervals, doubles and bytes), so verify
// --manifest run from another client matches migrate's manifest.
func TestDigestIgnoresSessionSettings(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	pool := func(params map[string]string) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range params {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	a := pool(map[string]string{"timezone": "UTC"})
	if _, err := a.Exec(ctx, `CREATE TABLE t (at timestamptz, d interval, f double precision, b bytea);
		INSERT INTO t VALUES ('2026-12-06 22:00:00.5+00', '1 day 02:03:04', 0.1 + 0.2, '\x00ff'),
			('2026-12-06 23:30:00+00', '-3 hours', 1e-7, '\x41')`); err != nil {
		t.Fatal(err)
	}
	want, err := Digest(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	b := pool(map[string]string{"timezone": "Asia/Kolkata", "intervalstyle": "iso_8601", "extra_float_digits": "0", "bytea_output": "escape"})
	got, err := Digest(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != want.SHA256 {
		t.Fatalf("digest under other session settings %+v, want %+v", got, want)
	}
}

// TestDigestColumnNamedLikeTheRow: a table with a column named as the
// digest query's row alias is digested whole, not through that column.
func TestDigestColumnNamedLikeTheRow(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE t (x jsonb, y text);
		INSERT INTO t VALUES ('{"a": 1}', 'one'), ('{"a": 1}', 'two')`); err != nil {
		t.Fatal(err)
	}
	before, err := Digest(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE t SET y = 'three' WHERE y = 'two'`); err != nil {
		t.Fatal(err)
	}
	after, err := Digest(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if before.SHA256 == after.SHA256 {
		t.Fatal("changing column y left the digest as it was: only column x was digested")
	}
}
