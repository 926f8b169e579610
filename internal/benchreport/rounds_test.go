package benchreport

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

func TestAlternately(t *testing.T) {
	for round, want := range [][]string{{"a", "b"}, {"b", "a"}, {"a", "b"}} {
		var ran []string
		step := func(name string) func() error { return func() error { ran = append(ran, name); return nil } }
		if err := Alternately(round, step("a"), step("b")); err != nil || !slices.Equal(ran, want) {
			t.Errorf("round %d ran %v (%v), want %v", round, ran, err, want)
		}
	}
	stop := errors.New("stop")
	if err := Alternately(0, func() error { return stop }, func() error { t.Error("ran after an error"); return nil }); err != stop {
		t.Errorf("error %v, want the first step's", err)
	}
}

func TestMedian(t *testing.T) {
	rounds := []float64{3, 1, 2, 5}
	if m := Median(rounds, func(x float64) float64 { return x }); m != 3 {
		t.Errorf("median %v, want 3 (the upper of an even count)", m)
	}
	if !slices.Equal(rounds, []float64{3, 1, 2, 5}) {
		t.Errorf("rounds reordered: %v", rounds)
	}
}

// TestRecreateDatabase: the database is made anew (a table of an earlier
// one is gone) and the DSN returned connects to it.
func TestRecreateDatabase(t *testing.T) {
	admin, ok := testenv.Lookup("BAASMIGRATE_PG_ADMIN_URL")
	dsn, ok2 := testenv.Lookup("DATABASE_URL")
	if !ok || !ok2 {
		t.Skip("no PostgreSQL (BAASMIGRATE_PG_ADMIN_URL, DATABASE_URL)")
	}
	ctx := context.Background()
	name := testenv.UniqueName("bench_recreate", 60)
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, admin); err == nil {
			DropDatabase(ctx, c, name)
			c.Close(ctx)
		}
	})
	for i := range 2 {
		target, err := RecreateDatabase(ctx, admin, dsn, name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgx.Connect(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		var db string
		var tables int
		err = c.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE tablename = 'earlier')").Scan(&db, &tables)
		if err == nil && i == 0 {
			_, err = c.Exec(ctx, "CREATE TABLE earlier (x int)")
		}
		c.Close(ctx)
		if err != nil || db != name || tables != 0 {
			t.Fatalf("round %d: database %q with %d tables 'earlier' (%v), want %q anew", i, db, tables, err, name)
		}
	}
}
