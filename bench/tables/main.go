// Command tables benchmarks `baasmigrate migrate --source supabase --only
// tables` against what a PostgreSQL user would run instead, measured in
// the same run on the same machine against the same local PostgreSQL:
//
//   - dump+restore: `pg_dump -Fd -j W` of the source database, then
//     `pg_restore -j W` into a fresh database, with the client tools of
//     the server's major version (the local stack's);
//   - extract-only: the tables extractor reading every partition of every
//     table, W at a time, and discarding the rows — the limit of the read.
//
// The source is a Supabase-like app's public schema (profiles → posts →
// comments, an events table with jsonb, numeric, timestamptz, arrays and
// an interval; an enum, identity columns, foreign keys, secondary indexes)
// filled server-side with INSERT … SELECT generate_series. Each round runs
// the three back to back (dump+restore and migrate alternating which goes
// first) and checks that both copies hold the source's rows (per table,
// the count and the sum of a hash of every row's text); the result is the
// median round's migrate ÷ dump+restore, with every round's shown, beside
// the CPU of each process and of PostgreSQL's backends, and migrate's peak
// RSS at N and 2N rows. -profiles keeps CPU and allocation profiles of
// every migrate.
//
// Run it with the local stack up: `make bench-tables`, or
//
//	go run ./bench/tables -rows 1000000 -runs 3 -record BENCHMARKS.md
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/supabasetables"
	"github.com/baasmigrate/baasmigrate/internal/benchreport"
	"github.com/baasmigrate/baasmigrate/internal/pgcatalog"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/procstat"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Databases the program makes (and drops at the end).
const (
	srcDB     = "bench_tables_src"
	src2DB    = "bench_tables_src2"
	migrateDB = "bench_tables_migrate"
	restoreDB = "bench_tables_restore"
)

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 1_000_000, "Rows of the source, over four tables")
	flag.IntVar(&o.workers, "workers", 4, "Workers of migrate, jobs of pg_dump and pg_restore, partitions read at once by the extract-only read")
	flag.IntVar(&o.runs, "runs", 3, "Rounds of (extract only, dump+restore, migrate); the median round is reported")
	flag.StringVar(&o.record, "record", "", "Also write the result section into this Markdown file (e.g. BENCHMARKS.md)")
	flag.StringVar(&o.profiles, "profiles", "", "Write CPU and allocation profiles of every round's migrate into this directory (migrate-N.cpu.pprof, migrate-N.allocs.pprof)")
	flag.StringVar(&o.migrateFlags, "migrate-flags", "", "Extra flags of baasmigrate migrate, space-separated (e.g. '--batch-size 2000')")
	flag.StringVar(&o.pgBin, "pg-bin", "", "Directory of pg_dump and pg_restore (default: /usr/lib/postgresql/MAJOR/bin of the server's major version, else PATH's when its version matches)")
	flag.BoolVar(&o.double, "double", true, "Also copy twice the rows once (migrate and dump+restore), to report peak RSS at 2N")
	flag.BoolVar(&o.keep, "keep", false, "Keep the databases at the end ("+srcDB+", "+migrateDB+", …) to look into or profile by hand")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/tables:", err)
		os.Exit(1)
	}
}

// options are the program's flags.
type options struct {
	rows, workers, runs            int
	record, profiles, migrateFlags string
	pgBin                          string
	double, keep                   bool
}

