// Package dynamodb extracts the items of an AWS Amplify app's DynamoDB
// tables as documents (`--source amplify --only documents`).
//
// # Streams, partitions, cursors
//
// Each table is a stream (a root collection, so one target table). A stream
// is split into parallel-scan segments (Scan's Segment/TotalSegments), one
// partition each; a partition is read page by page, and a record's cursor is
// its own primary key, which DynamoDB accepts as ExclusiveStartKey: a read
// resumes just after the last item committed. Scans are consistent reads
// (--dynamodb-consistent-read, the default; a table's scan always allows
// them) and cost read capacity: one unit per 4 KB read, half of that when
// eventually consistent.
//
// DynamoDB returns a segment's items in the order of its partition keys'
// hashes, not of the keys, so the extractor is extractors.Unordered: plan and
// verify look target rows up by key instead of merging.
//
// Reading an export to S3 (--dynamodb-export, export.go) instead costs no
// read capacity.
//
// # Records
//
// An item's document key is "TABLE/ID": ID is the partition key's value, or
// the partition key's and the sort key's joined by "|", each written as text
// (numbers in canonical decimal, binaries in URL-safe base64) with "%", "/"
// and "|" percent-encoded. The target row's primary key is that ID; the key
// attributes are also ordinary fields, so they get their own columns. Values
// are converted by Value.
//
// Amplify (AppSync with DataStore conflict detection) adds four attributes:
// __typename and _version stay ordinary fields; _lastChangedAt (epoch
// milliseconds) becomes the record's update time as well; an item with
// _deleted = true is a DataStore tombstone, skipped by default
// (--dynamodb-deleted skip) or copied as a row whose _deleted column is true
// (keep). A skipped tombstone is logged, and emitted with record.Skip (reason
// TombstoneReason) to a reader that asks (extractors.WithSkips): a run counts
// it, per target table, as read and excluded, so that the items read add up.
package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/amplify"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Options of the DynamoDB extractor.
var (
	TablesOption = plugin.Option{
		Name: "dynamodb-tables",
		Help: "Comma-separated DynamoDB tables to migrate, one target table each (default: every table the account lists in the region).",
	}
	ConsistentOption = plugin.Option{
		Name:    "dynamodb-consistent-read",
		Help:    "Scan with strongly consistent reads (twice the read capacity of eventually consistent ones).",
		Type:    plugin.Switch,
		Default: "true",
	}
	DeletedOption = plugin.Option{
		Name:    "dynamodb-deleted",
		Help:    "What becomes of Amplify DataStore tombstones (items with _deleted = true): skip (counted and logged) or keep (rows with _deleted true).",
		Default: DeletedSkip,
	}
	PageSizeOption = plugin.Option{
		Name:    "dynamodb-page-size",
		Help:    "Items per Scan page (0: DynamoDB's own 1 MB pages); bounds memory per partition.",
		Type:    plugin.Int,
		Default: "0",
	}
	ExportOption = plugin.Option{
		Name: "dynamodb-export",
		Help: "Read DynamoDB exports to S3 (DYNAMODB_JSON) instead of scanning: comma-separated s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID folders, one per table; costs no read capacity.",
	}
)

// What --dynamodb-deleted may say.
const (
	DeletedSkip = "skip"
	DeletedKeep = "keep"
)

// TombstoneReason is the record.Skip reason of a skipped tombstone.
const TombstoneReason = "Amplify DataStore tombstone, _deleted = true"

func init() {
	extractors.Register(extractors.Spec{
		Source: amplify.Source,
		Name:   "dynamodb",
		Kind:   record.KindDocument,
		Help:   "Every item of the app's DynamoDB tables (a parallel scan, or an export to S3), one target table per DynamoDB table.",
		Options: []plugin.Option{
			amplify.RegionOption, amplify.DynamoDBEndpointOption, amplify.S3EndpointOption,
			TablesOption, ConsistentOption, DeletedOption, PageSizeOption, ExportOption,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) {
			if cfg.String(ExportOption.Name) != "" {
				return NewExport(ctx, cfg)
			}
			return New(ctx, cfg)
		},
	})
}

