// Package dynamodbtest seeds DynamoDB Local (DYNAMODB_ENDPOINT, which
// scripts/services-up.sh starts) for the DynamoDB extractor's tests, the
// e2e test and the benchmark: tables, and items holding every attribute
// type with the record values the extractor must make of them.
package dynamodbtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// EndpointVar is the variable naming DynamoDB Local's endpoint.
const EndpointVar = "DYNAMODB_ENDPOINT"

// Endpoint returns DynamoDB Local's endpoint, or skips t (fails it when
// services are required) when none is configured.
func Endpoint(t testing.TB) string {
	t.Helper()
	if v, ok := testenv.Lookup(EndpointVar); ok && v != "" {
		return v
	}
	if testenv.ServicesRequired() {
		t.Fatalf("DynamoDB Local is not configured (%s); run make services-up", EndpointVar)
	}
	t.Skipf("DynamoDB Local is not configured (%s); run make services-up", EndpointVar)
	return ""
}

// Client returns a client of the DynamoDB at endpoint, with dummy static
// credentials (DynamoDB Local checks none).
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// CreateTable creates table with partition key pk (type pkType: S, N or
// B) and, when sk is not "", sort key sk, on demand.
func CreateTable(ctx context.Context, c *dynamodb.Client, table, pk, pkType, sk, skType string) error {
	return CreateStreamTable(ctx, c, table, "", pk, pkType, sk, skType)
}

// CreateStreamTable is CreateTable with DynamoDB Streams enabled with view
// type view (none when view is "").
func CreateStreamTable(ctx context.Context, c *dynamodb.Client, table string, view types.StreamViewType, pk, pkType, sk, skType string) error {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   []types.KeySchemaElement{{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(pk), AttributeType: types.ScalarAttributeType(pkType)},
		},
	}
	if sk != "" {
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange})
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(sk), AttributeType: types.ScalarAttributeType(skType)})
	}
	if view != "" {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: view}
	}
	if _, err := c.CreateTable(ctx, in); err != nil {
		return fmt.Errorf("creating table %s: %w", table, err)
	}
	w := dynamodb.NewTableExistsWaiter(c)
	return w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute)
}

// Table makes a fresh table for t (named uniquely) and deletes it at the
// end of the test.
func Table(t testing.TB, c *dynamodb.Client, pk, pkType, sk, skType string) string {
	t.Helper()
	return StreamTable(t, c, "", pk, pkType, sk, skType)
}

