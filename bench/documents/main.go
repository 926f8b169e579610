// Command documents benchmarks `baasmigrate migrate --only documents`
// against two baselines measured in the same run on the same machine:
//
//   - extract-only: the same extractor reading every document with the same
//     number of workers and nothing else — the limit of the read;
//   - raw COPY: PostgreSQL's COPY of exactly the rows migrate produced into
//     the same tables (without foreign keys), with the same parallelism —
//     the limit of the load.
//
// A pipelined migration should take about as long as the slower of the two,
// not their sum. Results are ratios (machines here are shared and noisy),
// the median of -runs rounds with every round's shown, beside the CPU of
// our process and of PostgreSQL's backends per 1,000 documents. It also
// reports the billed reads per document of a run without --mapping (our
// emulator counts them) and peak RSS at N and 2N documents; -profiles
// keeps CPU and allocation profiles of every migrate.
// Run it with the local stack up: `make services-up && go run ./bench/documents`.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
	"github.com/baasmigrate/baasmigrate/extractors"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
	"github.com/baasmigrate/baasmigrate/internal/benchreport"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/procstat"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
	"github.com/baasmigrate/baasmigrate/mappings"
)

func main() {
	var o options
	flag.IntVar(&o.n, "docs", 200000, "Approximate number of documents to migrate")
	flag.IntVar(&o.workers, "workers", 4, "Workers for migrate and both baselines")
	flag.IntVar(&o.runs, "runs", 9, "Rounds of (extract only, migrate, extract only, raw COPY); the median round is reported (rounds on a shared 2-CPU machine spread by ±15%, so more than 5)")
	flag.StringVar(&o.record, "record", "", "Also write the result section into this Markdown file (e.g. BENCHMARKS.md)")
	flag.StringVar(&o.profiles, "profiles", "", "Write CPU and allocation profiles of every round's migrate into this directory (migrate-N.cpu.pprof, migrate-N.allocs.pprof)")
	flag.BoolVar(&o.double, "double", true, "Also migrate twice the documents once, to report peak RSS at 2N")
	flag.BoolVar(&o.reads, "reads", true, "Also run migrate once without --mapping and report the emulator's billed reads per document")
	flag.StringVar(&o.project, "project", "", "Read this emulator project, seeded by an earlier run with -keep and the same -docs, instead of seeding one (for comparing builds on the same data)")
	flag.BoolVar(&o.keep, "keep", false, "Keep the seeded documents in the emulator when done, and print their project (for -project)")
	flag.StringVar(&o.bin, "bin", "", "Measure this baasmigrate binary instead of building ./cmd/baasmigrate (for comparing builds)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/documents:", err)
		os.Exit(1)
	}
}

// options are the program's flags.
type options struct {
	n, workers, runs int
	record, profiles string
	double, reads    bool
	project, bin     string
	keep             bool
}