// Extractor scans DynamoDB tables.
type Extractor struct {
	client     *dynamodb.Client
	where      string // endpoint or "aws/REGION"
	tables     []string
	consistent bool
	keepDel    bool
	pageSize   int32
	policy     retry.Policy
	settings   map[string]string

	rcuMilli atomic.Int64 // consumed read capacity, in thousandths
	tombstones

	mu        sync.Mutex
	described map[string]*types.TableDescription
}

var (
	_ extractors.Extractor     = (*Extractor)(nil)
	_ extractors.Parter        = (*Extractor)(nil)
	_ extractors.Counter       = (*Extractor)(nil)
	_ extractors.ReadMeter     = (*Extractor)(nil)
	_ extractors.Configured    = (*Extractor)(nil)
	_ extractors.Rooted        = (*Extractor)(nil)
	_ extractors.Unordered     = (*Extractor)(nil)
	_ extractors.ReadEstimator = (*Extractor)(nil)
)

// common is what both extractors (scan and export) read from cfg.
type common struct {
	keepDel  bool
	policy   retry.Policy
	settings map[string]string
}

func commonConfig(cfg plugin.Config) (common, error) {
	var c common
	switch d := cfg.String(DeletedOption.Name); d {
	case "", DeletedSkip:
	case DeletedKeep:
		c.keepDel = true
	default:
		return c, fmt.Errorf("--%s %q: want %s or %s", DeletedOption.Name, d, DeletedSkip, DeletedKeep)
	}
	p, err := retry.FromConfig(cfg)
	if err != nil {
		return c, err
	}
	c.policy = p
	c.settings = map[string]string{
		TablesOption.Name:  cfg.String(TablesOption.Name),
		DeletedOption.Name: cfg.String(DeletedOption.Name),
	}
	return c, nil
}

// New builds a scanning extractor from cfg; it does not contact DynamoDB.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	c, err := commonConfig(cfg)
	if err != nil {
		return nil, err
	}
	consistent := true
	if cfg.String(ConsistentOption.Name) != "" {
		if consistent, err = cfg.Bool(ConsistentOption.Name); err != nil {
			return nil, err
		}
	}
	page, err := cfg.Int(PageSizeOption.Name, 0)
	if err != nil {
		return nil, err
	}
	if page < 0 {
		return nil, fmt.Errorf("--%s must be 0 or more", PageSizeOption.Name)
	}
	endpoint, err := amplify.Endpoint(cfg, amplify.DynamoDBEndpointOption)
	if err != nil {
		return nil, err
	}
	awsCfg, err := amplify.Config(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &Extractor{
		consistent: consistent,
		keepDel:    c.keepDel,
		pageSize:   int32(page),
		policy:     c.policy,
		settings:   c.settings,
		tables:     splitList(cfg.String(TablesOption.Name)),
		described:  map[string]*types.TableDescription{},
		where:      "aws/" + awsCfg.Region,
	}
	e.client = dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			e.where = endpoint
		}
	})
	return e, nil
}