// StreamTable is Table with DynamoDB Streams enabled with view type view
// (none when view is "").
func StreamTable(t testing.TB, c *dynamodb.Client, view types.StreamViewType, pk, pkType, sk, skType string) string {
	t.Helper()
	name := testenv.UniqueName("Todo-", 60)
	if err := CreateStreamTable(context.Background(), c, name, view, pk, pkType, sk, skType); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// Put writes items with BatchWriteItem, 25 at a time, writing again what
// DynamoDB leaves unprocessed.
func Put(ctx context.Context, c *dynamodb.Client, table string, items []map[string]types.AttributeValue) error {
	for len(items) > 0 {
		n := min(len(items), 25)
		reqs := make([]types.WriteRequest, n)
		for i, it := range items[:n] {
			reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
		}
		items = items[n:]
		pending := map[string][]types.WriteRequest{table: reqs}
		for len(pending) > 0 {
			out, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("writing items to %s: %w", table, err)
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

// Hostile is an ID holding the characters a document ID must escape.
func Hostile(i int) string { return fmt.Sprintf("a/b%%c|d ü 🙂 #%d", i) }

// Item returns the i-th generated item (partition key "id", an S) and
// the fields the extractor must make of it. Every attribute type is
// present; names include hostile ones; every 50th item is an Amplify
// tombstone (_deleted = true), which Deleted reports.
func Item(i int) (map[string]types.AttributeValue, map[string]record.Value) {
	id := fmt.Sprintf("item-%06d", i)
	if i%17 == 0 {
		id = Hostile(i)
	}
	changed := int64(1_700_000_000_000 + i)
	price := fmt.Sprintf("%d.25", i)
	item := map[string]types.AttributeValue{
		"id":             &types.AttributeValueMemberS{Value: id},
		"title":          &types.AttributeValueMemberS{Value: fmt.Sprintf("naïve 名前 %d\n\"quoted\"", i)},
		"count":          &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
		"price":          &types.AttributeValueMemberN{Value: price},
		"huge":           &types.AttributeValueMemberN{Value: "123456789012345678901234567890123456.5"},
		"tiny":           &types.AttributeValueMemberN{Value: "-1E-130"},
		"big":            &types.AttributeValueMemberN{Value: "99999999999999999999"},
		"blob":           &types.AttributeValueMemberB{Value: []byte{byte(i), 0, 255}},
		"done":           &types.AttributeValueMemberBOOL{Value: i%2 == 0},
		"nothing":        &types.AttributeValueMemberNULL{Value: true},
		"meta":           &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"owner": &types.AttributeValueMemberS{Value: "o"}, "n": &types.AttributeValueMemberN{Value: "0.5"}, "inner": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "7"}}}}}}},
		"list":           &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "x"}, &types.AttributeValueMemberN{Value: "1"}, &types.AttributeValueMemberBOOL{Value: true}, &types.AttributeValueMemberNULL{Value: true}}},
		"tags":           &types.AttributeValueMemberSS{Value: []string{"zeta", "alpha", fmt.Sprintf("t%d", i%3)}},
		"nums":           &types.AttributeValueMemberNS{Value: []string{"10", "2", "-1.5"}},
		"bins":           &types.AttributeValueMemberBS{Value: [][]byte{{2}, {1, 0}}},
		"with space":     &types.AttributeValueMemberS{Value: "s"},
		"Mixed.Case-$":   &types.AttributeValueMemberN{Value: "3"},
		"$dollar":        &types.AttributeValueMemberS{Value: "d"},
		"slash/quote\"'": &types.AttributeValueMemberS{Value: "q"},
		"__typename":     &types.AttributeValueMemberS{Value: "Todo"},
		"_version":       &types.AttributeValueMemberN{Value: fmt.Sprint(1 + i%4)},
		"_lastChangedAt": &types.AttributeValueMemberN{Value: fmt.Sprint(changed)},
		"_deleted":       &types.AttributeValueMemberBOOL{Value: Deleted(i)},
	}
	tiny := "-0." + strings.Repeat("0", 129) + "1"
	want := map[string]record.Value{
		"id":             record.String(id),
		"title":          record.String(fmt.Sprintf("naïve 名前 %d\n\"quoted\"", i)),
		"count":          record.Int(int64(i)),
		"price":          record.Decimal(price),
		"huge":           record.Decimal("123456789012345678901234567890123456.5"),
		"tiny":           record.Decimal(tiny),
		"big":            record.Decimal("99999999999999999999"),
		"blob":           record.Bytes([]byte{byte(i), 0, 255}),
		"done":           record.Bool(i%2 == 0),
		"nothing":        record.Null(),
		"meta":           record.Map(map[string]record.Value{"owner": record.String("o"), "n": record.Decimal("0.5"), "inner": record.Map(map[string]record.Value{"l": record.Array(record.Int(7))})}),
		"list":           record.Array(record.String("x"), record.Int(1), record.Bool(true), record.Null()),
		"tags":           sortedStrings("zeta", "alpha", fmt.Sprintf("t%d", i%3)),
		"nums":           record.Array(record.Decimal("-1.5"), record.Int(2), record.Int(10)),
		"bins":           record.Array(record.Bytes([]byte{1, 0}), record.Bytes([]byte{2})),
		"with space":     record.String("s"),
		"Mixed.Case-$":   record.Int(3),
		"$dollar":        record.String("d"),
		"slash/quote\"'": record.String("q"),
		"__typename":     record.String("Todo"),
		"_version":       record.Int(int64(1 + i%4)),
		"_lastChangedAt": record.Int(changed),
		"_deleted":       record.Bool(Deleted(i)),
	}
	return item, want
}

// Deleted reports whether Item(i) is a tombstone.
func Deleted(i int) bool { return i%50 == 49 }