func run(ctx context.Context, o options) error {
	admin, err := benchreport.Need("BAASMIGRATE_PG_ADMIN_URL")
	if err != nil {
		return err
	}
	dsn, err := benchreport.Need("DATABASE_URL")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-tables-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.profiles != "" {
		if err := os.MkdirAll(o.profiles, 0o755); err != nil {
			return err
		}
	}
	if !o.keep {
		defer dropDatabases(admin, srcDB, src2DB, migrateDB, restoreDB)
	}

	pgBin, pgVersion, err := findPGBin(ctx, dsn, o.pgBin)
	if err != nil {
		return err
	}
	src, rows, err := seedSource(ctx, admin, dsn, srcDB, o.rows)
	if err != nil {
		return err
	}
	want, err := counts(ctx, src)
	if err != nil {
		return err
	}
	bin, err := benchreport.Build(dir)
	if err != nil {
		return err
	}
	migrateArgs := append([]string{"migrate", "--source", "supabase", "--only", "tables",
		"--workers", fmt.Sprint(o.workers), "--no-progress"}, strings.Fields(o.migrateFlags)...)

	var rounds []round
	for i := range o.runs {
		var r round
		if r.extract, r.extractCPU, r.extractPG, err = extractOnly(ctx, src, o.workers, rows); err != nil {
			return err
		}
		dumpRestore := func() error {
			var err error
			r.dump, err = dumpAndRestore(ctx, pgBin, admin, dsn, src, filepath.Join(dir, "dump"), o.workers)
			if err != nil {
				return err
			}
			return sameCounts(ctx, "after pg_restore", r.dump.target, want)
		}
		migrate := func() error {
			target, err := benchreport.RecreateDatabase(ctx, admin, dsn, migrateDB)
			if err != nil {
				return err
			}
			env := append(os.Environ(), "SUPABASE_DB_URL="+src, "DATABASE_URL="+target)
			if o.profiles != "" {
				env = append(env,
					"BAASMIGRATE_CPUPROFILE="+filepath.Join(o.profiles, fmt.Sprintf("migrate-%d.cpu.pprof", i+1)),
					"BAASMIGRATE_MEMPROFILE="+filepath.Join(o.profiles, fmt.Sprintf("migrate-%d.allocs.pprof", i+1)))
			}
			if r.migrate, err = runBinary(env, []string{srcDB, migrateDB}, bin, migrateArgs...); err != nil {
				return err
			}
			return sameCounts(ctx, "after migrate", target, want)
		}
		if err := benchreport.Alternately(i, dumpRestore, migrate); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "round %d: extract %s (CPU %s), dump %s + restore %s = %s (clients' CPU %s, PostgreSQL %s), migrate %s (CPU %s, PostgreSQL %s, peak RSS %d MiB; keys and indexes %s s, foreign keys %s s): ratio %.2f\n",
			i+1, r.extract.Round(time.Millisecond), r.extractCPU.Round(time.Millisecond),
			r.dump.dump.Round(time.Millisecond), r.dump.restore.Round(time.Millisecond), r.dump.total().Round(time.Millisecond),
			r.dump.cpu.Round(time.Millisecond), benchreport.CPUOrNA(r.dump.pgCPU),
			r.migrate.wall.Round(time.Millisecond), r.migrate.cpu.Round(time.Millisecond), benchreport.CPUOrNA(r.migrate.pgCPU), r.migrate.rss>>20,
			r.migrate.streamSeconds(pgcatalog.IndexStream), r.migrate.streamSeconds(pgcatalog.FinishStream), r.ratio())
		rounds = append(rounds, r)
	}
	r := benchreport.Median(rounds, round.ratio)
	var each []string
	var peakN int64
	for _, x := range rounds {
		each = append(each, fmt.Sprintf("%.2f (%s vs %s)", x.ratio(), x.migrate.wall.Round(100*time.Millisecond), x.dump.total().Round(100*time.Millisecond)))
		peakN = max(peakN, x.migrate.rss)
	}

	rssLine := fmt.Sprintf("- peak RSS of migrate: %d MiB at %d rows (highest of the rounds); 2N not measured (`-double=false`)", peakN>>20, rows)
	if o.double {
		src2, rows2, err := seedSource(ctx, admin, dsn, src2DB, 2*o.rows)
		if err != nil {
			return err
		}
		want2, err := counts(ctx, src2)
		if err != nil {
			return err
		}
		target, err := benchreport.RecreateDatabase(ctx, admin, dsn, migrateDB)
		if err != nil {
			return err
		}
		env := append(os.Environ(), "SUPABASE_DB_URL="+src2, "DATABASE_URL="+target)
		m2, err := runBinary(env, []string{src2DB, migrateDB}, bin, migrateArgs...)
		if err != nil {
			return err
		}
		if err := sameCounts(ctx, "after migrate at 2N", target, want2); err != nil {
			return err
		}
		d2, err := dumpAndRestore(ctx, pgBin, admin, dsn, src2, filepath.Join(dir, "dump2"), o.workers)
		if err != nil {
			return err
		}
		if err := sameCounts(ctx, "after pg_restore at 2N", d2.target, want2); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "2N: %d rows, migrate %s (peak RSS %d MiB), dump+restore %s: ratio %.2f\n",
			rows2, m2.wall.Round(time.Millisecond), m2.rss>>20, d2.total().Round(time.Millisecond), m2.wall.Seconds()/d2.total().Seconds())
		rssLine = fmt.Sprintf("- peak RSS of migrate: %d MiB at %d rows (highest of the rounds), %d MiB at %d rows (one run: migrate %s, dump+restore %s, ratio %.2f)",
			peakN>>20, rows, m2.rss>>20, rows2, m2.wall.Round(time.Millisecond), d2.total().Round(time.Millisecond), m2.wall.Seconds()/d2.total().Seconds())
	}

	s := shareOf(o.rows)
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f rows/s", float64(rows)/d.Seconds()) }
	section := fmt.Sprintf(`## Tables: PostgreSQL (a Supabase project's database) → PostgreSQL

Measured %s on %s. Command: `+"`%s`"+`.

Source: a database of the local PostgreSQL %s playing a Supabase project's, %d rows in a Supabase-like
public schema: profiles (%d, uuid key) → posts (%d) → comments (%d, also → profiles and → comments), and
events (%d: jsonb, numeric(12,2), timestamptz, integer[], interval, → profiles); an enum, identity columns,
5 foreign keys, a unique constraint, 5 secondary indexes, analyzed. Target: a fresh database of the same
server for every copy. Baselines, measured in the same run: `+"`pg_dump -Fd -j %d`"+` then `+"`pg_restore -j %d --no-owner --no-privileges`"+`
into a fresh database, with the server's own client tools (%s), and the tables extractor reading every
partition of every table, %d at a time, and discarding the rows (the limit of the read). baasmigrate:
`+"`%s`"+`. Each round runs the extract-only read, then dump+restore and migrate
alternating which goes first, and checks that both copies hold the source's rows (per table, the count
and the sum of a hash of every row's text); the round with the median ratio is shown. CPU of PostgreSQL's
backends: those serving the source and target databases, read from /proc (PostgreSQL runs on this machine;
parallel index builds' workers are not counted).

| run (median of %d rounds) | time | rate | CPU of our process (or pg_dump + pg_restore) | CPU of PostgreSQL's backends |
|---|---:|---:|---:|---:|
| extract only (the read) | %s | %s | %s | %s |
| pg_dump + pg_restore (baseline) | %s (%s + %s) | %s | %s | %s |
| baasmigrate migrate | %s | %s | %s | %s |

- migrate ÷ (pg_dump + pg_restore): **%.2f** (goal ≤ 1.2); every round, in order: %s
- migrate ÷ extract only: %.2f
- of migrate's time in the median round, writing the keys and indexes (tables in parallel) took %s s and the foreign keys and sequences %s s (the summary's seconds)
%s
- load average at the end: %s

baasmigrate's time includes what pg_dump and pg_restore do not do: reading the catalog and planning key
ranges stored with the run, committing every batch with its partition's checkpoint in the same
transaction (so a kill -9 resumes after the last batch), and values moving in binary (pg_dump moves
text). Like pg_restore it creates the keys, indexes and foreign keys after the rows.
`, time.Now().UTC().Format("2006-01-02"), benchreport.Machine(), strings.Join(append([]string{"go run ./bench/tables"}, os.Args[1:]...), " "),
		pgVersion, rows, s.profiles, s.posts, s.comments, s.events, o.workers, o.workers, pgVersion, o.workers,
		"baasmigrate "+strings.Join(migrateArgs, " "), len(rounds),
		r.extract.Round(time.Millisecond), rate(r.extract), r.extractCPU.Round(time.Millisecond), benchreport.CPUOrNA(r.extractPG),
		r.dump.total().Round(time.Millisecond), r.dump.dump.Round(time.Millisecond), r.dump.restore.Round(time.Millisecond), rate(r.dump.total()),
		r.dump.cpu.Round(time.Millisecond), benchreport.CPUOrNA(r.dump.pgCPU),
		r.migrate.wall.Round(time.Millisecond), rate(r.migrate.wall), r.migrate.cpu.Round(time.Millisecond), benchreport.CPUOrNA(r.migrate.pgCPU),
		r.ratio(), strings.Join(each, ", "), r.migrate.wall.Seconds()/r.extract.Seconds(),
		r.migrate.streamSeconds(pgcatalog.IndexStream), r.migrate.streamSeconds(pgcatalog.FinishStream),
		rssLine, benchreport.LoadAverage())
	fmt.Print(section)
	if o.record != "" {
		return benchreport.Record(o.record, "tables", section)
	}
	return nil
}