func run(ctx context.Context, o options) error {
	host, err := benchreport.Need("FIRESTORE_EMULATOR_HOST")
	if err != nil {
		return err
	}
	admin, err := benchreport.Need("BAASMIGRATE_PG_ADMIN_URL")
	if err != nil {
		return err
	}
	dsn, err := benchreport.Need("DATABASE_URL")
	if err != nil {
		return err
	}
	os.Setenv("FIRESTORE_EMULATOR_HOST", host)
	project := o.project
	if project == "" {
		project = fmt.Sprintf("demo-bench-%d", time.Now().Unix())
	}
	dir, err := os.MkdirTemp("", "bench-documents-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.profiles != "" {
		if err := os.MkdirAll(o.profiles, 0o755); err != nil {
			return err
		}
	}

	// The source: the demo app scaled to about n documents.
	scale := demoapp.Scale{Users: o.n / 5, Posts: o.n / 10, CommentsPerPost: 3, Orders: o.n / 20, ItemsPerOrder: 3, Archive: o.n / 100}
	var docs int
	switch {
	case o.project != "":
		docs = len(demoapp.Documents(1, scale)) // what seed wrote for these -docs
	default:
		if docs, err = seed(ctx, project, scale); err != nil {
			wipe(host, project)
			return err
		}
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "keeping the documents: -project %s -docs %d\n", project, o.n)
	} else {
		defer wipe(host, project)
	}

	bin := o.bin
	if bin == "" {
		if bin, err = benchreport.Build(dir); err != nil {
			return err
		}
	}
	mappingPath := filepath.Join(dir, "mapping.yaml")
	env := append(os.Environ(), "GCLOUD_PROJECT="+project)
	if out, err := command(env, bin, "infer", "--out", mappingPath).CombinedOutput(); err != nil {
		return fmt.Errorf("infer: %v\n%s", err, out)
	}
	m, err := mappings.Load(mappingPath)
	if err != nil {
		return err
	}
	migrateArgs := func(target string) []string {
		return []string{"migrate", "--only", "documents", "--mapping", mappingPath, "--postgres", target,
			"--workers", fmt.Sprint(o.workers), "--no-progress"}
	}

	// Rounds of extract-only, migrate (into a fresh database), extract-only
	// again and raw COPY, back to back: the machine is shared, so each
	// round's ratios are taken within the round and the median round is
	// reported.
	//
	// The emulator's CPU in each phase: it shares this machine's CPUs with
	// us and PostgreSQL (real Firestore's serving cost is not on the
	// migrating machine).
	emu := testenv.ServicePID("firestoreemu")
	emuCPU := func() time.Duration {
		if emu == 0 {
			return -1
		}
		return procstat.ProcessCPU(emu)
	}
	// Before each phase that reads the emulator, it collects its garbage:
	// it holds every project's documents (other runs' too), and one
	// collection of that heap costs it seconds of CPU, which would
	// otherwise fall at random into the read or into migrate.
	hooks := firestoreemu.HooksFor(host)
	collect := func() error {
		_, err := hooks.CollectGarbage(ctx)
		if errors.Is(err, firestoreemu.ErrNotBaasmigrate) {
			return nil // another emulator: nothing to even out
		}
		return err
	}
	var rounds []round
	for i := range o.runs {
		migrateDSN, err := benchreport.RecreateDatabase(ctx, admin, dsn, "bench_migrate")
		if err != nil {
			return err
		}
		copyDSN, err := benchreport.RecreateDatabase(ctx, admin, dsn, "bench_copy")
		if err != nil {
			return err
		}
		// The read is measured before and after migrate, and the round
		// takes their mean: the machine's speed drifts by 10-20% within
		// seconds (its CPUs are shared with other machines' work), and
		// the drift then weighs on both sides alike.
		var r round
		read := func() (wall, cpu, emuUsed time.Duration, err error) {
			if err := collect(); err != nil {
				return 0, 0, 0, err
			}
			runtime.GC() // the read runs in this process: the same for it
			e0 := emuCPU()
			if wall, cpu, err = extractOnly(ctx, project, host, o.workers, docs); err != nil {
				return 0, 0, 0, err
			}
			return wall, cpu, cpuDelta(e0, emuCPU()), nil
		}
		before, beforeCPU, beforeEmu, err := read()
		if err != nil {
			return err
		}
		if err := collect(); err != nil {
			return err
		}
		e1b := emuCPU()
		menv := env
		if o.profiles != "" {
			menv = append(slices.Clip(env),
				"BAASMIGRATE_CPUPROFILE="+filepath.Join(o.profiles, fmt.Sprintf("migrate-%d.cpu.pprof", i+1)),
				"BAASMIGRATE_MEMPROFILE="+filepath.Join(o.profiles, fmt.Sprintf("migrate-%d.allocs.pprof", i+1)))
		}
		run, err := runBinary(menv, bin, "bench_migrate", migrateArgs(migrateDSN)...)
		if err != nil {
			return err
		}
		r.migrateEmu = cpuDelta(e1b, emuCPU())
		r.migrate, r.migrateCPU, r.migratePG, r.rss = run.wall, run.cpu, run.pgCPU, run.rss
		after, afterCPU, afterEmu, err := read()
		if err != nil {
			return err
		}
		r.extract, r.extractCPU = (before+after)/2, (beforeCPU+afterCPU)/2
		r.extractEmu = -1
		if beforeEmu >= 0 && afterEmu >= 0 {
			r.extractEmu = (beforeEmu + afterEmu) / 2
		}
		var rows int64
		if r.copy, r.copyPG, rows, err = rawCopy(ctx, m, migrateDSN, copyDSN, o.workers); err != nil {
			return err
		}
		if rows < int64(docs) {
			return fmt.Errorf("raw COPY moved %d rows; migrate should have produced at least %d", rows, docs)
		}
		fmt.Fprintf(os.Stderr, "round %d: extract %s and %s after (CPU %s, emulator %s), migrate %s (CPU %s, PostgreSQL %s, emulator %s), copy %s (PostgreSQL %s): ratio %.2f\n",
			i+1, before.Round(time.Millisecond), after.Round(time.Millisecond), r.extractCPU, r.extractEmu, r.migrate, r.migrateCPU, r.migratePG, r.migrateEmu, r.copy, r.copyPG, r.ratio())
		rounds = append(rounds, r)
	}
	r := benchreport.Median(rounds, round.ratio)
	extract, copyTime, migrate := r.extract, r.copy, r.migrate
	var ratios []string
	var peakN int64
	for _, x := range rounds {
		ratios = append(ratios, fmt.Sprintf("%.2f", x.ratio()))
		peakN = max(peakN, x.rss)
	}
	slowest := max(extract, copyTime)
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f docs/s", float64(docs)/d.Seconds()) }
	perK := func(cpu time.Duration) string {
		if cpu < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f ms", float64(cpu.Microseconds())/1000/(float64(docs)/1000))
	}

	// Billed reads of a run without --mapping (it infers a mapping first).
	readsLine := "- billed reads per document of `migrate` without `--mapping`: not measured (`-reads=false`)"
	if o.reads {
		line, err := billedReads(ctx, env, bin, host, project, admin, dsn, o.workers, docs)
		if err != nil {
			return err
		}
		readsLine = line
	}

	// Peak RSS at twice the documents.
	rssLine := fmt.Sprintf("- peak RSS of migrate at %d documents: %d MiB (highest of the rounds; the median round's %d MiB); 2N not measured (`-double=false`)", docs, peakN>>20, r.rss>>20)
	if o.double {
		project2 := project + "-2n"
		defer wipe(host, project2)
		double := scale
		double.Users, double.Posts, double.Orders, double.Archive = 2*scale.Users, 2*scale.Posts, 2*scale.Orders, 2*scale.Archive
		docs2, err := seed(ctx, project2, double)
		if err != nil {
			return err
		}
		target, err := benchreport.RecreateDatabase(ctx, admin, dsn, "bench_migrate")
		if err != nil {
			return err
		}
		env2 := append(os.Environ(), "GCLOUD_PROJECT="+project2)
		run2, err := runBinary(env2, bin, "", migrateArgs(target)...)
		if err != nil {
			return err
		}
		took, rss2 := run2.wall, run2.rss
		fmt.Fprintf(os.Stderr, "2N: %d documents in %s, peak RSS %d MiB\n", docs2, took, rss2>>20)
		rssLine = fmt.Sprintf("- peak RSS of migrate: %d MiB at %d documents (highest of the rounds), %d MiB at %d documents (one run, %s)",
			peakN>>20, docs, rss2>>20, docs2, took.Round(time.Millisecond))
	}

	section := fmt.Sprintf(`## Documents: Firestore emulator → PostgreSQL

Measured %s on %s. Command: `+"`%s`"+`.

Source: our Firestore emulator (the local stack's) holding %d documents of the demo app (%d tables, three
levels of subcollections, every value type). Target: the local PostgreSQL. %d workers, batches of 2,000 documents (the default; 16 MiB at most),
pages of 1,000. Baselines, measured in the same run: the same extractor reading everything and discarding
it (the limit of the read), and PostgreSQL's binary COPY of exactly the rows migrate produced into the same
tables without foreign keys, %d tables at a time (the limit of the load). CPU of PostgreSQL's backends: those
serving the run's database, read from /proc (PostgreSQL runs on this machine); CPU of the emulator: its
process's, in the same phase. Each round reads, migrates, reads again and copies, back to back; the read's
figures are the mean of its two runs around migrate (the machine's speed drifts within seconds). The round with
the median ratio is shown.
Before the read and before migrate the emulator collects its garbage (its hook POST /emulator/v1/gc), so that a
collection of its heap, which holds every project's documents, does not fall at random into one phase.

| run (median of %d rounds) | time | rate | CPU of our process | per 1,000 documents | CPU of PostgreSQL's backends | per 1,000 documents | CPU of the emulator |
|---|---:|---:|---:|---:|---:|---:|---:|
| extract only (baseline: the read) | %s | %s | %s | %s | | | %s |
| raw COPY of the final rows (baseline: the load) | %s | %s | | | %s | %s | |
| baasmigrate migrate | %s | %s | %s | %s | %s | %s | %s |

- migrate ÷ slower baseline: **%.2f** (1.0 would be a perfect pipeline); every round, in order: %s
- migrate ÷ (extract + COPY): **%.2f** (below 1.0: reading and writing overlap)
- CPU of the three processes together, migrate ÷ extract only: **%s** (the machine's %d CPUs are the limit when the
  emulator runs beside us: with both phases keeping them busy, the wall-time ratio follows this one; above it, migrate left CPUs idle)
%s
%s
- load average at the end: %s

The emulator, PostgreSQL and baasmigrate share the machine's CPUs: the read is the bottleneck (the
emulator's gRPC serving and our decoding of it), and migrate's own work — transform, the COPY of each batch
(straight into the tables this run created, whose foreign keys are built once at the end; see
docs/loaders.md), the checkpoint in the same transaction — and PostgreSQL's compete with it for the same cores.
`, time.Now().UTC().Format("2006-01-02"), benchreport.Machine(), strings.Join(append([]string{"go run ./bench/documents"}, os.Args[1:]...), " "),
		docs, len(m.Tables), o.workers, o.workers, len(rounds),
		extract.Round(time.Millisecond), rate(extract), r.extractCPU.Round(time.Millisecond), perK(r.extractCPU), emuOrNA(r.extractEmu),
		copyTime.Round(time.Millisecond), rate(copyTime), benchreport.CPUOrNA(r.copyPG), perK(r.copyPG),
		migrate.Round(time.Millisecond), rate(migrate), r.migrateCPU.Round(time.Millisecond), perK(r.migrateCPU), benchreport.CPUOrNA(r.migratePG), perK(r.migratePG), emuOrNA(r.migrateEmu),
		migrate.Seconds()/slowest.Seconds(), strings.Join(ratios, ", "), migrate.Seconds()/(extract+copyTime).Seconds(),
		r.cpuRatio(), runtime.NumCPU(),
		readsLine, rssLine, benchreport.LoadAverage())
	fmt.Print(section)
	if o.record != "" {
		return benchreport.Record(o.record, "documents", section)
	}
	return nil
}