// DocID is the document ID the extractor gives Item(i).
func DocID(i int) string {
	if i%17 == 0 {
		return strings.NewReplacer("%", "%25", "/", "%2F", "|", "%7C").Replace(Hostile(i))
	}
	return fmt.Sprintf("item-%06d", i)
}

// UpdateTime is the update time of Item(i) (its _lastChangedAt).
func UpdateTime(i int) time.Time { return time.UnixMilli(1_700_000_000_000 + int64(i)).UTC() }

func sortedStrings(ss ...string) record.Value {
	slices.Sort(ss)
	out := make([]record.Value, len(ss))
	for i, s := range ss {
		out[i] = record.String(s)
	}
	return record.Array(out...)
}

// Seed writes Item(i) for i in [from, to) to table.
func Seed(ctx context.Context, c *dynamodb.Client, table string, from, to int) error {
	items := make([]map[string]types.AttributeValue, 0, 500)
	for i := from; i < to; i++ {
		it, _ := Item(i)
		items = append(items, it)
		if len(items) == cap(items) {
			if err := Put(ctx, c, table, items); err != nil {
				return err
			}
			items = items[:0]
		}
	}
	return Put(ctx, c, table, items)
}

// JSON returns av in DynamoDB JSON, as exports write it, for json.Marshal.
func JSON(av types.AttributeValue) any {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": v.Value} // encoding/json writes []byte in standard base64
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *types.AttributeValueMemberM:
		m := map[string]any{}
		for k, e := range v.Value {
			m[k] = JSON(e)
		}
		return map[string]any{"M": m}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = JSON(e)
		}
		return map[string]any{"L": l}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *types.AttributeValueMemberBS:
		return map[string]any{"BS": v.Value}
	}
	panic(fmt.Sprintf("dynamodbtest: attribute value of type %T", av))
}

// ExportLine is one line of an export's data file holding item.
func ExportLine(item map[string]types.AttributeValue) []byte {
	m := map[string]any{}
	for k, v := range item {
		m[k] = JSON(v)
	}
	b, err := json.Marshal(map[string]any{"Item": m})
	if err != nil {
		panic(err)
	}
	return b
}

// WriteExport writes an export of table in the DYNAMODB_JSON format under
// s3://bucket/dir (dir being PREFIX/AWSDynamoDB/EXPORT_ID): one gzipped
// data file per element of files, each holding its lines, and both
// manifests (counting the lines that are not blank as items).
func WriteExport(ctx context.Context, s3 *minio.Client, bucket, dir, table string, files [][][]byte) error {
	var manifest bytes.Buffer
	total := 0
	for i, lines := range files {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		for _, l := range lines {
			gz.Write(l)
			gz.Write([]byte("\n"))
		}
		if err := gz.Close(); err != nil {
			return err
		}
		key := fmt.Sprintf("%s/data/file%04d.json.gz", dir, i)
		if _, err := s3.PutObject(ctx, bucket, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), minio.PutObjectOptions{}); err != nil {
			return fmt.Errorf("writing %s: %w", key, err)
		}
		items := 0
		for _, l := range lines {
			if len(bytes.TrimSpace(l)) > 0 {
				items++
			}
		}
		total += items
		line, _ := json.Marshal(map[string]any{"itemCount": items, "md5Checksum": "", "etag": "", "dataFileS3Key": key})
		manifest.Write(append(line, '\n'))
	}
	summary, _ := json.Marshal(map[string]any{
		"version": "2020-06-30", "exportArn": "arn:aws:dynamodb:us-east-1:000000000000:table/" + table + "/export/x",
		"tableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/" + table, "tableId": "t",
		"exportTime": "2026-12-06T00:00:00.000Z", "s3Bucket": bucket, "s3Prefix": dir,
		"manifestFilesS3Key": dir + "/manifest-files.json", "billedSizeBytes": 0, "itemCount": total,
		"outputFormat": "DYNAMODB_JSON",
	})
	for key, body := range map[string][]byte{dir + "/manifest-files.json": manifest.Bytes(), dir + "/manifest-summary.json": summary} {
		if _, err := s3.PutObject(ctx, bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			return fmt.Errorf("writing %s: %w", key, err)
		}
	}
	return nil
}
