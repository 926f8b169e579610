package dynamodb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// exportStore returns a MinIO client, a fresh bucket, and sets the AWS
// credential chain's variables to MinIO's.
func exportStore(t *testing.T) (*minio.Client, string, testenv.S3Config) {
	t.Helper()
	cfg, s3, bucket := testenv.NewS3Bucket(t, "ddb-export")
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
	return s3, bucket, cfg
}

func exportConfig(cfg testenv.S3Config, exports ...string) plugin.Config {
	return plugin.Config{
		"aws-region":          cfg.Region,
		"amplify-s3-endpoint": cfg.Endpoint,
		"dynamodb-export":     strings.Join(exports, ","),
		"retry-attempts":      "2",
		"retry-backoff":       "10ms",
	}
}

// TestExportConformance writes an export of generated items of every
// attribute type (tombstones and blank lines among them) in five data
// files, and runs the contract suite over it: the same records a scan
// gives.
func TestExportConformance(t *testing.T) {
	s3, bucket, cfg := exportStore(t)
	const table, n = "Todo-abc-dev", 150
	files := make([][][]byte, 5)
	want := map[string]record.Record{}
	for i := 0; i < n; i++ {
		item, fields := dynamodbtest.Item(i)
		files[i%5] = append(files[i%5], dynamodbtest.ExportLine(item))
		if i == 7 {
			files[i%5] = append(files[i%5], []byte("  "))
		}
		if dynamodbtest.Deleted(i) {
			continue
		}
		key := table + "/" + dynamodbtest.DocID(i)
		want[key] = record.Record{Kind: record.KindDocument, Key: key, Fields: fields, UpdateTime: dynamodbtest.UpdateTime(i)}
	}
	dir := "exports/AWSDynamoDB/01701234567890-abcdef12"
	if err := dynamodbtest.WriteExport(context.Background(), s3, bucket, dir, table, files); err != nil {
		t.Fatal(err)
	}
	spec := "s3://" + bucket + "/" + dir + "?keys=id"
	extractortest.Run(t, extractortest.Harness{
		New: func(t *testing.T) extractors.Extractor {
			ex, err := dynamodb.NewExport(context.Background(), exportConfig(cfg, spec))
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
		Want:        want,
		Times:       true,
		Partitions:  []int{1, 3, 8},
		ResumeEvery: 5,
	})

	ex, err := dynamodb.NewExport(context.Background(), exportConfig(cfg, spec))
	if err != nil {
		t.Fatal(err)
	}
	streams, err := ex.Plan(context.Background(), 2, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ex.Count(context.Background(), streams[0]); err != nil || c != n {
		t.Errorf("Count = %d, %v; want the summary's %d", c, err, n)
	}
	if r, err := ex.EstimateReads(context.Background(), streams[0], n); err != nil || r != 0 {
		t.Errorf("an export's read estimate = %d, %v; want 0", r, err)
	}
	// Tombstones skipped are counted, as a scan counts them.
	if got, _ := readAll(t, ex, 2); got != len(want) || ex.Skipped() != n-int64(len(want)) {
		t.Errorf("read %d records, %d tombstones skipped; want %d and %d", got, ex.Skipped(), len(want), n-len(want))
	}
}

// TestExportMalformedLine: a line that is not an item stops the read
// with an error naming the data file and the line.
func TestExportMalformedLine(t *testing.T) {
	s3, bucket, cfg := exportStore(t)
	item0, _ := dynamodbtest.Item(1)
	item1, _ := dynamodbtest.Item(2)
	for _, bad := range []string{`{"Item": {"id": {"S": "x"}, "n": {"N": "12abc"}}}`, `not json`, `{"Item": {"id": {"Q": "x"}}}`, `{"Other": 1}`} {
		dir := "e/AWSDynamoDB/" + testenv.UniqueName("x", 20)
		files := [][][]byte{{dynamodbtest.ExportLine(item0)}, {dynamodbtest.ExportLine(item1), []byte(bad)}}
		if err := dynamodbtest.WriteExport(context.Background(), s3, bucket, dir, "T", files); err != nil {
			t.Fatal(err)
		}
		ex, err := dynamodb.NewExport(context.Background(), exportConfig(cfg, "s3://"+bucket+"/"+dir+"?keys=id"))
		if err != nil {
			t.Fatal(err)
		}
		streams, err := ex.Plan(context.Background(), 1, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		err = ex.Read(context.Background(), streams[0].Partitions[0], time.Time{}, "", func(record.Record) error { got++; return nil })
		where := fmt.Sprintf("s3://%s/%s/data/file0001.json.gz line 2", bucket, dir)
		if err == nil || !strings.Contains(err.Error(), where) || got != 2 {
			t.Errorf("malformed line %q: %d records, error %v; want 2 and an error naming %q", bad, got, err, where)
		}
	}
}

// TestExportOptions refuses what is not an export folder.
func TestExportOptions(t *testing.T) {
	for _, spec := range []string{"https://bucket/x", "s3://bucket", "s3:///x"} {
		_, err := dynamodb.NewExport(context.Background(), plugin.Config{"dynamodb-export": spec, "aws-region": "us-east-1"})
		if err == nil || !strings.Contains(err.Error(), "is not an export folder") {
			t.Errorf("--dynamodb-export %q: %v", spec, err)
		}
	}
}