// round is one back-to-back measurement of the three runs.
type round struct {
	extract, extractCPU time.Duration
	// extractPG is the CPU of the backends serving the read (-1: not
	// measured).
	extractPG time.Duration
	dump      dumpRun
	migrate   binaryRun
}

// ratio is migrate's time over dump+restore's.
func (r round) ratio() float64 { return r.migrate.wall.Seconds() / r.dump.total().Seconds() }

// findPGBin returns the directory of pg_dump and pg_restore of the
// server's major version, and that version.
func findPGBin(ctx context.Context, dsn, given string) (string, string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(ctx)
	var num int
	var version string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, current_setting('server_version')").Scan(&num, &version); err != nil {
		return "", "", err
	}
	major := fmt.Sprint(num / 10000)
	candidates := []string{given}
	if given == "" {
		candidates = []string{"/usr/lib/postgresql/" + major + "/bin"}
		if p, err := exec.LookPath("pg_dump"); err == nil {
			candidates = append(candidates, filepath.Dir(p))
		}
	}
	for _, d := range candidates {
		out, err := exec.Command(filepath.Join(d, "pg_dump"), "--version").Output()
		if err != nil {
			continue
		}
		f := strings.Fields(string(out))
		if len(f) == 0 || !strings.HasPrefix(f[len(f)-1], major+".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_restore")); err != nil {
			continue
		}
		return d, version, nil
	}
	return "", "", fmt.Errorf("found no pg_dump and pg_restore of PostgreSQL %s (the server's major version) in %v: give -pg-bin", major, candidates)
}

