package dynamodb_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// credentials gives the AWS SDK's default chain something to find:
// DynamoDB Local checks none.
func awsCredentials(t *testing.T) {
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		t.Setenv("AWS_ACCESS_KEY_ID", "local")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	}
}

// seededTable sets local AWS credentials and makes a table keyed by id
// on DynamoDB Local holding n generated items (dynamodbtest.Seed).
func seededTable(t *testing.T, n int) (endpoint string, c *ddb.Client, table string) {
	t.Helper()
	awsCredentials(t)
	endpoint = dynamodbtest.Endpoint(t)
	c = dynamodbtest.Client(endpoint)
	table = dynamodbtest.Table(t, c, "id", "S", "", "")
	if err := dynamodbtest.Seed(context.Background(), c, table, 0, n); err != nil {
		t.Fatal(err)
	}
	return endpoint, c, table
}

func config(endpoint string, tables ...string) plugin.Config {
	return plugin.Config{
		"aws-region":         "us-east-1",
		"dynamodb-endpoint":  endpoint,
		"dynamodb-tables":    strings.Join(tables, ","),
		"retry-attempts":     "3",
		"retry-backoff":      "10ms",
		"dynamodb-page-size": "7", // many pages, so cursors cross them
	}
}

func newExtractor(t *testing.T, cfg plugin.Config) *dynamodb.Extractor {
	t.Helper()
	ex, err := dynamodb.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestConformance runs the extractor contract over a table of generated
// items of every attribute type (hostile IDs and attribute names,
// tombstones skipped), and over a table with a sort key.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	const n = 120
	ep, c, table := seededTable(t, n)
	composite := dynamodbtest.Table(t, c, "owner", "S", "at", "N")
	var items []map[string]types.AttributeValue
	want := map[string]record.Record{}
	for i := 0; i < n; i++ {
		if dynamodbtest.Deleted(i) {
			continue
		}
		_, fields := dynamodbtest.Item(i)
		key := table + "/" + dynamodbtest.DocID(i)
		want[key] = record.Record{Kind: record.KindDocument, Key: key, Fields: fields, UpdateTime: dynamodbtest.UpdateTime(i)}
	}
	for i := 0; i < 40; i++ {
		owner := fmt.Sprintf("o|%d/x", i%4)
		at := fmt.Sprintf("%d.5", i)
		items = append(items, map[string]types.AttributeValue{
			"owner": &types.AttributeValueMemberS{Value: owner},
			"at":    &types.AttributeValueMemberN{Value: at},
			"v":     &types.AttributeValueMemberB{Value: []byte("x")},
		})
		key := composite + "/o%7C" + fmt.Sprint(i%4) + "%2Fx|" + at
		want[key] = record.Record{Kind: record.KindDocument, Key: key, Fields: map[string]record.Value{
			"owner": record.String(owner), "at": record.Decimal(at), "v": record.Bytes([]byte("x")),
		}}
	}
	if err := dynamodbtest.Put(ctx, c, composite, items); err != nil {
		t.Fatal(err)
	}
	extractortest.Run(t, extractortest.Harness{
		New:        func(t *testing.T) extractors.Extractor { return newExtractor(t, config(ep, table, composite)) },
		Want:       want,
		Times:      true,
		Partitions: []int{1, 4, 9},
		Unreachable: func(t *testing.T) extractors.Extractor {
			cfg := config("http://127.0.0.1:1", "t")
			cfg["retry-attempts"] = "1"
			return newExtractor(t, cfg)
		},
	})
}

// TestTombstonesKept: --dynamodb-deleted keep copies tombstones as rows
// with _deleted true; skip (the default) counts them.
func TestTombstonesKept(t *testing.T) {
	ctx := context.Background()
	ep, _, table := seededTable(t, 100)
	for _, mode := range []string{"skip", "keep"} {
		cfg := config(ep, table)
		cfg["dynamodb-deleted"] = mode
		ex := newExtractor(t, cfg)
		got, deleted := readAll(t, ex, 3)
		wantDeleted, wantAll := 0, 100
		if mode == "keep" {
			wantDeleted = 2
		} else {
			wantAll = 98
		}
		if got != wantAll || deleted != wantDeleted || (mode == "skip" && ex.Skipped() != 2) {
			t.Errorf("--dynamodb-deleted %s: %d records, %d tombstones among them, %d skipped; want %d, %d", mode, got, deleted, ex.Skipped(), wantAll, wantDeleted)
		}
	}
	if _, err := dynamodb.New(ctx, plugin.Config{"dynamodb-deleted": "drop"}); err == nil || !strings.Contains(err.Error(), "want skip or keep") {
		t.Errorf("--dynamodb-deleted drop: %v", err)
	}
}

func readAll(t *testing.T, ex extractors.Extractor, parts int) (n, deleted int) {
	t.Helper()
	streams, err := ex.Plan(context.Background(), parts, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range streams {
		for _, p := range st.Partitions {
			err := ex.Read(context.Background(), p, time.Time{}, "", func(r record.Record) error {
				n++
				if r.Fields["_deleted"].BoolValue() {
					deleted++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return n, deleted
}

// TestCountsAndReadCapacity: Count is DescribeTable's item count; the
// estimate follows the table's size (4 KB units, halved when eventually
// consistent); BillableReads meters what the scans consumed.
func TestCountsAndReadCapacity(t *testing.T) {
	ctx := context.Background()
	ep, c, table := seededTable(t, 300)
	d, err := c.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	size := aws.ToInt64(d.Table.TableSizeBytes)
	for _, consistent := range []bool{true, false} {
		cfg := config(ep, table)
		cfg["dynamodb-consistent-read"] = fmt.Sprint(consistent)
		cfg["dynamodb-page-size"] = ""
		ex := newExtractor(t, cfg)
		streams, err := ex.Plan(ctx, 4, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := ex.Count(ctx, streams[0])
		if err != nil || n != 300 {
			t.Fatalf("Count = %d, %v; want 300", n, err)
		}
		est, err := ex.EstimateReads(ctx, streams[0], n)
		want := (size+4095)/4096 + 4
		if !consistent {
			want = (want + 1) / 2
		}
		if err != nil || est != want || size == 0 {
			t.Errorf("consistent=%v: estimate %d, %v; want %d (table of %d bytes)", consistent, est, err, want, size)
		}
		readAll(t, ex, 4)
		if r := ex.BillableReads(); r <= 0 || r > est {
			t.Errorf("consistent=%v: scans metered %d read units; estimate %d", consistent, r, est)
		}
	}
}

// TestUnknownTable names the table and the option.
func TestUnknownTable(t *testing.T) {
	awsCredentials(t)
	ep := dynamodbtest.Endpoint(t)
	ex := newExtractor(t, config(ep, "no-such-table"))
	_, err := ex.Plan(context.Background(), 2, time.Time{})
	if err == nil || !strings.Contains(err.Error(), `no DynamoDB table named "no-such-table"`) {
		t.Fatalf("Plan over a missing table: %v", err)
	}
}