func splitList(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Source is "dynamodb:" and the endpoint (or AWS region), with the tables
// read when --dynamodb-tables names some.
func (e *Extractor) Source() string {
	s := e.WholeSource()
	if len(e.tables) > 0 {
		s += "?tables=" + strings.Join(slices.Sorted(slices.Values(e.tables)), ",")
	}
	return s
}

// WholeSource is the endpoint or region, whichever tables are read.
func (e *Extractor) WholeSource() string { return "dynamodb:" + e.where }

// Close releases nothing: the SDK's client holds idle connections only.
func (e *Extractor) Close() error { return nil }

// RunSettings are --dynamodb-tables and --dynamodb-deleted as given.
func (e *Extractor) RunSettings() map[string]string { return maps.Clone(e.settings) }

// Roots returns the tables --dynamodb-tables names, or nil for all.
func (e *Extractor) Roots() []string { return slices.Clone(e.tables) }

// Unordered is true: a scan delivers items in hash order.
func (e *Extractor) Unordered() bool { return true }

// BillableReads is the read capacity consumed so far, rounded up to whole
// units, as DynamoDB reports it for every Scan page.
func (e *Extractor) BillableReads() int64 { return (e.rcuMilli.Load() + 999) / 1000 }

// tombstones counts and logs the tombstones an extractor skipped.
type tombstones struct{ n atomic.Int64 }

// Skipped is how many tombstones (_deleted = true) were skipped so far.
func (t *tombstones) Skipped() int64 { return t.n.Load() }

// skipped counts n tombstones of table skipped in one part of a read
// (where: its attributes for the log) and logs them when there are any.
func (t *tombstones) skipped(ctx context.Context, table string, n int64, where ...any) {
	if n == 0 {
		return
	}
	t.n.Add(n)
	retry.Logger(ctx).Info("skipped Amplify DataStore tombstones (_deleted = true); --dynamodb-deleted keep copies them",
		append([]any{"table", table}, append(where, "skipped", n)...)...)
}

// Plan lists the tables (--dynamodb-tables, or every one ListTables gives)
// and splits each into partitions scan segments. readTime is ignored:
// DynamoDB has no reads at a past time.
func (e *Extractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	names, err := e.tableNames(ctx)
	if err != nil {
		return nil, err
	}
	n := max(partitions, 1)
	n = min(n, 1000000) // DynamoDB's limit on TotalSegments
	var streams []extractors.Stream
	for _, name := range names {
		if _, err := e.describe(ctx, name, true); err != nil {
			return nil, err
		}
		st := extractors.Stream{Name: name, Kind: record.KindDocument}
		for i := 0; i < n; i++ {
			st.Partitions = append(st.Partitions, extractors.Partition{
				Stream: name, ID: fmt.Sprintf("segment-%d-of-%d", i, n), Start: fmt.Sprintf("%d/%d", i, n),
			})
		}
		streams = append(streams, st)
	}
	return streams, nil
}

// tableNames returns the tables read: those --dynamodb-tables names, or
// else every one ListTables gives.
func (e *Extractor) tableNames(ctx context.Context) ([]string, error) {
	if len(e.tables) > 0 {
		return e.tables, nil
	}
	return e.listTables(ctx)
}

func (e *Extractor) listTables(ctx context.Context) ([]string, error) {
	var names []string
	var start *string
	for {
		var out *dynamodb.ListTablesOutput
		err := e.do(ctx, "listing the DynamoDB tables", func(ctx context.Context) error {
			var err error
			out, err = e.client.ListTables(ctx, &dynamodb.ListTablesInput{ExclusiveStartTableName: start})
			return err
		})
		if err != nil {
			return nil, err
		}
		names = append(names, out.TableNames...)
		if out.LastEvaluatedTableName == nil {
			return names, nil
		}
		start = out.LastEvaluatedTableName
	}
}

// describe returns a table's description, cached unless fresh is set.
func (e *Extractor) describe(ctx context.Context, table string, fresh bool) (*types.TableDescription, error) {
	e.mu.Lock()
	d := e.described[table]
	e.mu.Unlock()
	if d != nil && !fresh {
		return d, nil
	}
	err := e.do(ctx, "describing DynamoDB table "+table, func(ctx context.Context) error {
		out, err := e.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return err
		}
		d = out.Table
		return nil
	})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("--%s: no DynamoDB table named %q at %s", TablesOption.Name, table, e.where)
		}
		return nil, err
	}
	e.mu.Lock()
	e.described[table] = d
	e.mu.Unlock()
	return d, nil
}

