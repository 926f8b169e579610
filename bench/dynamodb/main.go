// Command dynamodb benchmarks `baasmigrate migrate --source amplify --only
// documents` (DynamoDB → PostgreSQL) against an extract-only parallel scan
// with the same segments, measured in the same run on the same machine:
// the DynamoDB extractor reading every segment of the table with the same
// number of workers and discarding the items — the limit of the read. The
// goal is migrate ≤ 1.3× the extract-only scan. Results are ratios, the
// median of -runs rounds (each round's shown, the two measurements in
// alternating order), with CPU time and migrate's peak RSS; peak RSS is
// also measured migrating a table twice as big, which should be flat.
//
// It seeds its own tables in DynamoDB Local (DYNAMODB_ENDPOINT) with
// items of every attribute type (extractors/dynamodb/dynamodbtest) and
// migrates into fresh databases of the local PostgreSQL. Run it with the
// local stack up: `make services-up && go run ./bench/dynamodb`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/internal/benchreport"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/procstat"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

func main() {
	var o options
	flag.IntVar(&o.items, "items", 200000, "Items of the benchmark table (2% are Amplify tombstones, skipped)")
	flag.IntVar(&o.workers, "workers", 4, "Scan segments: migrate's --workers and the extract-only scan's")
	flag.IntVar(&o.runs, "runs", 3, "Rounds of (extract only, migrate); the median round is reported")
	flag.StringVar(&o.record, "record", "", "Also write the result section into this Markdown file (e.g. BENCHMARKS.md)")
	flag.BoolVar(&o.double, "double", true, "Also migrate a table of twice the items once, to report peak RSS at 2N")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/dynamodb:", err)
		os.Exit(1)
	}
}

type options struct {
	items, workers, runs int
	record               string
	double               bool
}

type round struct {
	extract, extractCPU time.Duration
	migrate, migrateCPU time.Duration
	rss                 int64
}

func (r round) ratio() float64 { return r.migrate.Seconds() / r.extract.Seconds() }

func run(ctx context.Context, o options) error {
	endpoint, err := benchreport.Need(dynamodbtest.EndpointVar)
	if err != nil {
		return err
	}
	dsn, err := benchreport.Need("DATABASE_URL")
	if err != nil {
		return err
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		os.Setenv("AWS_ACCESS_KEY_ID", "local")
		os.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	}
	c := dynamodbtest.Client(endpoint)
	dir, err := os.MkdirTemp("", "bench-dynamodb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchreport.Build(dir)
	if err != nil {
		return err
	}

	table, live, err := seed(ctx, c, "BenchTodo", o.items)
	if err != nil {
		return err
	}
	defer c.DeleteTable(context.WithoutCancel(ctx), &ddb.DeleteTableInput{TableName: aws.String(table)})

	var rounds []round
	for i := range o.runs {
		var r round
		extract := func() error {
			var err error
			r.extract, r.extractCPU, err = extractOnly(ctx, endpoint, table, o.workers, live)
			return err
		}
		migrate := func() error {
			var err error
			r.migrate, r.migrateCPU, r.rss, err = migrateOnce(ctx, bin, dsn, endpoint, table, o.workers, live, i)
			return err
		}
		if err := benchreport.Alternately(i, extract, migrate); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "round %d: extract-only %s (CPU %s), migrate %s (CPU %s, peak RSS %d MiB): ratio %.2f\n",
			i+1, r.extract.Round(time.Millisecond), r.extractCPU.Round(time.Millisecond),
			r.migrate.Round(time.Millisecond), r.migrateCPU.Round(time.Millisecond), r.rss>>20, r.ratio())
		rounds = append(rounds, r)
	}
	med := benchreport.Median(rounds, round.ratio)

	rssLine := fmt.Sprintf("peak RSS of migrate: %d MiB at %d items", med.rss>>20, o.items)
	if o.double {
		// DynamoDB Local holds its tables in memory: make room first.
		c.DeleteTable(ctx, &ddb.DeleteTableInput{TableName: aws.String(table)})
		big, bigLive, err := seed(ctx, c, "BenchTodo2x", 2*o.items)
		if err != nil {
			return err
		}
		_, _, rss2, err := migrateOnce(ctx, bin, dsn, endpoint, big, o.workers, bigLive, 99)
		c.DeleteTable(context.WithoutCancel(ctx), &ddb.DeleteTableInput{TableName: aws.String(big)})
		if err != nil {
			return err
		}
		rssLine += fmt.Sprintf(", %d MiB at %d items (×%.2f for twice the data)", rss2>>20, 2*o.items, float64(rss2)/float64(med.rss))
	}

	var each []string
	for _, r := range rounds {
		each = append(each, fmt.Sprintf("%.2f", r.ratio()))
	}
	rate := func(d time.Duration) float64 { return float64(live) / d.Seconds() }
	section := fmt.Sprintf(`## DynamoDB → PostgreSQL (bench/dynamodb)

%s, %s; `+"`%s`"+`. DynamoDB Local (in memory, on the same machine) holds
%d items of every attribute type (%d live, the rest Amplify tombstones);
%d scan segments for both. Median of %d rounds (ratios of each: %s).

| | wall | items/s | CPU (ours) |
|---|---|---|---|
| extract-only parallel scan | %s | %.0f | %s |
| migrate --source amplify --only documents | %s | %.0f | %s |

**migrate / extract-only: %.2f** (goal ≤ 1.3). %s. Load average at the end: %s.
`, time.Now().UTC().Format("2006-01-02"), benchreport.Machine(), strings.Join(append([]string{"go run ./bench/dynamodb"}, os.Args[1:]...), " "),
		o.items, live, o.workers, o.runs, strings.Join(each, ", "),
		med.extract.Round(time.Millisecond), rate(med.extract), med.extractCPU.Round(time.Millisecond),
		med.migrate.Round(time.Millisecond), rate(med.migrate), med.migrateCPU.Round(time.Millisecond),
		med.ratio(), rssLine, benchreport.LoadAverage())
	fmt.Print(section)
	if o.record != "" {
		return benchreport.Record(o.record, "dynamodb", section)
	}
	return nil
}

