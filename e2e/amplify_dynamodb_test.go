package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/dynamodb"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/migration"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// ddbEnv is the CLI's environment for DynamoDB Local: the target, the
// endpoint, and credentials for the AWS chain (DynamoDB Local checks none).
func ddbEnv(dsn, endpoint string, extra ...string) []string {
	env := []string{"DATABASE_URL=" + dsn, "DYNAMODB_ENDPOINT=" + endpoint, "AWS_REGION=us-east-1"}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		env = append(env, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local")
	}
	return clitest.Env(append(env, extra...)...)
}

// TestAmplifyDynamoDB migrates a DynamoDB Local table of 10,000 items of
// every attribute type (hostile IDs and attribute names, Amplify's
// bookkeeping attributes, 200 tombstones) in 4 scan segments: plan
// estimates the read capacity and finds every item missing; migrate is
// killed with SIGKILL mid-copy and a second run finishes it, its printed
// and stored counts accounting for every item read, the tombstones
// skipped exactly once each; verify finds every item identical (no
// tombstone missing); exact decimals, sets and the Amplify attributes are
// checked in PostgreSQL directly.
func TestAmplifyDynamoDB(t *testing.T) {
	ctx := context.Background()
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	table := dynamodbtest.Table(t, c, "id", "S", "", "")
	const n = 10000
	live := int64(n - n/50) // every 50th item is a tombstone, skipped
	if err := dynamodbtest.Seed(ctx, c, table, 0, n); err != nil {
		t.Fatal(err)
	}
	dsn, pool := targetDatabase(t)
	env := ddbEnv(dsn, ep)
	common := []string{"--source", "amplify", "--only", "documents", "--dynamodb-tables", table}

	res := clitest.Run(t, env, append([]string{"plan"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	d := compareDoc(t, res.Stdout)
	var estimated bool
	for _, k := range d.Kinds {
		if k.Kind == "document" && k.Estimate != nil {
			estimated = true
			if k.Estimate.Records != n || k.Estimate.Reads <= 0 || k.Estimate.Reads >= n {
				t.Errorf("plan's estimate: %+v; want %d items and read capacity by size (fewer units than items)", *k.Estimate, n)
			}
		}
	}
	if !estimated {
		t.Errorf("plan gives no read estimate:\n%s", res.Stdout)
	}
	for name, tr := range tableReports(t, d, "document") {
		if tr.Source != live || tr.MissingInTarget != live {
			t.Errorf("plan %s: %+v; want %d to copy", name, tr, live)
		}
	}

	migrate := append([]string{"migrate"}, append(common, "--workers", "4", "--batch-size", "100", "--dynamodb-page-size", "50")...)
	if !clitest.KillAt(t, env, migrate, 3000, testenv.Committed(pool), 2*time.Minute) {
		t.Fatal("the run finished before it could be killed at 3000 items")
	}
	tbl := targetTable(t, pool)
	var partial int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tbl).Scan(&partial); err != nil {
		t.Fatal(err)
	}
	if partial == 0 || partial >= live {
		t.Fatalf("killed at 3000 items, the run had copied %d of %d", partial, live)
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	res = clitest.Run(t, env, append(migrate, "--summary", summary)...)
	if res.Code != 0 {
		t.Fatalf("migrate after the kill: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	checkDDBCounts(t, pool, summary, res.Stdout, n, n-live, 0)

	res = clitest.Run(t, env, append([]string{"verify"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("verify after migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	reports := tableReports(t, compareDoc(t, res.Stdout), "document")
	if len(reports) != 1 {
		t.Fatalf("verify compares %d tables, want 1", len(reports))
	}
	for name, tr := range reports {
		if tr.Source != live || tr.Matching != live || !tr.Identical() {
			t.Errorf("verify %s: %+v; want %d identical", name, tr, live)
		}
	}

	// Exact values, checked in PostgreSQL.
	var price, huge, tiny, typename string
	var version, count int64
	var tags []string
	var deleted bool
	err := pool.QueryRow(ctx, `SELECT price::text, huge::text, tiny::text, tags, typename, version, deleted, count FROM `+tbl+` WHERE id = $1`,
		dynamodbtest.DocID(34)).Scan(&price, &huge, &tiny, &tags, &typename, &version, &deleted, &count)
	if err != nil {
		t.Fatal(err)
	}
	if price != "34.25" || huge != "123456789012345678901234567890123456.5" || tiny != "-0."+strings.Repeat("0", 129)+"1" ||
		strings.Join(tags, ",") != "alpha,t1,zeta" || typename != "Todo" || version != 3 || deleted || count != 34 {
		t.Errorf("item 34: price %s huge %s tiny %s tags %v __typename %s _version %d _deleted %v count %d", price, huge, tiny, tags, typename, version, deleted, count)
	}
	var hostile int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tbl+` WHERE id = $1 AND _update_time = $2`,
		dynamodbtest.DocID(17), dynamodbtest.UpdateTime(17)).Scan(&hostile); err != nil || hostile != 1 {
		t.Errorf("the item with a hostile ID and its _lastChangedAt as update time: %d rows, %v", hostile, err)
	}
	var tombstones int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tbl+` WHERE deleted`).Scan(&tombstones); err != nil || tombstones != 0 {
		t.Errorf("tombstones copied: %d, %v; want none (skipped by default)", tombstones, err)
	}
}

// targetTable returns the one table the run created in public, quoted.
func targetTable(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	return pgx.Identifier{"public", targetTableName(t, pool)}.Sanitize()
}

// targetTableName returns the name of the one table the run created in
// public.
func targetTableName(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var name string
	if err := pool.QueryRow(context.Background(), `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&name); err != nil {
		t.Fatalf("finding the table migrate created: %v", err)
	}
	return name
}

// checkDDBCounts checks a DynamoDB run's accounting: in the summary
// written to path, read = loaded + rejected + excluded for every table,
// the totals read all items, the tombstones are excluded under
// "TABLE (skipped: REASON)" of the one target table, and rejected are
// rejected; the printed report (stdout) shows that line; the counts
// stored in baasmigrate.partition_counts say the same.
func checkDDBCounts(t *testing.T, pool *pgxpool.Pool, path, stdout string, read, tombstones, rejected int64) {
	t.Helper()
	s := readSummary[auditSummary](t, path)
	label := migration.SkippedTable(targetTableName(t, pool), dynamodb.TombstoneReason)
	var skipped int64 = -1
	for _, j := range s.Jobs {
		for _, tb := range j.Tables {
			if tb.Read != tb.Loaded+tb.Rejected+tb.Excluded {
				t.Errorf("%s %s: read %d != loaded %d + rejected %d + excluded %d", j.Kind, tb.Table, tb.Read, tb.Loaded, tb.Rejected, tb.Excluded)
			}
			if tb.Table == label {
				skipped = tb.Excluded
				if tb.Read != tb.Excluded || tb.Loaded != 0 || tb.Rejected != 0 {
					t.Errorf("%s: %+v; want every record read excluded", label, tb)
				}
			}
		}
	}
	if s.Totals.Read != read || s.Totals.Excluded != tombstones || s.Totals.Rejected != rejected ||
		s.Totals.Loaded != read-tombstones-rejected || skipped != tombstones {
		t.Errorf("summary totals %+v, %q excluded %d; want read %d = loaded %d + rejected %d + %d tombstones skipped",
			s.Totals, label, skipped, read, read-tombstones-rejected, rejected, tombstones)
	}
	if !strings.Contains(stdout, label) {
		t.Errorf("the printed report does not show %q:\n%s", label, stdout)
	}
	var sRead, sRejected, sExcluded, sSkipped int64
	err := pool.QueryRow(context.Background(), `SELECT sum(read), sum(rejected), sum(excluded),
		coalesce(sum(excluded) FILTER (WHERE target_table = $1), 0) FROM baasmigrate.partition_counts`, label).
		Scan(&sRead, &sRejected, &sExcluded, &sSkipped)
	if err != nil || sRead != read || sRejected != rejected || sExcluded != tombstones || sSkipped != tombstones {
		t.Errorf("stored counts: read %d, rejected %d, excluded %d (%d under %q), %v; want %d, %d, %d",
			sRead, sRejected, sExcluded, sSkipped, label, err, read, rejected, tombstones)
	}
}

// TestAmplifyDynamoDBExport migrates a DynamoDB export to S3 (written to
// MinIO in the DYNAMODB_JSON format, 3,000 items in 4 gzipped data files):
// plan estimates no read capacity, migrate copies every live item and
// counts the 60 tombstones skipped (printed and stored), verify finds the
// live items identical; the table is the one a scan would fill.
func TestAmplifyDynamoDBExport(t *testing.T) {
	ctx := context.Background()
	cfg, s3, bucket := testenv.NewS3Bucket(t, "ddb-export")
	const n = 3000
	live := int64(n - n/50)
	files := make([][][]byte, 4)
	for i := 0; i < n; i++ {
		item, _ := dynamodbtest.Item(i)
		files[i%4] = append(files[i%4], dynamodbtest.ExportLine(item))
	}
	dir := "daily/AWSDynamoDB/01701234567890-abcdef12"
	if err := dynamodbtest.WriteExport(ctx, s3, bucket, dir, "Todo-abc-dev", files); err != nil {
		t.Fatal(err)
	}
	dsn, pool := targetDatabase(t)
	env := clitest.Env("DATABASE_URL="+dsn, "AMPLIFY_S3_ENDPOINT="+cfg.Endpoint, "AWS_REGION="+cfg.Region,
		"AWS_ACCESS_KEY_ID="+cfg.AccessKey, "AWS_SECRET_ACCESS_KEY="+cfg.SecretKey)
	common := []string{"--source", "amplify", "--only", "documents", "--dynamodb-export", "s3://" + bucket + "/" + dir + "?keys=id"}

	res := clitest.Run(t, env, append([]string{"plan"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, k := range compareDoc(t, res.Stdout).Kinds {
		if k.Kind == "document" && (k.Estimate == nil || k.Estimate.Records != n || k.Estimate.Reads != 0) {
			t.Errorf("plan's estimate of an export: %+v; want %d records and 0 reads", k.Estimate, n)
		}
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	res = clitest.Run(t, env, append([]string{"migrate"}, append(common, "--workers", "3", "--summary", summary)...)...)
	if res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	checkDDBCounts(t, pool, summary, res.Stdout, n, n-live, 0)
	res = clitest.Run(t, env, append([]string{"verify"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	reports := tableReports(t, compareDoc(t, res.Stdout), "document")
	if len(reports) != 1 {
		t.Errorf("verify compares %d tables, want 1", len(reports))
	}
	for name, tr := range reports {
		if name != "todo_abc_dev" || tr.Source != live || tr.Matching != live || !tr.Identical() {
			t.Errorf("verify %s: %+v; want todo_abc_dev with %d identical", name, tr, live)
		}
	}
	var price string
	if err := pool.QueryRow(ctx, `SELECT price::text FROM public.todo_abc_dev WHERE id = $1`, dynamodbtest.DocID(1234)).Scan(&price); err != nil || price != "1234.25" {
		t.Errorf("item 1234's price: %q, %v", price, err)
	}
}

// TestAmplifyDynamoDBExportMalformed migrates an export two of whose lines
// are not items (one names its key, one is not JSON): the rest of the
// export loads, each bad line is a stored reject whose reason names the
// data file and the line and whose record holds no value of the line,
// migrate exits 1 saying how many were rejected, the counts printed and
// stored add up (read = loaded + rejected + tombstones skipped), verify
// reports the same two rejects (exit 1) and every live item identical, and
// a re-run neither copies again nor stores the rejects twice.
func TestAmplifyDynamoDBExportMalformed(t *testing.T) {
	ctx := context.Background()
	cfg, s3, bucket := testenv.NewS3Bucket(t, "ddb-export")
	const n = 400
	files := make([][][]byte, 2)
	for i := 0; i < n; i++ {
		item, _ := dynamodbtest.Item(i)
		files[i%2] = append(files[i%2], dynamodbtest.ExportLine(item))
		if i == 100 { // file 0, line 52 (after items 0, 2, …, 100)
			files[0] = append(files[0], []byte(`{"Item": {"id": {"S": "bad-1"}, "n": {"N": "12abc"}}}`))
		}
		if i == 201 { // file 1, line 102
			files[1] = append(files[1], []byte(`{"Item": not json, "secret-ish": "s3cr3t"}`))
		}
	}
	const table = "Todo-abc-dev"
	dir := "daily/AWSDynamoDB/01701234567890-bad00001"
	if err := dynamodbtest.WriteExport(ctx, s3, bucket, dir, table, files); err != nil {
		t.Fatal(err)
	}
	dsn, pool := targetDatabase(t)
	env := clitest.Env("DATABASE_URL="+dsn, "AMPLIFY_S3_ENDPOINT="+cfg.Endpoint, "AWS_REGION="+cfg.Region,
		"AWS_ACCESS_KEY_ID="+cfg.AccessKey, "AWS_SECRET_ACCESS_KEY="+cfg.SecretKey)
	summary := filepath.Join(t.TempDir(), "summary.json")
	migrate := []string{"migrate", "--source", "amplify", "--only", "documents", "--dynamodb-export", "s3://" + bucket + "/" + dir + "?keys=id",
		"--workers", "2", "--batch-size", "50", "--summary", summary}
	res := clitest.Run(t, env, migrate...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "2 record(s) rejected") {
		t.Fatalf("migrate: exit %d; want 1 and \"2 record(s) rejected\"\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	tombstones := int64(n / 50)
	live := int64(n) - tombstones
	checkDDBCounts(t, pool, summary, res.Stdout, n+2, tombstones, 2)
	var loaded int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.todo_abc_dev`).Scan(&loaded); err != nil || loaded != live {
		t.Errorf("rows loaded: %d, %v; want every live item, %d", loaded, err, live)
	}

	checkRejects := func(when string) {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT target_table, source_key, reason, record::text FROM baasmigrate.rejects ORDER BY source_key`)
		if err != nil {
			t.Fatal(err)
		}
		type reject struct{ Table, Key, Reason, Record string }
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[reject])
		if err != nil {
			t.Fatal(err)
		}
		data := "s3://" + bucket + "/" + dir + "/data/"
		want := []reject{
			{"todo_abc_dev", table + "/(line 102 of file0001.json.gz)", data + "file0001.json.gz line 102 ", ""},
			{"todo_abc_dev", table + "/bad-1", data + "file0000.json.gz line 52 ", ""},
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rejects stored, want %d: %+v", when, len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Table != w.Table || g.Key != w.Key || !strings.HasPrefix(g.Reason, w.Reason) {
				t.Errorf("%s: reject %d: %+v; want table %s, key %q, a reason starting %q", when, i, g, w.Table, w.Key, w.Reason)
			}
			for _, secret := range []string{"12abc", "s3cr3t"} {
				if strings.Contains(g.Reason+g.Record, secret) {
					t.Errorf("%s: reject %d stores a value of the line (%q): %+v", when, i, secret, g)
				}
			}
		}
	}
	checkRejects("after migrate")

	// verify reads the export as the run did: the live items identical,
	// the two bad lines rejected (so not identical: exit 1), no error.
	res = clitest.Run(t, env, "verify", "--source", "amplify", "--only", "documents", "--dynamodb-export", "s3://"+bucket+"/"+dir+"?keys=id", "--format", "json")
	if res.Code != 1 {
		t.Errorf("verify: exit %d; want 1 (two records rejected)\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	} else if tr, ok := tableReports(t, compareDoc(t, res.Stdout), "document")["todo_abc_dev"]; !ok ||
		tr.Source != live || tr.Matching != live || tr.Rejected != 2 || tr.MissingInTarget != 0 || tr.ExtraInTarget != 0 {
		t.Errorf("verify todo_abc_dev: %+v; want %d identical and 2 rejected", tr, live)
	}

	res = clitest.Run(t, env, migrate...)
	if res.Code != 1 || !strings.Contains(res.Stdout, "already migrated") || !strings.Contains(res.Stderr, "2 record(s) rejected") {
		t.Errorf("re-run: exit %d; want 1, nothing to do, and the 2 earlier rejects\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	checkRejects("after the re-run")
}