// wipe deletes the documents of a project the program seeded, so that
// they do not stay in the shared emulator's memory; only our emulator
// offers that (others keep them until they restart).
func wipe(host, project string) {
	ctx := context.Background()
	hooks := firestoreemu.HooksFor(host)
	if _, err := hooks.Info(ctx); err != nil {
		return
	}
	if err := hooks.Reset(ctx, project); err != nil {
		fmt.Fprintf(os.Stderr, "deleting the documents of %s: %v\n", project, err)
	}
}

// seed writes the demo app at scale s into project and returns how many
// documents it wrote.
func seed(ctx context.Context, project string, s demoapp.Scale) (int, error) {
	all := demoapp.Documents(1, s)
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	start := time.Now()
	if err := demoapp.Seed(ctx, client, all); err != nil {
		return 0, fmt.Errorf("seeding %s: %w", project, err)
	}
	fmt.Fprintf(os.Stderr, "seeded %d documents into %s in %s\n", len(all), project, time.Since(start).Round(time.Millisecond))
	return len(all), nil
}

// billedReads runs migrate without --mapping into a fresh database and
// returns the report line of the billed reads per document the emulator
// counted for it (its hooks count them; other emulators cannot say).
func billedReads(ctx context.Context, env []string, bin, host, project, admin, dsn string, workers, docs int) (string, error) {
	hooks := firestoreemu.HooksFor(host)
	if _, err := hooks.Info(ctx); err != nil {
		return "- billed reads per document of `migrate` without `--mapping`: not measured (" + err.Error() + ")", nil
	}
	target, err := benchreport.RecreateDatabase(ctx, admin, dsn, "bench_infer")
	if err != nil {
		return "", err
	}
	if _, err := hooks.ResetDocumentsRead(ctx, project); err != nil {
		return "", err
	}
	run, err := runBinary(env, bin, "", "migrate", "--only", "documents", "--postgres", target,
		"--workers", fmt.Sprint(workers), "--no-progress")
	if err != nil {
		return "", err
	}
	took := run.wall
	st, err := hooks.DocumentsRead(ctx, project)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "without --mapping: %d billed reads for %d documents in %s\n", st.DocumentsRead, docs, took)
	return fmt.Sprintf("- billed reads per document of `migrate` without `--mapping` (it infers the mapping itself; the emulator's count): **%.2f** (%d reads for %d documents, %s)",
		float64(st.DocumentsRead)/float64(docs), st.DocumentsRead, docs, took.Round(time.Millisecond)), nil
}

