package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/diff"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestSupabaseTables migrates the public tables of a database playing a
// Supabase project's (every common type, an enum, a domain, generated and
// identity columns, a sequence, composite keys, a foreign-key chain, a
// keyless table with duplicate rows, numeric NaN, hostile names, an RLS
// policy calling auth.uid()): plan lists what would be created, copied
// and what is not copied; migrate --only tables is killed with SIGKILL
// mid-copy and a second run finishes it; verify finds every row
// identical; the target's sequences continue past the source's; the
// foreign keys and indexes exist; verify notices changed, deleted and
// duplicated rows, and a --restart run replaces the target's rows with
// the source's again.
func TestSupabaseTables(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	const tasks = 3000
	src.SeedTables(t, tasks)

	dsn, pool := targetDatabase(t)
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN)
	common := []string{"--source", "supabase", "--only", "tables"}
	migrate := append([]string{"migrate"}, append(common, "--workers", "3", "--batch-size", "40", "--supabase-page-size", "70")...)
	want := map[string]int64{
		supabasetest.TasksTable: tasks + 1, supabasetest.OrgsTable: supabasetest.SeedOrgs, supabasetest.ProjectsTable: supabasetest.SeedProjects,
		supabasetest.MeasurementsTable: supabasetest.SeedMeasurements, supabasetest.EventsTable: supabasetest.SeedEvents,
		supabasetest.WeirdTable: supabasetest.SeedWeird, supabasetest.ProfilesTable: 0, supabasetest.EmptyTable: 0,
		supabasetest.ReadingsTable: supabasetest.SeedReadings,
	}

	// plan: every row is missing from the empty target; the DDL creates
	// the tables; what cannot work outside Supabase is listed.
	res := clitest.Run(t, env, append([]string{"plan"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	d := compareDoc(t, res.Stdout)
	reports := tableReports(t, d, "table")
	for table, n := range want {
		tr := reports[table]
		if tr == nil || tr.Source != n || tr.MissingInTarget != n {
			t.Errorf("plan %s: %+v; want %d to copy", table, tr, n)
		}
	}
	if len(reports) != len(want) {
		t.Errorf("plan compares %d tables, want %d", len(reports), len(want))
	}
	ddl := planDDL(d, "table")
	for _, w := range []string{
		`create table "public"."tasks"`, `create enum "public"."mood"`, `create domain "public"."positive_int"`,
		`create sequence "public"."ticket_seq"`, `create index tasks_title_lower on "public"."tasks"`,
		`add foreign key "projects_org_id_fkey" to "public"."projects"`,
		`not copied (Supabase only): RLS policy "own tasks" on "public"."tasks" calls Supabase's auth or storage schema`,
		`not copied (Supabase only): default of "public"."tasks"."owner" calls auth.uid`,
		`not copied (Supabase only): foreign key "profiles_user_id_fkey" on "public"."profiles" references "auth"."users"`,
		`not copied (Supabase only): trigger "tasks_owner" on "public"."tasks"`,
		`not copied: function "public"."add_one"(i integer)`,
		`not copied: view "public"."task_titles"`,
	} {
		if !strings.Contains(ddl, w) {
			t.Errorf("plan does not list %q:\n%s", w, ddl)
		}
	}
	if !strings.Contains(ddl, "CREATE POLICY \"own tasks\" ON \"public\".\"tasks\" FOR SELECT TO PUBLIC USING ((owner = auth.uid()))") {
		t.Errorf("plan does not give the policy's definition:\n%s", ddl)
	}

	// Killed mid-copy of readings (binary COPY format), then of tasks
	// (text), then finished.
	for _, k := range []struct {
		at    int64
		table string
		all   int64
	}{{700, "public.readings", supabasetest.SeedReadings}, {2500, "public.tasks", tasks + 1}} {
		if !clitest.KillAt(t, env, migrate, k.at, testenv.Committed(pool), 2*time.Minute) {
			t.Fatalf("the run finished before it could be killed at %d rows", k.at)
		}
		var partial int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+k.table).Scan(&partial); err != nil {
			t.Fatal(err)
		}
		if partial == 0 || partial >= k.all {
			t.Fatalf("killed at %d rows, the run had copied %d of %d rows of %s; want it killed in that table", k.at, partial, k.all, k.table)
		}
	}
	res = clitest.Run(t, env, migrate...)
	if res.Code != 0 {
		t.Fatalf("migrate after the kill: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "objects are not copied") {
		t.Errorf("migrate does not say what it does not copy:\n%s", res.Stderr)
	}

	verify := append([]string{"verify"}, append(common, "--format", "json")...)
	res = clitest.Run(t, env, verify...)
	if res.Code != 0 {
		t.Fatalf("verify after migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for table, tr := range tableReports(t, compareDoc(t, res.Stdout), "table") {
		if tr.Source != want[table] || tr.Matching != want[table] || !tr.Identical() {
			t.Errorf("verify %s: %+v; want %d identical", table, tr, want[table])
		}
	}

	// Exact values the text comparison would also catch, checked directly.
	var nan, nanCount int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.measurements WHERE value = 'NaN'),
		(SELECT count(*) FROM public.tasks WHERE amount = 'NaN')`).Scan(&nan, &nanCount); err != nil {
		t.Fatal(err)
	}
	if nan != 1 || nanCount != tasks/10 {
		t.Errorf("NaN: %d measurements, %d tasks; want 1 and %d", nan, nanCount, tasks/10)
	}
	var dups int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.events_log WHERE message = 'dup' AND n = 1`).Scan(&dups); err != nil || dups != 3 {
		t.Errorf("duplicate rows of the keyless table: %d, %v; want 3", dups, err)
	}

	// Sequences continue past the source's values; identity and serial
	// columns too.
	var srcTicket, srcTask, srcOrg int64
	if err := src.Pool.QueryRow(ctx, `SELECT (SELECT last_value FROM public.ticket_seq), (SELECT max(id) FROM public.tasks), (SELECT max(id) FROM public.orgs)`).
		Scan(&srcTicket, &srcTask, &srcOrg); err != nil {
		t.Fatal(err)
	}
	var ticket, taskID, orgID int64
	if err := pool.QueryRow(ctx, `SELECT nextval('public.ticket_seq')`).Scan(&ticket); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO public.tasks (org_id, slug, title) VALUES (1, 'p-1', 'new') RETURNING id`).Scan(&taskID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO public.orgs (name) VALUES ('new org') RETURNING id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if ticket != srcTicket+7 || taskID != srcTask+1 || orgID != srcOrg+1 {
		t.Errorf("the target's next ticket %d, task %d, org %d; want %d, %d, %d", ticket, taskID, orgID, srcTicket+7, srcTask+1, srcOrg+1)
	}
	// The generated column is computed by the target.
	var upper string
	if err := pool.QueryRow(ctx, `SELECT title_upper FROM public.tasks WHERE id = $1`, taskID).Scan(&upper); err != nil || upper != "NEW" {
		t.Errorf("generated column of a new row: %q, %v", upper, err)
	}
	// Foreign keys (the chain and the self-reference) and indexes exist,
	// the foreign key to auth.users and RLS do not.
	var fks, idx, rls int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace),
		(SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname IN ('tasks_title_lower', 'tasks_open', 'tasks_ident', 'idx "weird" ON x')),
		(SELECT count(*) FROM pg_class WHERE relrowsecurity AND relnamespace = 'public'::regnamespace)`).Scan(&fks, &idx, &rls); err != nil {
		t.Fatal(err)
	}
	if fks != 3 || idx != 4 || rls != 0 {
		t.Errorf("target has %d foreign keys, %d indexes, %d tables with RLS; want 3, 4, 0", fks, idx, rls)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO public.projects VALUES (999, 'x', 'no org')`); err == nil {
		t.Error("the target accepted a project of a missing org: no foreign key")
	}
	if _, err := pool.Exec(ctx, `DELETE FROM public.tasks WHERE id = $1`, taskID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM public.orgs WHERE id = $1`, orgID); err != nil {
		t.Fatal(err)
	}

	// A re-run has nothing to do.
	if res := clitest.Run(t, env, migrate...); res.Code != 0 {
		t.Fatalf("migrate again: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}

	// Changes at the source: verify reports them, by key, and as a
	// multiset for the keyless table.
	src.Exec(t, `UPDATE public.tasks SET title = 'changed' WHERE id = 5`)
	src.Exec(t, `UPDATE public.measurements SET value = 1 WHERE sensor = 's1' AND day = '2024-01-01'`)
	src.Exec(t, `INSERT INTO public.events_log VALUES ('2024-01-01', 'dup', 1)`)
	src.Exec(t, `DELETE FROM public."Weird ""Table"".x; DROP" WHERE "select" = 2`)
	res = clitest.Run(t, env, verify...)
	if res.Code == 0 {
		t.Fatalf("verify after source changes: exit 0\n%s", res.Stdout)
	}
	got := tableReports(t, compareDoc(t, res.Stdout), "table")
	check := func(table string, mismatched, missing, extra int64) {
		t.Helper()
		tr := got[table]
		if tr == nil || tr.Mismatched != mismatched || tr.MissingInTarget != missing || tr.ExtraInTarget != extra {
			t.Errorf("verify %s after the changes: %+v; want %d mismatched, %d missing, %d extra", table, tr, mismatched, missing, extra)
		}
	}
	check(supabasetest.TasksTable, 1, 0, 0)
	check(supabasetest.MeasurementsTable, 1, 0, 0)
	check(supabasetest.EventsTable, 0, 1, 0)
	check(supabasetest.WeirdTable, 0, 0, 1)

	// A new run (--restart) replaces the copied rows: verify is identical
	// again but for the row the source deleted, which the target keeps.
	if res := clitest.Run(t, env, append(migrate, "--restart")...); res.Code != 0 {
		t.Fatalf("migrate --restart: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res = clitest.Run(t, env, verify...)
	got = tableReports(t, compareDoc(t, res.Stdout), "table")
	check(supabasetest.TasksTable, 0, 0, 0)
	check(supabasetest.MeasurementsTable, 0, 0, 0)
	check(supabasetest.EventsTable, 0, 0, 0)
}

// planDDL joins the DDL plan lists for kind, one "what\nsql" per entry.
func planDDL(d diff.Document, kind string) string {
	var b strings.Builder
	for _, k := range d.Kinds {
		if k.Kind == kind {
			for _, s := range k.DDL {
				b.WriteString(s.What + "\n" + s.SQL + "\n")
			}
		}
	}
	return b.String()
}

// TestSupabaseTablesExtensionType migrates a table with a column of an
// extension's type (citext, installed in public as Supabase projects
// often do): plan and migrate refuse while the target lacks the type,
// naming the column and the extension, and write nothing; once the
// extension is installed on the target, the table is copied and verify
// finds it identical.
func TestSupabaseTablesExtensionType(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	src.Exec(t, `CREATE EXTENSION citext`)
	src.Exec(t, `CREATE TABLE public.people (id integer PRIMARY KEY, email citext NOT NULL UNIQUE, aliases citext[])`)
	src.Exec(t, `INSERT INTO public.people SELECT g, 'User' || g || '@Example.com', ARRAY['A' || g, 'b'] FROM generate_series(1, 30) g`)
	dsn, pool := targetDatabase(t)
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN)
	common := []string{"--source", "supabase", "--only", "tables"}

	res := clitest.Run(t, env, append([]string{"plan"}, common...)...)
	lacks := `column "public"."people"."email" has the type public.citext, which the target lacks`
	if res.Code != 1 || !strings.Contains(res.Stdout+res.Stderr, lacks) ||
		!strings.Contains(res.Stdout, "extension citext is installed at the source, not on the target (its server has it)") {
		t.Fatalf("plan with citext missing on the target: exit %d, want 1 naming the column and the extension\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res = clitest.Run(t, env, append([]string{"migrate"}, common...)...)
	if res.Code == 0 || !strings.Contains(res.Stderr, lacks) {
		t.Fatalf("migrate with citext missing on the target: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	var created bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('public.people') IS NOT NULL`).Scan(&created); err != nil || created {
		t.Fatalf("a refused migrate created the table: %v", err)
	}

	// In public, as at the source (the schema the state lives in,
	// baasmigrate, is the role's "$user" schema: first on the search path).
	if _, err := pool.Exec(ctx, `CREATE EXTENSION citext SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	if res := clitest.Run(t, env, append([]string{"migrate"}, common...)...); res.Code != 0 {
		t.Fatalf("migrate with citext on the target: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res = clitest.Run(t, env, append([]string{"verify"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.people WHERE email = 'user7@example.com'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("citext comparison on the target: %d rows, %v", n, err)
	}
}

// TestSupabaseTablesSchemas copies two schemas, one with a hostile name
// holding an enum, a table keyed by it and a foreign key into the other
// schema (--schemas 'public,App "Data"'); a schema the source lacks is
// refused by name.
func TestSupabaseTablesSchemas(t *testing.T) {
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	src.Exec(t, `CREATE TABLE public.owners (id integer PRIMARY KEY, name text)`)
	src.Exec(t, `CREATE SCHEMA "App ""Data"""`)
	src.Exec(t, `CREATE TYPE "App ""Data"""."Kind" AS ENUM ('a', 'b')`)
	src.Exec(t, `CREATE TABLE "App ""Data"""."Things" (kind "App ""Data"""."Kind", n integer, owner integer REFERENCES public.owners, kinds "App ""Data"""."Kind"[],
		PRIMARY KEY (kind, n))`)
	src.Exec(t, `INSERT INTO public.owners SELECT g, 'o' || g FROM generate_series(1, 10) g`)
	src.Exec(t, `INSERT INTO "App ""Data"""."Things" SELECT (ARRAY['a', 'b'])[1 + g % 2]::"App ""Data"""."Kind", g, 1 + g % 10, '{a,b}' FROM generate_series(1, 200) g`)
	dsn, pool := targetDatabase(t)
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN)
	common := []string{"--source", "supabase", "--only", "tables", "--schemas", `public,App "Data"`}

	if res := clitest.Run(t, env, append([]string{"migrate", "--workers", "3", "--batch-size", "30"}, common...)...); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res := clitest.Run(t, env, append([]string{"verify", "--format", "json"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	got := tableReports(t, compareDoc(t, res.Stdout), "table")
	if tr := got[`"App ""Data"""."Things"`]; tr == nil || tr.Matching != 200 {
		t.Errorf("verify of the hostile schema's table: %+v", tr)
	}
	var fk bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND conrelid = '"App ""Data"""."Things"'::regclass
		AND confrelid = 'public.owners'::regclass)`).Scan(&fk); err != nil || !fk {
		t.Errorf("foreign key across schemas: %v, %v", fk, err)
	}

	res = clitest.Run(t, env, "plan", "--source", "supabase", "--only", "tables", "--schemas", "public,nosuch")
	if res.Code != 2 || !strings.Contains(res.Stderr, `the source has no schema "nosuch"`) {
		t.Errorf("plan of a missing schema: exit %d\n%s", res.Code, res.Stderr)
	}
}

// targetDatabase is a fresh database of the test's own (testenv.NewDatabase)
// and a pool on it, closed when the test ends.
func targetDatabase(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return dsn, pool
}
