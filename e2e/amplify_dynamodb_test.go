package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
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
// killed with SIGKILL mid-copy and a second run finishes it; verify finds
// every item identical; exact decimals, sets and the Amplify attributes
// are checked in PostgreSQL directly.
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
	res = clitest.Run(t, env, migrate...)
	if res.Code != 0 {
		t.Fatalf("migrate after the kill: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}

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
	var name string
	if err := pool.QueryRow(context.Background(), `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&name); err != nil {
		t.Fatalf("finding the table migrate created: %v", err)
	}
	return pgx.Identifier{"public", name}.Sanitize()
}

// TestAmplifyDynamoDBExport migrates a DynamoDB export to S3 (written to
// MinIO in the DYNAMODB_JSON format, 3,000 items in 4 gzipped data files):
// plan estimates no read capacity, migrate copies every live item, verify
// finds them identical; the table is the one a scan would fill.
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
	res = clitest.Run(t, env, append([]string{"migrate"}, append(common, "--workers", "3")...)...)
	if res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
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
