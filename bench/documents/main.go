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
// not their sum. Results are ratios (machines here are shared and noisy);
// run it with the local stack up: `make services-up && go run ./bench/documents`.
package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
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
	docs := flag.Int("docs", 200000, "Approximate number of documents to migrate")
	workers := flag.Int("workers", 4, "Workers for migrate and both baselines")
	runs := flag.Int("runs", 3, "Rounds of (extract only, migrate, raw COPY); the median round is reported")
	record := flag.String("record", "", "Also write the result section into this Markdown file (e.g. BENCHMARKS.md)")
	flag.Parse()
	if err := run(context.Background(), *docs, *workers, *runs, *record); err != nil {
		fmt.Fprintln(os.Stderr, "bench/documents:", err)
		os.Exit(1)
	}
}

func need(key string) (string, error) {
	v, ok := testenv.Lookup(key)
	if !ok {
		return "", fmt.Errorf("%s is not set: run `make services-up` first", key)
	}
	return v, nil
}

func run(ctx context.Context, n, workers, runs int, recordPath string) error {
	host, err := need("FIRESTORE_EMULATOR_HOST")
	if err != nil {
		return err
	}
	admin, err := need("BAASMIGRATE_PG_ADMIN_URL")
	if err != nil {
		return err
	}
	dsn, err := need("DATABASE_URL")
	if err != nil {
		return err
	}
	os.Setenv("FIRESTORE_EMULATOR_HOST", host)
	project := fmt.Sprintf("demo-bench-%d", time.Now().Unix())
	dir, err := os.MkdirTemp("", "bench-documents-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The source: the demo app scaled to about n documents.
	scale := demoapp.Scale{Users: n / 5, Posts: n / 10, CommentsPerPost: 3, Orders: n / 20, ItemsPerOrder: 3, Archive: n / 100}
	all := demoapp.Documents(1, scale)
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := demoapp.Seed(ctx, client, all); err != nil {
		return err
	}
	client.Close()
	fmt.Fprintf(os.Stderr, "seeded %d documents in %s\n", len(all), time.Since(start).Round(time.Millisecond))

	bin := filepath.Join(dir, "baasmigrate")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/baasmigrate").CombinedOutput(); err != nil {
		return fmt.Errorf("building: %v\n%s", err, out)
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

	// Rounds of extract-only, migrate (into a fresh database) and raw COPY,
	// back to back: the machine is shared, so each round's ratios are taken
	// within the round and the median round is reported.
	var rounds []round
	for i := range runs {
		migrateDSN, err := freshDatabase(ctx, admin, dsn, "bench_migrate")
		if err != nil {
			return err
		}
		copyDSN, err := freshDatabase(ctx, admin, dsn, "bench_copy")
		if err != nil {
			return err
		}
		var r round
		if r.extract, r.extractCPU, err = extractOnly(ctx, project, host, workers, len(all)); err != nil {
			return err
		}
		if r.migrate, r.migrateCPU, r.rss, err = migrateOnce(env, bin, mappingPath, migrateDSN, workers); err != nil {
			return err
		}
		var rows int64
		if r.copy, rows, err = rawCopy(ctx, m, migrateDSN, copyDSN, workers); err != nil {
			return err
		}
		if rows < int64(len(all)) {
			return fmt.Errorf("raw COPY moved %d rows; migrate should have produced at least %d", rows, len(all))
		}
		fmt.Fprintf(os.Stderr, "round %d: extract %s, migrate %s, copy %s\n", i+1, r.extract, r.migrate, r.copy)
		rounds = append(rounds, r)
	}
	slices.SortFunc(rounds, func(a, b round) int { return cmp.Compare(a.ratio(), b.ratio()) })
	r := rounds[len(rounds)/2]
	extract, copyTime, migrate, rss := r.extract, r.copy, r.migrate, r.rss
	var all3 []string
	for _, x := range rounds {
		all3 = append(all3, fmt.Sprintf("%.2f", x.ratio()))
	}
	slowest := max(extract, copyTime)
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f docs/s", float64(len(all))/d.Seconds()) }
	section := fmt.Sprintf(`## Documents: Firestore emulator → PostgreSQL

Measured %s on %s. Command: `+"`go run ./bench/documents -record BENCHMARKS.md`"+`.

Source: our Firestore emulator (the local stack's) holding %d documents of the demo app (%d tables, three
levels of subcollections, every value type). Target: the local PostgreSQL. %d workers, batches of 500,
pages of 1,000. Baselines, measured in the same run: the same extractor reading everything and discarding
it (the limit of the read), and PostgreSQL's binary COPY of exactly the rows migrate produced into the same
tables without foreign keys, %d tables at a time (the limit of the load).

| run (median of %d rounds) | time | rate | CPU of our process |
|---|---:|---:|---:|
| extract only (baseline: the read) | %s | %s | %s |
| raw COPY of the final rows (baseline: the load) | %s | %s | (server side) |
| baasmigrate migrate | %s | %s | %s |

- migrate ÷ slower baseline: **%.2f** (1.0 would be a perfect pipeline); every round: %s
- migrate ÷ (extract + COPY): **%.2f** (below 1.0: reading and writing overlap)
- peak RSS of migrate: %d MiB; load average at the end: %s

The emulator, PostgreSQL and baasmigrate share the machine's CPUs: the read is the bottleneck (the
emulator's gRPC serving), and migrate's own work — transform, COPY into a staging table, the upsert that
skips unchanged rows, the checkpoint in the same transaction — competes with it for the same cores.
`, time.Now().UTC().Format("2006-01-02"), benchreport.Machine(),
		len(all), len(m.Tables), workers, workers, len(rounds),
		extract.Round(time.Millisecond), rate(extract), r.extractCPU.Round(time.Millisecond),
		copyTime.Round(time.Millisecond), rate(copyTime),
		migrate.Round(time.Millisecond), rate(migrate), r.migrateCPU.Round(time.Millisecond),
		migrate.Seconds()/slowest.Seconds(), strings.Join(all3, ", "), migrate.Seconds()/(extract+copyTime).Seconds(), rss>>20, benchreport.LoadAverage())
	fmt.Print(section)
	if recordPath != "" {
		return benchreport.Record(recordPath, "documents", section)
	}
	return nil
}

// round is one back-to-back measurement of the three runs.
type round struct {
	extract, migrate, copy time.Duration
	extractCPU, migrateCPU time.Duration
	rss                    int64
}

// ratio is migrate's time over the slower baseline's.
func (r round) ratio() float64 { return r.migrate.Seconds() / max(r.extract, r.copy).Seconds() }

// migrateOnce runs the real binary and returns its wall time, CPU time and
// peak RSS.
func migrateOnce(env []string, bin, mappingPath, target string, workers int) (time.Duration, time.Duration, int64, error) {
	cmd := command(env, bin, "migrate", "--only", "documents", "--mapping", mappingPath, "--postgres", target,
		"--workers", fmt.Sprint(workers), "--no-progress")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan struct{})
	peak := procstat.WatchPeakRSS(cmd.Process.Pid, done)
	err := cmd.Wait()
	close(done)
	elapsed, rss := time.Since(start), <-peak
	if err != nil {
		return 0, 0, 0, fmt.Errorf("migrate: %v\n%s", err, stderr.String())
	}
	return elapsed, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss, nil
}

