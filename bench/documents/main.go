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
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/e2e/demoapp"
	"github.com/baasmigrate/baasmigrate/extractors"
	fsx "github.com/baasmigrate/baasmigrate/extractors/firestore"
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
	flag.Parse()
	if err := run(context.Background(), *docs, *workers); err != nil {
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

func run(ctx context.Context, n, workers int) error {
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
	migrateDSN, err := freshDatabase(ctx, admin, dsn, "bench_migrate")
	if err != nil {
		return err
	}
	copyDSN, err := freshDatabase(ctx, admin, dsn, "bench_copy")
	if err != nil {
		return err
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

	// Baseline 1: extract only.
	extract, err := extractOnly(ctx, project, host, workers, len(all))
	if err != nil {
		return err
	}
	// The migration itself, the real binary.
	cmd := command(env, bin, "migrate", "--only", "documents", "--mapping", mappingPath, "--postgres", migrateDSN,
		"--workers", fmt.Sprint(workers), "--no-progress")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start = time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	peak := procstat.WatchPeakRSS(cmd.Process.Pid, done)
	err = cmd.Wait()
	close(done)
	migrate := time.Since(start)
	rss := <-peak
	if err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, stderr.String())
	}
	// Baseline 2: raw COPY of the rows migrate produced.
	copyTime, rows, err := rawCopy(ctx, m, migrateDSN, copyDSN, workers)
	if err != nil {
		return err
	}
	if rows < int64(len(all)) {
		return fmt.Errorf("raw COPY moved %d rows; migrate should have produced at least %d", rows, len(all))
	}

	slowest := max(extract, copyTime)
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f docs/s", float64(len(all))/d.Seconds()) }
	host2, _ := os.Hostname()
	fmt.Printf(`## Documents: Firestore emulator → PostgreSQL (%s)

Machine: %s, %d CPUs, %s/%s, Go %s. %d documents (demo app: %d tables, three levels of
subcollections), %d workers, batch 500, page 1000. Emulator and PostgreSQL on the same machine.

| run | time | rate |
|---|---|---|
| extract only (baseline: the read) | %s | %s |
| raw COPY of the final rows (baseline: the load) | %s | %s |
| baasmigrate migrate | %s | %s |

- migrate ÷ slower baseline: **%.2f** (1.0 would be a perfect pipeline)
- migrate ÷ (extract + COPY): **%.2f** (below 1.0: reading and writing overlap)
- peak RSS of migrate: %d MiB

`, time.Now().UTC().Format("2006-01-02"), host2, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, strings.TrimPrefix(runtime.Version(), "go"),
		len(all), len(m.Tables), workers,
		extract.Round(time.Millisecond), rate(extract), copyTime.Round(time.Millisecond), rate(copyTime),
		migrate.Round(time.Millisecond), rate(migrate),
		migrate.Seconds()/slowest.Seconds(), migrate.Seconds()/(extract+copyTime).Seconds(), rss>>20)
	return nil
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
func extractOnly(ctx context.Context, project, host string, workers, want int) (time.Duration, error) {
	ex, err := fsx.New(ctx, plugin.Config{"firebase-project": project, "firestore-emulator-host": host,
		"firestore-page-size": "1000", "firestore-snapshot-window": "1h"})
	if err != nil {
		return 0, err
	}
	defer ex.Close()
	start := time.Now()
	rt, err := ex.SnapshotTime(ctx)
	if err != nil {
		return 0, err
	}
	streams, err := ex.Plan(ctx, workers, rt)
	if err != nil {
		return 0, err
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
			return 0, err
		}
	}
	if got := n.Load(); got != int64(want) {
		return 0, fmt.Errorf("extract-only read %d documents, want %d", got, want)
	}
	return time.Since(start), nil
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