// Count is the table's item count from DescribeTable: free, but AWS
// refreshes it only about every six hours, and it includes tombstones.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	d, err := e.describe(ctx, s.Name, true)
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(d.ItemCount), nil
}

// EstimateReads is the read capacity a full scan of the table takes: one
// unit per 4 KB of its size (DescribeTable's, refreshed about every six
// hours), plus one per segment for the last page's rounding, halved for
// eventually consistent reads.
func (e *Extractor) EstimateReads(ctx context.Context, s extractors.Stream, _ int64) (int64, error) {
	d, err := e.describe(ctx, s.Name, false)
	if err != nil {
		return 0, err
	}
	return ReadUnits(aws.ToInt64(d.TableSizeBytes), len(s.Partitions), e.consistent), nil
}

// ReadUnits is the read capacity units scanning size bytes in segments
// segments costs: 4 KB per unit, each segment's pages rounded up (counted
// as one unit per segment), half for eventually consistent reads.
func ReadUnits(size int64, segments int, consistent bool) int64 {
	units := (size+4095)/4096 + int64(max(segments, 1))
	if !consistent {
		units = (units + 1) / 2
	}
	return units
}

// segment parses a partition's "i/n".
func segment(p extractors.Partition) (int32, int32, error) {
	a, b, ok := strings.Cut(p.Start, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("partition %s/%s: %q is not a scan segment", p.Stream, p.ID, p.Start)
	}
	return int32(i), int32(n), nil
}

// Read scans p's segment after the cursor after, page by page. Each page
// is fetched whole (retried as a whole) before its items are emitted.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	seg, total, err := segment(p)
	if err != nil {
		return err
	}
	d, err := e.describe(ctx, p.Stream, false)
	if err != nil {
		return err
	}
	keys, err := keySchema(d)
	if err != nil {
		return err
	}
	var start map[string]types.AttributeValue
	if after != "" {
		if start, err = decodeKey(after); err != nil {
			return fmt.Errorf("resuming %s partition %s: %w", p.Stream, p.ID, err)
		}
	}
	what := fmt.Sprintf("scanning DynamoDB table %s, segment %d of %d", p.Stream, seg, total)
	skipped := int64(0)
	defer func() { e.skipped(ctx, p.Stream, skipped, "segment", seg) }()
	wanted := extractors.SkipsWanted(ctx)
	for {
		in := &dynamodb.ScanInput{
			TableName:              aws.String(p.Stream),
			Segment:                aws.Int32(seg),
			TotalSegments:          aws.Int32(total),
			ConsistentRead:         aws.Bool(e.consistent),
			ExclusiveStartKey:      start,
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		}
		if e.pageSize > 0 {
			in.Limit = aws.Int32(e.pageSize)
		}
		var out *dynamodb.ScanOutput
		err := e.do(ctx, what, func(ctx context.Context) error {
			var err error
			out, err = e.client.Scan(ctx, in)
			return err
		})
		if err != nil {
			return throttled(err, p.Stream)
		}
		if cc := out.ConsumedCapacity; cc != nil && cc.CapacityUnits != nil {
			e.rcuMilli.Add(int64(*cc.CapacityUnits*1000 + 0.5))
		}
		for _, item := range out.Items {
			rec, key, skip, err := toRecord(p.Stream, keys, item, e.keepDel)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if skip {
				skipped++
				if !wanted {
					continue
				}
			}
			if rec.Cursor, err = encodeKey(key); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

// keySchema returns a table's partition key name and sort key name ("" for
// none).
func keySchema(d *types.TableDescription) ([2]string, error) {
	var k [2]string
	for _, e := range d.KeySchema {
		switch e.KeyType {
		case types.KeyTypeHash:
			k[0] = aws.ToString(e.AttributeName)
		case types.KeyTypeRange:
			k[1] = aws.ToString(e.AttributeName)
		}
	}
	if k[0] == "" {
		return k, fmt.Errorf("DynamoDB table %s has no partition key in its description", aws.ToString(d.TableName))
	}
	return k, nil
}

// toRecord converts one item; skip is true for a tombstone that is not
// kept, whose record has its key, no fields, and Skip set
// (TombstoneReason). The record has no cursor (a scan's is the item's
// primary key, key, an export's its line); key holds the item's primary
// key attributes.
func toRecord(table string, keys [2]string, item map[string]types.AttributeValue, keepDel bool) (rec record.Record, key map[string]types.AttributeValue, skip bool, err error) {
	id, key, err := itemID(keys, item)
	if err != nil {
		return record.Record{}, nil, false, err
	}
	if d, ok := item["_deleted"].(*types.AttributeValueMemberBOOL); ok && d.Value && !keepDel {
		return record.Record{Kind: record.KindDocument, Key: table + "/" + id, Skip: &record.Skip{Reason: TombstoneReason}}, key, true, nil
	}
	fields, err := Fields(item)
	if err != nil {
		return record.Record{}, nil, false, fmt.Errorf("item %s: %w", id, err)
	}
	rec = record.Record{Kind: record.KindDocument, Key: table + "/" + id, Fields: fields}
	if v, ok := fields["_lastChangedAt"]; ok && v.Type() == record.TypeInt {
		rec.UpdateTime = time.UnixMilli(v.IntValue()).UTC()
	}
	return rec, key, false, nil
}

// itemID returns an item's document ID and its primary key attributes.
func itemID(keys [2]string, item map[string]types.AttributeValue) (string, map[string]types.AttributeValue, error) {
	key := map[string]types.AttributeValue{}
	var parts []string
	for _, name := range keys {
		if name == "" {
			continue
		}
		av := item[name]
		t, err := keyText(av)
		if err != nil {
			return "", nil, fmt.Errorf("key attribute %q: %w", name, err)
		}
		key[name] = av
		parts = append(parts, escapeID(t))
	}
	return strings.Join(parts, "|"), key, nil
}

// do runs fn under the retry policy, with AWS's transient errors marked
// retryable.
func (e *Extractor) do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	return retry.Describe(what, retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
		return classify(fn(ctx))
	}))
}

