package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// logicalSource is a database playing a Supabase project's, seeded with
// the tables fixture (tasks tasks), on a server with wal_level = logical,
// whose role may replicate, and a target database whose role may set
// session_replication_role. Slots the test leaves are dropped before the
// database is.
func logicalSource(t *testing.T, tasks int) (*supabasetest.Project, string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	src := supabasetest.NewProject(t)
	var level string
	if err := src.Pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		msg := "the test PostgreSQL has wal_level = " + level + ": sync of tables needs wal_level = logical (scripts/services-up.sh sets it; restart the cluster)"
		if testenv.ServicesRequired() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	admin, err := pgx.Connect(ctx, testenv.PostgresAdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	dsn, pool := targetDatabase(t)
	srcCfg, err := pgx.ParseConfig(src.DSN)
	if err != nil {
		t.Fatal(err)
	}
	tgtCfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"ALTER ROLE " + pgx.Identifier{srcCfg.User}.Sanitize() + " REPLICATION",
		"GRANT SET ON PARAMETER session_replication_role TO " + pgx.Identifier{tgtCfg.User}.Sanitize(),
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	db := srcCfg.Database
	adminURL := testenv.PostgresAdminURL(t)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, db); err != nil {
			t.Errorf("dropping the test's replication slots: %v", err)
		}
	})
	src.SeedTables(t, tasks)
	return src, dsn, pool
}