// round is one back-to-back measurement of the three runs.
type round struct {
	extract, migrate, copy time.Duration
	extractCPU, migrateCPU time.Duration
	// extractEmu and migrateEmu are the Firestore emulator's CPU during
	// the extract-only read and migrate (-1: not measured).
	extractEmu, migrateEmu time.Duration
	// migratePG and copyPG are the CPU of PostgreSQL's backends serving
	// migrate and the raw COPY (-1: not measured).
	migratePG, copyPG time.Duration
	rss               int64
}

// cpuDelta is the CPU used between two readings of ProcessCPU, or -1 when
// either could not be read.
func cpuDelta(before, after time.Duration) time.Duration {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

// emuOrNA prints the emulator's CPU, or "n/a" when it was not measured
// (no pid file of the local stack's emulator).
func emuOrNA(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return d.Round(10 * time.Millisecond).String()
}

// cpuRatio is the CPU migrate's three processes (ours, PostgreSQL's
// backends, the emulator) used over what the bare read's two used, or
// "n/a" when one was not measured.
func (r round) cpuRatio() string {
	if r.migratePG < 0 || r.migrateEmu < 0 || r.extractEmu < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", (r.migrateCPU+r.migratePG+r.migrateEmu).Seconds()/(r.extractCPU+r.extractEmu).Seconds())
}

// ratio is migrate's time over the slower baseline's.
func (r round) ratio() float64 { return r.migrate.Seconds() / max(r.extract, r.copy).Seconds() }

// binaryRun is what runBinary measured.
type binaryRun struct {
	wall, cpu time.Duration
	// pgCPU is the CPU time of the PostgreSQL backends serving the
	// watched database (-1: not measured).
	pgCPU time.Duration
	rss   int64
}

// runBinary runs the built baasmigrate with args and returns its wall
// time, CPU time and peak RSS, and the CPU time of the local PostgreSQL's
// backends serving database db meanwhile.
func runBinary(env []string, bin, db string, args ...string) (binaryRun, error) {
	cmd := command(env, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	pg := procstat.WatchBackendCPU([]string{db}, done)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		close(done)
		return binaryRun{}, err
	}
	peak := procstat.WatchPeakRSS(cmd.Process.Pid, done)
	err := cmd.Wait()
	close(done)
	r := binaryRun{wall: time.Since(start), rss: <-peak, pgCPU: <-pg}
	if err != nil {
		return binaryRun{}, fmt.Errorf("%s: %v\n%s", args[0], err, stderr.String())
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}

func command(env []string, bin string, args ...string) *exec.Cmd {
	c := exec.Command(bin, args...)
	c.Env = env
	return c
}

// extractOnly reads every document with the extractor, workers partitions
// at a time, and discards them.
func extractOnly(ctx context.Context, project, host string, workers, want int) (elapsed, cpu time.Duration, err error) {
	ex, err := fsx.New(ctx, plugin.Config{"firebase-project": project, "firestore-emulator-host": host,
		"firestore-page-size": "1000", "firestore-snapshot-window": "1h"})
	if err != nil {
		return 0, 0, err
	}
	defer ex.Close()
	start, cpu0 := time.Now(), procstat.SelfCPU()
	rt, streams, err := extractors.PlanSnapshot(ctx, ex, workers)
	if err != nil {
		return 0, 0, err
	}
	var n atomic.Int64
	for _, st := range streams {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(workers)
		for _, p := range st.Partitions {
			g.Go(func() error {
				return ex.Read(gctx, p, rt, "", func(record.Record) error { n.Add(1); return nil })
			})
		}
		if err := g.Wait(); err != nil {
			return 0, 0, err
		}
	}
	if got := n.Load(); got != int64(want) {
		return 0, 0, fmt.Errorf("extract-only read %d documents, want %d", got, want)
	}
	return time.Since(start), procstat.SelfCPU() - cpu0, nil
}

var _ extractors.Extractor = (*fsx.Extractor)(nil)

// rawCopy copies every table's rows from src to dst with COPY, tables in
// parallel (workers at a time), timing only the load into dst.
func rawCopy(ctx context.Context, m *mappings.Mapping, srcDSN, dstDSN string, workers int) (elapsed, pgCPU time.Duration, rows int64, err error) {
	src, err := pgxpool.New(ctx, srcDSN)
	if err != nil {
		return 0, 0, 0, err
	}
	defer src.Close()
	dst, err := pgxpool.New(ctx, dstDSN)
	if err != nil {
		return 0, 0, 0, err
	}
	defer dst.Close()
	stmts, err := postgres.SchemaChanges(ctx, dst, m)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, s := range stmts {
		if strings.Contains(s.SQL, "FOREIGN KEY") {
			continue // tables load in parallel
		}
		if _, err := dst.Exec(ctx, s.SQL); err != nil {
			return 0, 0, 0, err
		}
	}
	// Dump first (not timed).
	dumps := map[string]*bytes.Buffer{}
	for _, t := range m.Tables {
		conn, err := src.Acquire(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		buf := &bytes.Buffer{}
		_, err = conn.Conn().PgConn().CopyTo(ctx, buf, "COPY "+pgx.Identifier{m.Schema, t.Name}.Sanitize()+" TO STDOUT (FORMAT binary)")
		conn.Release()
		if err != nil {
			return 0, 0, 0, err
		}
		dumps[t.Name] = buf
	}
	var copied atomic.Int64
	done := make(chan struct{})
	pg := procstat.WatchBackendCPU([]string{dbName(dstDSN)}, done)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for name, buf := range dumps {
		g.Go(func() error {
			conn, err := dst.Acquire(gctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			tag, err := conn.Conn().PgConn().CopyFrom(gctx, bytes.NewReader(buf.Bytes()), "COPY "+pgx.Identifier{m.Schema, name}.Sanitize()+" FROM STDIN (FORMAT binary)")
			copied.Add(tag.RowsAffected())
			return err
		})
	}
	err = g.Wait()
	elapsed = time.Since(start)
	close(done)
	pgCPU = <-pg
	if err != nil {
		return 0, 0, 0, err
	}
	return elapsed, pgCPU, copied.Load(), nil
}

// dbName is the database a DSN names.
func dbName(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.Database
}