// throttleCodes are the error codes of DynamoDB refusing for capacity.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true, "ThrottlingException": true,
	"RequestLimitExceeded": true, "LimitExceededException": true, "TooManyRequestsException": true,
}

// transientCodes are other AWS error codes worth retrying.
var transientCodes = map[string]bool{
	"InternalServerError": true, "ServiceUnavailable": true, "InternalFailure": true, "TransactionInProgressException": true,
}

// classify marks throttling, AWS server errors, and the SDK running out of
// its own retry quota as transient; a refusal (unknown table, denied
// access, a bad request) keeps its permanent class.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if throttleCodes[api.ErrorCode()] || transientCodes[api.ErrorCode()] {
			return retry.Mark(err, true)
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if s := re.HTTPStatusCode(); s >= 500 || s == http.StatusTooManyRequests {
			return retry.Mark(err, true)
		}
		if api != nil {
			return retry.Mark(err, false)
		}
	}
	if strings.Contains(err.Error(), "retry quota exceeded") {
		return retry.Mark(err, true)
	}
	return err
}

// isThrottle reports whether err is DynamoDB refusing for capacity.
func isThrottle(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()]
}

// throttled adds what to do to an error that ended in throttling.
func throttled(err error, table string) error {
	if !isThrottle(err) {
		return err
	}
	return fmt.Errorf("%w\nDynamoDB kept throttling the scan of table %s (its read capacity is used up): "+
		"raise the table's read capacity or switch it to on-demand, run with fewer --workers, "+
		"scan eventually consistent (--%s=false, half the capacity), or read an export to S3 (--%s), which costs none; "+
		"the run resumes where it stopped", err, table, ConsistentOption.Name, ExportOption.Name)
}