// syncState is the tables stream's stored position and changes applied.
func syncState(t *testing.T, pool *pgxpool.Pool) (position string, applied int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT position, applied FROM baasmigrate.sync_streams WHERE kind = 'table'`).Scan(&position, &applied)
	if err != nil && err != pgx.ErrNoRows && !strings.Contains(err.Error(), "does not exist") {
		t.Fatal(err)
	}
	return position, applied
}

// waitSync polls the sync state (every few milliseconds) until ok, failing
// when the process ends first or nothing happens for a minute.
func waitSync(t *testing.T, p *clitest.Process, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		select {
		case <-p.Done():
			res := p.Result()
			t.Fatalf("sync ended (exit %d) while waiting for %s:\n%s", res.Code, what, syncTail(res.Stderr, 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not get to %s within a minute:\n%s", what, syncTail(p.Stderr(), 40))
		}
		time.Sleep(5 * time.Millisecond) // polling the sync state
	}
}

// sourceSlots counts the replication slots of the source's database.
func sourceSlots(t *testing.T, src *supabasetest.Project) int {
	t.Helper()
	var n int
	if err := src.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSupabaseSyncTables: sync --only tables copies the tables (the slot
// made first, rows written meanwhile), then follows the source's logical replication: inserts,
// updates (a primary key changed, a TOASTed column left unchanged),
// deletes along a foreign-key chain, a truncate, a keyless table with
// REPLICA IDENTITY FULL (a delete and an update of one of several equal
// rows), advanced sequences. Killed with SIGKILL while it applies a stream
// of transactions and started again, it applies each exactly once:
// cutover --prepare, then the cutover (exit 0) find the target identical,
// with sequences at or past the source's; a second cutover once sync
// stopped drops the slot. A new
// sync then catches up by comparison (its slot is younger than the copy),
// and a column added at the source stops it with exit 2, naming the table.
func TestSupabaseSyncTables(t *testing.T) {
	ctx := context.Background()
	src, dsn, pool := logicalSource(t, 300)
	src.Exec(t, `ALTER TABLE public.events_log REPLICA IDENTITY FULL`)
	// A primary key and REPLICA IDENTITY USING INDEX on another unique
	// index: the source sends old rows of that index's columns only.
	src.Exec(t, `CREATE TABLE public.by_code (id integer PRIMARY KEY, code text NOT NULL, n integer);
		CREATE UNIQUE INDEX by_code_code ON public.by_code (code);
		ALTER TABLE public.by_code REPLICA IDENTITY USING INDEX by_code_code;
		INSERT INTO public.by_code VALUES (1, 'x', 1), (2, 'y', 2), (3, 'w', 3)`)
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN)
	common := []string{"--source", "supabase", "--only", "tables"}
	syncArgs := append([]string{"sync", "-v", "--batch-size", "50", "--status-interval", "0"}, common...)

	// Written while sync copies: rows the copy may read and the stream
	// then delivers again (the keyless table's would be duplicated).
	stop := make(chan struct{})
	var during sync.WaitGroup
	during.Add(1)
	var duringErr error
	duringRows := 0
	go func() {
		defer during.Done()
		for duringRows < 3000 {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := src.Pool.Exec(ctx, `INSERT INTO public.events_log VALUES (now(), 'copy', $1::int)`, duringRows); err != nil {
				duringErr = err
				return
			}
			if _, err := src.Pool.Exec(ctx, `UPDATE public.readings SET note = 'during ' || $1::text WHERE id = 1 + $1::int % 1500`, duringRows); err != nil {
				duringErr = err
				return
			}
			duringRows++
		}
	}()
	p := clitest.Start(t, env, syncArgs...)
	waitSync(t, p, "following the stream", func() bool {
		pos, _ := syncState(t, pool)
		return pos != "" && !strings.HasSuffix(pos, "@")
	})
	close(stop)
	during.Wait()
	if duringErr != nil {
		t.Fatal(duringErr)
	}
	t.Logf("%d rows written while sync copied", duringRows)
	if n := sourceSlots(t, src); n != 1 {
		t.Fatalf("the source has %d replication slots; want sync's one", n)
	}

	// Changes of every kind, one transaction each.
	big := `(SELECT decode(string_agg(md5(g::text || 'toast'), ''), 'hex') FROM generate_series(1, 3000) g)`
	for _, sql := range []string{
		`INSERT INTO public.orgs (name) VALUES ('org new')`,
		`INSERT INTO public.projects SELECT id, 'n-1', 'New 1' FROM public.orgs WHERE name = 'org new'`,
		`INSERT INTO public.projects SELECT id, 'n-2', 'New 2' FROM public.orgs WHERE name = 'org new'`,
		`INSERT INTO public.tasks (org_id, slug, title, doc) SELECT id, 'n-1', 'chain 1', '{"a": 1}' FROM public.orgs WHERE name = 'org new'`,
		`INSERT INTO public.tasks (org_id, slug, title, parent_id) SELECT org_id, 'n-2', 'chain 2', id FROM public.tasks WHERE title = 'chain 1'`,
		`UPDATE public.tasks SET title = 'renamed ' || id, big = big + 1 WHERE id % 10 = 0`,
		`INSERT INTO public.tasks (org_id, slug, title, bytes) VALUES (1, 'p-1', 'toasted', ` + big + `)`,
		`UPDATE public.tasks SET score = 42.5 WHERE title = 'toasted'`,
		`DELETE FROM public.tasks WHERE title = 'nulls'`,
		`UPDATE public.measurements SET sensor = 's3' WHERE sensor = 's2'`,
		`INSERT INTO public.events_log VALUES ('2024-01-01', 'dup', 1)`,
		`DELETE FROM public.events_log WHERE ctid = (SELECT ctid FROM public.events_log WHERE message = 'dup' AND n = 1 LIMIT 1)`,
		`UPDATE public.events_log SET n = 99 WHERE ctid = (SELECT ctid FROM public.events_log WHERE message = 'm3' LIMIT 1)`,
		`DELETE FROM public.events_log WHERE ctid = (SELECT ctid FROM public.events_log WHERE message IS NULL LIMIT 1)`,
		`SELECT nextval('public.ticket_seq') FROM generate_series(1, 5)`,
		`UPDATE public."Weird ""Table"".x; DROP" SET "ÄÖ ü" = '{"changed": true}' WHERE "select" = 1`,
		`DELETE FROM public.tasks WHERE slug IN ('n-1', 'n-2') AND parent_id IS NOT NULL`,
		`DELETE FROM public.tasks WHERE slug IN ('n-1', 'n-2')`,
		`DELETE FROM public.orgs WHERE name = 'org new'`,
		`TRUNCATE public.measurements`,
		`INSERT INTO public.measurements VALUES ('after', '2025-01-01', 1.5)`,
		`INSERT INTO public.orgs (name) VALUES ('org later')`,
		`UPDATE public.by_code SET id = 20, code = 'z' WHERE id = 2`,
		`UPDATE public.by_code SET id = 30 WHERE id = 3`,
		`DELETE FROM public.by_code WHERE id = 1`,
	} {
		src.Exec(t, sql)
	}

	// A stream of transactions; sync is killed -9 while it applies them.
	_, before := syncState(t, pool)
	var wg sync.WaitGroup
	wg.Add(1)
	var writeErr error
	const writes = 400
	go func() {
		defer wg.Done()
		for i := range writes {
			if err := pgx.BeginFunc(ctx, src.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO public.events_log VALUES (now(), 'w' || $1::int % 7, $1::int % 3)`, i); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE public.tasks SET small = $1::int WHERE id = 1 + $1::int % 50`, i)
				return err
			}); err != nil {
				writeErr = err
				return
			}
		}
	}()
	waitSync(t, p, "applying the writer's transactions", func() bool {
		_, applied := syncState(t, pool)
		return applied >= before+40
	})
	p.Kill()
	pos, applied := syncState(t, pool)
	t.Logf("sync killed -9 at %s after %d changes", pos, applied)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	src.Exec(t, `SELECT nextval('public.ticket_seq')`)

	p = clitest.Start(t, env, syncArgs...)
	waitSync(t, p, "following again", func() bool {
		now, _ := syncState(t, pool)
		return now != pos
	})
	res := clitest.Run(t, env, append([]string{"cutover", "--prepare"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("cutover --prepare with sync running: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	src.Exec(t, `UPDATE public.tasks SET title = 'after the prepare' WHERE id = 2`)
	res = clitest.Run(t, env, append([]string{"cutover"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("cutover with sync running: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	if !strings.Contains(res.Stdout, "sequence(s) set past the source's values") || !strings.Contains(res.Stdout, "stop it, then run cutover again") {
		t.Errorf("cutover does not say it set the sequences and kept the slot for the running sync:\n%s", res.Stdout)
	}
	var keyless, srcKeyless int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.events_log`).Scan(&keyless); err != nil {
		t.Fatal(err)
	}
	if err := src.Pool.QueryRow(ctx, `SELECT count(*) FROM public.events_log`).Scan(&srcKeyless); err != nil {
		t.Fatal(err)
	}
	if keyless != srcKeyless || srcKeyless != int64(supabasetest.SeedEvents-1+writes+duringRows) {
		t.Errorf("keyless table: target %d rows, source %d; want %d", keyless, srcKeyless, supabasetest.SeedEvents-1+writes+duringRows)
	}
	// Sequences: the target's next values are past the source's.
	var srcTicket, srcTask, srcOrg, ticket, task, org int64
	q := `SELECT (SELECT last_value FROM public.ticket_seq), (SELECT last_value FROM public.tasks_id_seq),
		(SELECT s.last_value FROM pg_sequences s WHERE s.schemaname = 'public' AND s.sequencename = 'orgs_id_seq')`
	if err := src.Pool.QueryRow(ctx, q).Scan(&srcTicket, &srcTask, &srcOrg); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, q).Scan(&ticket, &task, &org); err != nil {
		t.Fatal(err)
	}
	if ticket < srcTicket || task < srcTask || org < srcOrg {
		t.Errorf("target sequences ticket %d, task %d, org %d; want at least the source's %d, %d, %d", ticket, task, org, srcTicket, srcTask, srcOrg)
	}
	stopSync(t, p)
	if n := sourceSlots(t, src); n != 1 {
		t.Errorf("the source has %d replication slots after a cutover with sync running; want it kept", n)
	}

	// Sync stopped: cutover catches up by itself, and releases the slot.
	src.Exec(t, `UPDATE public.tasks SET flag = NOT coalesce(flag, false) WHERE id = 7`)
	res = clitest.Run(t, env, append([]string{"cutover"}, common...)...)
	if res.Code != 0 {
		t.Fatalf("cutover without sync: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := sourceSlots(t, src); n != 0 {
		t.Errorf("the source has %d replication slots after the cutover; want none", n)
	}
	var pubs int
	if err := src.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_publication WHERE pubname LIKE 'baasmigrate\_%'`).Scan(&pubs); err != nil || pubs != 0 {
		t.Errorf("publications left: %d, %v", pubs, err)
	}

	// A sync after that: a new slot, younger than the copy, so sync
	// catches up by comparison first.
	src.Exec(t, `DELETE FROM public.events_log WHERE message = 'w1'`)
	src.Exec(t, `UPDATE public.tasks SET title = 'before the new slot' WHERE id = 3`)
	p = clitest.Start(t, env, syncArgs...)
	if !p.WaitStderr(t, "caught up at", time.Minute) {
		t.Fatalf("sync with a new slot did not catch up by comparison:\n%s", syncTail(p.Stderr(), 40))
	}
	src.Exec(t, `INSERT INTO public.orgs (name) VALUES ('after the catch-up')`)
	waitSync(t, p, "the org written after the catch-up", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.orgs WHERE name = 'after the catch-up'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	var w1, title string
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.events_log WHERE message = 'w1')::text, (SELECT title FROM public.tasks WHERE id = 3)`).Scan(&w1, &title); err != nil {
		t.Fatal(err)
	}
	if w1 != "0" || title != "before the new slot" {
		t.Errorf("after the catch-up: %s rows of w1, task 3 titled %q; want 0 and the new title", w1, title)
	}

	// DDL at the source: the next change of the table stops sync.
	src.Exec(t, `ALTER TABLE public.orgs ADD COLUMN note text`)
	src.Exec(t, `INSERT INTO public.orgs (name, note) VALUES ('after the ddl', 'x')`)
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("sync went on after a column was added at the source:\n%s", syncTail(p.Stderr(), 40))
	}
	res = p.Result()
	if res.Code != 2 || !strings.Contains(res.Stderr, `"public"."orgs" now has the columns`) || !strings.Contains(res.Stderr, `"note" text`) {
		t.Errorf("sync after DDL: exit %d, want 2 naming the table and the column\n%s", res.Code, syncTail(res.Stderr, 20))
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.orgs WHERE name = 'after the ddl'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the row written after the DDL reached the target: %d, %v", n, err)
	}
}