func command(env []string, bin string, args ...string) *exec.Cmd {
	c := exec.Command(bin, args...)
	c.Env = env
	return c
}

// freshDatabase (re)creates database name and returns its DSN.
func freshDatabase(ctx context.Context, admin, dsn, name string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)",
		"CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER baasmigrate",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", err
		}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name), nil
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
	start, cpu0 := time.Now(), processCPU()
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
	return time.Since(start), processCPU() - cpu0, nil
}

// processCPU is the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var _ extractors.Extractor = (*fsx.Extractor)(nil)

// rawCopy copies every table's rows from src to dst with COPY, tables in
// parallel (workers at a time), timing only the load into dst.
func rawCopy(ctx context.Context, m *mappings.Mapping, srcDSN, dstDSN string, workers int) (time.Duration, int64, error) {
	src, err := pgxpool.New(ctx, srcDSN)
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	dst, err := pgxpool.New(ctx, dstDSN)
	if err != nil {
		return 0, 0, err
	}
	defer dst.Close()
	stmts, err := postgres.SchemaChanges(ctx, dst, m)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range stmts {
		if strings.Contains(s.SQL, "FOREIGN KEY") {
			continue // tables load in parallel
		}
		if _, err := dst.Exec(ctx, s.SQL); err != nil {
			return 0, 0, err
		}
	}
	// Dump first (not timed).
	dumps := map[string]*bytes.Buffer{}
	for _, t := range m.Tables {
		conn, err := src.Acquire(ctx)
		if err != nil {
			return 0, 0, err
		}
		buf := &bytes.Buffer{}
		_, err = conn.Conn().PgConn().CopyTo(ctx, buf, "COPY "+pgx.Identifier{m.Schema, t.Name}.Sanitize()+" TO STDOUT (FORMAT binary)")
		conn.Release()
		if err != nil {
			return 0, 0, err
		}
		dumps[t.Name] = buf
	}
	var rows atomic.Int64
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
			rows.Add(tag.RowsAffected())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return time.Since(start), rows.Load(), nil
}
