package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// strs is an array of text values; nil is NULL.
func strs(vals ...any) record.Value {
	out := make([]record.Value, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = record.String(s)
		} else {
			out[i] = record.Null()
		}
	}
	return record.Array(out...)
}

func streamChange(table, op string, fields map[string]record.Value) record.Change {
	f := map[string]record.Value{pgcatalog.FieldTable: record.String(table), pgcatalog.FieldOp: record.String(op)}
	for k, v := range fields {
		f[k] = v
	}
	c := record.Change{Op: record.OpUpsert, Record: record.Record{Kind: record.KindTable, Key: table + " (test)", Fields: f}}
	if op == "delete" || op == "truncate" {
		c.Op = record.OpDelete
	}
	return c
}

// TestTablesApplyChanges applies a change stream's changes and a
// comparison's to a table keyed by an identity column and to a keyless
// table, and checks the rows after each.
func TestTablesApplyChanges(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, testenv.PostgresAdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "GRANT SET ON PARAMETER session_replication_role TO "+pgx.Identifier{cfg.User}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	if _, err := pool.Exec(ctx, `CREATE TABLE public.t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text, n integer);
		CREATE TABLE public.log (m text, n integer);
		CREATE TABLE public.child (id integer PRIMARY KEY, t_id bigint REFERENCES public.t (id));
		CREATE TABLE public.u (id integer PRIMARY KEY, email text UNIQUE);
		INSERT INTO public.u VALUES (1, 'a'), (2, 'b');
		CREATE TABLE public.ri (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL, n integer);
		CREATE UNIQUE INDEX ri_code ON public.ri (code);
		ALTER TABLE public.ri REPLICA IDENTITY USING INDEX ri_code;
		INSERT INTO public.ri (id, code, n) OVERRIDING SYSTEM VALUE VALUES (1, 'x', 1), (2, 'y', 2)`); err != nil {
		t.Fatal(err)
	}
	cat, err := pgcatalog.Load(ctx, pool, []string{"public"})
	if err != nil {
		t.Fatal(err)
	}
	sink := NewTables(TablesConfig{Catalog: cat})
	const tq, lq, cq = `"public"."t"`, `"public"."log"`, `"public"."child"`
	apply := func(changes ...record.Change) {
		t.Helper()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, _, err := sink.ApplyChanges(ctx, tx, changes, false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := func(sql string) string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, "SELECT coalesce(string_agg(r, ' | ' ORDER BY r), '') FROM ("+sql+") AS x(r)").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(what, sql, want string) {
		t.Helper()
		if got := rows(sql); got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	tRows := `SELECT id || ':' || coalesce(body, '-') || ':' || coalesce(n::text, '-') FROM public.t`

	// A child before its parent (foreign keys do not fire), an insert
	// replayed over a newer row (an upsert).
	apply(streamChange(cq, "insert", map[string]record.Value{pgcatalog.FieldNew: strs("1", "5")}),
		streamChange(tq, "insert", map[string]record.Value{pgcatalog.FieldNew: strs("5", "a", "1")}),
		streamChange(tq, "insert", map[string]record.Value{pgcatalog.FieldNew: strs("5", "b", "1")}))
	check("inserts", tRows, "5:b:1")
	// An update with an unchanged TOASTed value leaves it.
	apply(streamChange(tq, "update", map[string]record.Value{pgcatalog.FieldNew: strs("5", nil, "2"), pgcatalog.FieldUnchanged: record.Array(record.Int(1))}))
	check("update with an unchanged value", tRows, "5:b:2")
	// The key of an identity column changes: the row moves.
	apply(streamChange(tq, "update", map[string]record.Value{pgcatalog.FieldOld: strs("5", nil, nil), pgcatalog.FieldNew: strs("6", "c", "3")}))
	check("key change", tRows, "6:c:3")
	// An update of a row the target lacks (replayed) inserts it.
	apply(streamChange(tq, "update", map[string]record.Value{pgcatalog.FieldNew: strs("9", "z", "1")}))
	check("update of a missing row", tRows, "6:c:3 | 9:z:1")
	apply(streamChange(tq, "delete", map[string]record.Value{pgcatalog.FieldOld: strs("6", nil, nil)}))
	check("delete", tRows, "9:z:1")

	// Keyless, REPLICA IDENTITY FULL: equal rows, one at a time.
	dup := map[string]record.Value{pgcatalog.FieldNew: strs("dup", "1")}
	full := map[string]record.Value{pgcatalog.FieldOld: strs("dup", "1"), pgcatalog.FieldOldFull: record.Bool(true)}
	apply(streamChange(lq, "insert", dup), streamChange(lq, "insert", dup), streamChange(lq, "insert", dup),
		streamChange(lq, "insert", map[string]record.Value{pgcatalog.FieldNew: strs(nil, nil)}))
	apply(streamChange(lq, "delete", full))
	logRows := `SELECT coalesce(m, '-') || ':' || coalesce(n::text, '-') FROM public.log`
	check("keyless delete", logRows, "-:- | dup:1 | dup:1")
	up := map[string]record.Value{pgcatalog.FieldOld: strs("dup", "1"), pgcatalog.FieldOldFull: record.Bool(true), pgcatalog.FieldNew: strs("dup", "2")}
	apply(streamChange(lq, "update", up))
	check("keyless update", logRows, "-:- | dup:1 | dup:2")
	apply(streamChange(lq, "delete", map[string]record.Value{pgcatalog.FieldOld: strs(nil, nil), pgcatalog.FieldOldFull: record.Bool(true)}))
	check("keyless delete of a row of NULLs", logRows, "dup:1 | dup:2")

	// A comparison's records: a whole row, a delete by key, a keyless
	// row deleted by its MD5.
	apply(record.Change{Op: record.OpUpsert, Record: record.Record{Kind: record.KindTable, Key: tq + ` ["10"]`,
		Fields: map[string]record.Value{"id": record.String("10"), "body": record.String("f"), "n": record.Null()}}},
		record.Change{Op: record.OpDelete, Record: record.Record{Kind: record.KindTable, Key: tq + ` ["9"]`}})
	check("comparison's upsert and delete", tRows, "10:f:-")
	var sum string
	if err := pool.QueryRow(ctx, `SELECT md5(ROW(m, n)::text) FROM public.log WHERE n = 2`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	apply(record.Change{Op: record.OpDelete, Record: record.Record{Kind: record.KindTable, Key: lq + ` ["` + sum + `","0000000001"]`}})
	check("comparison's keyless delete", logRows, "dup:1")

	// Replayed over newer rows: at the source row 1 gave 'a' up before
	// row 2 took it; the target holds row 1 with 'a' (the copy read it
	// before) — it goes, and comes back with the change that moved it.
	const uq = `"public"."u"`
	uRows := `SELECT id || ':' || email FROM public.u`
	apply(streamChange(uq, "update", map[string]record.Value{pgcatalog.FieldNew: strs("2", "a")}))
	check("a unique value taken by a replayed change", uRows, "2:a")
	apply(streamChange(uq, "update", map[string]record.Value{pgcatalog.FieldNew: strs("1", "c")}))
	check("the row that held it, written again", uRows, "1:c | 2:a")

	// A primary key and REPLICA IDENTITY USING INDEX on another unique
	// index: the old row the source sends holds only that index's columns.
	const rq = `"public"."ri"`
	riRows := `SELECT id || ':' || code || ':' || coalesce(n::text, '-') FROM public.ri`
	byCode := record.Array(record.Int(1))
	apply(streamChange(rq, "update", map[string]record.Value{pgcatalog.FieldOld: strs(nil, "y", nil), pgcatalog.FieldOldFull: record.Bool(false),
		pgcatalog.FieldIdentity: byCode, pgcatalog.FieldNew: strs("3", "z", "3")}))
	check("an update of the key and the identity", riRows, "1:x:1 | 3:z:3")
	apply(streamChange(rq, "delete", map[string]record.Value{pgcatalog.FieldOld: strs(nil, "x", nil), pgcatalog.FieldOldFull: record.Bool(false),
		pgcatalog.FieldIdentity: byCode}))
	check("a delete by the identity", riRows, "3:z:3")

	apply(streamChange(lq, "truncate", nil))
	check("truncate", logRows, "")
	if _, _, err := sink.ApplyChanges(ctx, nil, []record.Change{streamChange(lq, "truncate", nil)}, true); err == nil {
		t.Error("soft deletes were accepted")
	}
}