// TestSupabaseSyncRefusesKeylessDefault: a keyless table left with
// REPLICA IDENTITY DEFAULT would make the application's UPDATE and DELETE
// on it fail once published, so sync refuses before it copies or creates
// anything, naming the table and the fix.
func TestSupabaseSyncRefusesKeylessDefault(t *testing.T) {
	ctx := context.Background()
	src, dsn, pool := logicalSource(t, 10)
	env := clitest.Env("DATABASE_URL="+dsn, "SUPABASE_DB_URL="+src.DSN)
	res := clitest.Run(t, env, "sync", "--source", "supabase", "--only", "tables")
	if res.Code != 2 || !strings.Contains(res.Stderr, supabasetest.EventsTable+" (no primary key, REPLICA IDENTITY DEFAULT)") ||
		!strings.Contains(res.Stderr, "REPLICA IDENTITY FULL") {
		t.Fatalf("sync with a keyless DEFAULT table: exit %d, want 2 naming it and the fix\n%s", res.Code, res.Stderr)
	}
	if n := sourceSlots(t, src); n != 0 {
		t.Errorf("the refused sync left %d replication slots", n)
	}
	var copied bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('public.tasks') IS NOT NULL`).Scan(&copied); err != nil || copied {
		t.Errorf("the refused sync copied tables: %v, %v", copied, err)
	}
	// The source's application can still update the table.
	src.Exec(t, `UPDATE public.events_log SET n = 0 WHERE n = 1`)
}