// dumpRun is what dumpAndRestore measured.
type dumpRun struct {
	dump, restore time.Duration
	// cpu is pg_dump's and pg_restore's, with their workers.
	cpu time.Duration
	// pgCPU is the CPU of the backends serving the source and the target
	// (-1: not measured).
	pgCPU  time.Duration
	target string
}

func (d dumpRun) total() time.Duration { return d.dump + d.restore }

// dumpAndRestore dumps src with pg_dump -Fd -j workers into dir, then
// restores it with pg_restore -j workers into a fresh database (made
// before the clock starts, as migrate's target is).
func dumpAndRestore(ctx context.Context, pgBin, admin, dsn, src, dir string, workers int) (dumpRun, error) {
	var out dumpRun
	if err := os.RemoveAll(dir); err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	target, err := benchreport.RecreateDatabase(ctx, admin, dsn, restoreDB)
	if err != nil {
		return out, err
	}
	out.target = target
	srcEnv, err := libpqEnv(src)
	if err != nil {
		return out, err
	}
	dstEnv, err := libpqEnv(target)
	if err != nil {
		return out, err
	}
	done := make(chan struct{})
	pg := procstat.WatchBackendCPU([]string{dbName(src), restoreDB}, done)
	defer func() {
		if done != nil {
			close(done)
			<-pg
		}
	}()
	var cpu time.Duration
	out.dump, cpu, err = timed(srcEnv, filepath.Join(pgBin, "pg_dump"), "-Fd", "-j", fmt.Sprint(workers), "-f", dir)
	if err != nil {
		return out, err
	}
	out.cpu += cpu
	out.restore, cpu, err = timed(dstEnv, filepath.Join(pgBin, "pg_restore"), "-j", fmt.Sprint(workers), "--no-owner", "--no-privileges", "--exit-on-error", "-d", restoreDB, dir)
	if err != nil {
		return out, err
	}
	out.cpu += cpu
	close(done)
	out.pgCPU, done = <-pg, nil
	return out, nil
}