// seed makes a fresh table named after prefix holding n generated items
// and returns its name and how many of them are live (not tombstones).
func seed(ctx context.Context, c *ddb.Client, prefix string, n int) (string, int64, error) {
	table := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if err := dynamodbtest.CreateTable(ctx, c, table, "id", "S", "", ""); err != nil {
		return "", 0, err
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	const chunk = 5000
	g.SetLimit(4)
	for from := 0; from < n; from += chunk {
		g.Go(func() error { return dynamodbtest.Seed(gctx, c, table, from, min(from+chunk, n)) })
	}
	if err := g.Wait(); err != nil {
		return "", 0, err
	}
	live := int64(0)
	for i := range n {
		if !dynamodbtest.Deleted(i) {
			live++
		}
	}
	fmt.Fprintf(os.Stderr, "seeded %s: %d items in %s\n", table, n, time.Since(start).Round(time.Second))
	return table, live, nil
}

// extractOnly scans table with the DynamoDB extractor, workers segments
// read at once, discarding the items.
func extractOnly(ctx context.Context, endpoint, table string, workers int, want int64) (time.Duration, time.Duration, error) {
	start, cpu0 := time.Now(), procstat.SelfCPU()
	ex, err := dynamodb.New(ctx, plugin.Config{"dynamodb-endpoint": endpoint, "dynamodb-tables": table, "aws-region": "us-east-1"})
	if err != nil {
		return 0, 0, err
	}
	defer ex.Close()
	rt, streams, err := extractors.PlanSnapshot(ctx, ex, workers)
	if err != nil {
		return 0, 0, err
	}
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, st := range streams {
		for _, p := range st.Partitions {
			g.Go(func() error {
				return ex.Read(gctx, p, rt, "", func(record.Record) error { n.Add(1); return nil })
			})
		}
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	elapsed, cpu := time.Since(start), procstat.SelfCPU()-cpu0
	if got := n.Load(); got != want {
		return 0, 0, fmt.Errorf("extract-only read %d items, want %d", got, want)
	}
	return elapsed, cpu, nil
}

// migrateOnce migrates table into a fresh database and checks the count.
func migrateOnce(ctx context.Context, bin, dsn, endpoint, table string, workers int, want int64, i int) (wall, cpu time.Duration, rss int64, err error) {
	target, drop, err := benchreport.FreshDatabase(ctx, dsn, fmt.Sprintf("bench_dynamodb_%d", i))
	if err != nil {
		return 0, 0, 0, err
	}
	defer drop()
	cmd := exec.Command(bin, "migrate", "--source", "amplify", "--only", "documents", "--dynamodb-tables", table,
		"--workers", fmt.Sprint(workers), "--no-progress")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+target, "DYNAMODB_ENDPOINT="+endpoint)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	peak := procstat.WatchPeakRSS(cmd.Process.Pid, done)
	err = cmd.Wait()
	close(done)
	wall, rss = time.Since(start), <-peak
	if err != nil {
		return 0, 0, 0, fmt.Errorf("migrate: %v\n%s", err, stderr.String())
	}
	cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close(ctx)
	var name string
	var got int64
	if err := conn.QueryRow(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&name); err != nil {
		return 0, 0, 0, fmt.Errorf("finding the migrated table: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{"public", name}.Sanitize()).Scan(&got); err != nil {
		return 0, 0, 0, err
	}
	if got != want {
		return 0, 0, 0, fmt.Errorf("migrate copied %d items, want %d", got, want)
	}
	return wall, cpu, rss, nil
}
