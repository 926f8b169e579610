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
	// A reader that asks for skipped records (a run) gets each tombstone
	// as one, with its key, its cursor, no fields and the reason.
	var tombs, live int
	for _, p := range streams[0].Partitions {
		err := ex.Read(extractors.WithSkips(context.Background()), p, time.Time{}, "", func(r record.Record) error {
			switch {
			case r.Skip == nil:
				live++
			case r.Skip.Reject || r.Skip.Reason != dynamodb.TombstoneReason || r.Fields != nil || r.Cursor == "" || !strings.HasPrefix(r.Key, table+"/"):
				t.Errorf("tombstone record %+v", r)
			default:
				tombs++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if live != len(want) || tombs != n-len(want) {
		t.Errorf("with skips wanted: %d records and %d tombstones; want %d and %d", live, tombs, len(want), n-len(want))
	}
}

// TestExportMalformedLine: a line that is not an item stops a read that
// does not ask for skipped records (verify) with an error naming the data
// file and the line; a read that asks (extractors.WithSkips: a run) gets
// the items around it and, in its place, a reject whose reason names the
// file and the line, keyed by the item's key when the line has one, with
// no value of the line in its fields.
func TestExportMalformedLine(t *testing.T) {
	s3, bucket, cfg := exportStore(t)
	item0, _ := dynamodbtest.Item(1)
	item1, _ := dynamodbtest.Item(2)
	item2, _ := dynamodbtest.Item(3)
	for bad, key := range map[string]string{
		`{"Item": {"id": {"S": "x"}, "n": {"N": "12abc"}}}`: "T/x",
		`not json`:                     "T/(line 2 of file0001.json.gz)",
		`{"Item": {"id": {"Q": "x"}}}`: "T/(line 2 of file0001.json.gz)",
		`{"Other": 1}`:                 "T/(line 2 of file0001.json.gz)",
	} {
		dir := "e/AWSDynamoDB/" + testenv.UniqueName("x", 20)
		files := [][][]byte{{dynamodbtest.ExportLine(item0)}, {dynamodbtest.ExportLine(item1), []byte(bad), dynamodbtest.ExportLine(item2)}}
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
		file := fmt.Sprintf("s3://%s/%s/data/file0001.json.gz", bucket, dir)
		where := file + " line 2"
		if err == nil || !strings.Contains(err.Error(), where) || got != 2 {
			t.Errorf("malformed line %q: %d records, error %v; want 2 and an error naming %q", bad, got, err, where)
		}

		var recs []record.Record
		err = ex.Read(extractors.WithSkips(context.Background()), streams[0].Partitions[0], time.Time{}, "", func(r record.Record) error {
			recs = append(recs, r)
			return nil
		})
		if err != nil || len(recs) != 4 {
			t.Fatalf("malformed line %q, skips wanted: %d records, %v; want 4 and no error", bad, len(recs), err)
		}
		rj := recs[2]
		if recs[0].Skip != nil || recs[1].Skip != nil || recs[3].Skip != nil || recs[3].Key != "T/"+dynamodbtest.DocID(3) {
			t.Errorf("malformed line %q: the items around it: %+v, %+v", bad, recs[1], recs[3])
		}
		if rj.Skip == nil || !rj.Skip.Reject || !strings.Contains(rj.Skip.Reason, where) || rj.Key != key || rj.Cursor != "1:2" {
			t.Errorf("malformed line %q: reject %q cursor %q skip %+v; want key %q, cursor 1:2 and a reason naming %q", bad, rj.Key, rj.Cursor, rj.Skip, key, where)
		}
		if len(rj.Fields) != 2 || rj.Fields["export_file"].StringValue() != file || rj.Fields["line"].IntValue() != 2 {
			t.Errorf("malformed line %q: reject fields %v; want the file and the line only", bad, rj.Fields)
		}
		if strings.Contains(rj.Skip.Reason, "12abc") {
			t.Errorf("malformed line %q: the reason quotes a value: %s", bad, rj.Skip.Reason)
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
	// The S3 endpoint is a root URL, as for the storage extractor: a path
	// would be dropped, not followed.
	_, err := dynamodb.NewExport(context.Background(), plugin.Config{
		"dynamodb-export": "s3://bucket/x?keys=id", "aws-region": "us-east-1", "amplify-s3-endpoint": "http://127.0.0.1:9000/prefix",
	})
	if err == nil || !strings.Contains(err.Error(), "root URL") {
		t.Errorf("--amplify-s3-endpoint with a path: %v", err)
	}
}