// libpqEnv is the environment that points libpq's tools at dsn (the
// password stays off their command lines).
func libpqEnv(dsn string) ([]string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return append(os.Environ(), "PGHOST="+cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port), "PGUSER="+cfg.User,
		"PGPASSWORD="+cfg.Password, "PGDATABASE="+cfg.Database, "PGSSLMODE=disable"), nil
}

// timed runs a command and returns its wall time and CPU time (its own
// and its waited-for children's).
func timed(env []string, name string, args ...string) (time.Duration, time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s: %v\n%s", filepath.Base(name), err, stderr.String())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// binaryRun is what runBinary measured.
type binaryRun struct {
	wall, cpu time.Duration
	// pgCPU is the CPU time of the PostgreSQL backends serving the
	// watched databases (-1: not measured).
	pgCPU time.Duration
	rss   int64
	// stdout is what the run printed: its summary, with the seconds
	// each table's (and the index and finish streams') writes took.
	stdout string
}

// streamSeconds returns the seconds column of the summary's line of
// stream (a table's quoted name, or the index or finish stream), "?"
// when there is none.
func (b binaryRun) streamSeconds(stream string) string {
	for _, line := range strings.Split(b.stdout, "\n") {
		if strings.Contains(line, stream) {
			if f := strings.Fields(line); len(f) > 0 {
				return f[len(f)-1]
			}
		}
	}
	return "?"
}

// runBinary runs the built baasmigrate with args and returns its wall
// time, CPU time and peak RSS, and the CPU time of the local PostgreSQL's
// backends serving databases dbs meanwhile.
func runBinary(env, dbs []string, bin string, args ...string) (binaryRun, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan struct{})
	pg := procstat.WatchBackendCPU(dbs, done)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		close(done)
		<-pg
		return binaryRun{}, err
	}
	peak := procstat.WatchPeakRSS(cmd.Process.Pid, done)
	err := cmd.Wait()
	close(done)
	r := binaryRun{wall: time.Since(start), rss: <-peak, pgCPU: <-pg, stdout: stdout.String()}
	if err != nil {
		return binaryRun{}, fmt.Errorf("%s: %v\n%s", args[0], err, stderr.String())
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}

// extractOnly reads every partition of every table with the tables
// extractor, workers at a time across tables, and discards the rows.
func extractOnly(ctx context.Context, src string, workers, want int) (elapsed, cpu, pgCPU time.Duration, err error) {
	done := make(chan struct{})
	pg := procstat.WatchBackendCPU([]string{dbName(src)}, done)
	defer func() {
		if done != nil {
			close(done)
			<-pg
		}
	}()
	start, cpu0 := time.Now(), procstat.SelfCPU()
	ex, err := supabasetables.New(ctx, plugin.Config{"supabase-db": src})
	if err != nil {
		return 0, 0, 0, err
	}
	defer ex.Close()
	rt, streams, err := extractors.PlanSnapshot(ctx, ex, workers)
	if err != nil {
		return 0, 0, 0, err
	}
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, st := range streams {
		for _, p := range st.Partitions {
			g.Go(func() error {
				return ex.Read(gctx, p, rt, "", func(r record.Record) error {
					if _, ok := r.Fields[pgcatalog.FieldTable]; ok {
						n.Add(1)
					}
					return nil
				})
			})
		}
	}
	if err := g.Wait(); err != nil {
		return 0, 0, 0, err
	}
	elapsed, cpu = time.Since(start), procstat.SelfCPU()-cpu0
	close(done)
	pgCPU, done = <-pg, nil
	if got := n.Load(); got != int64(want) {
		return 0, 0, 0, fmt.Errorf("extract-only read %d rows, want %d", got, want)
	}
	return elapsed, cpu, pgCPU, nil
}

// dbName is the database a DSN names.
func dbName(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.Database
}
