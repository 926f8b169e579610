package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

// The change stream of the scanning extractor: DynamoDB Streams.
//
// # What is followed
//
// Every table the extractor reads (--dynamodb-tables, or every table the
// account lists, listed again every minute so that tables created later are
// followed too) must have a stream whose view type holds the new image
// (NEW_AND_OLD_IMAGES, which Amplify sets, or NEW_IMAGE); Changes refuses
// any other, saying how to enable one. INSERT and MODIFY records become
// upserts of the record a scan makes of the new image (toRecord: same key,
// fields, Amplify attributes and update time), REMOVE records (TTL expiry
// included) deletes of the key. With --dynamodb-deleted skip (the default) a
// new image with _deleted = true is a DataStore tombstone and becomes the
// delete of its key, as the copy leaves no row for it; with keep it is an
// upsert like any other.
//
// # Shards and order
//
// A stream is a tree of shards: a shard is closed after some hours (or when
// the table's partitions split) and its children continue it. Changes to one
// key go to one shard at a time, in order, so a child is read only once its
// parent has been read to its end (a parent no longer listed, older than the
// stream keeps, counts as read). Shards are read one after the other, each
// until GetRecords returns an empty page; a round reads every readable
// shard of every table so.
//
// # Batches and read times
//
// Each page of records is one batch, whose changes follow the page's order.
// Once a round has brought every shard to an empty page, a batch without
// changes says so: its ReadTime is when the round started less ReadLag, the
// time DynamoDB takes to show a committed write in its stream (this
// machine's clock; DynamoDB Streams has no read time of its own). Batches of
// records keep the last such ReadTime, so ReadTimes never decrease. A
// change's CommitTime is the record's update time (_lastChangedAt) when it
// has one, else the stream record's ApproximateCreationDateTime.
//
// # Positions
//
// A position is "ddbstreams1:" followed by JSON (see streamPosition): the
// time the stream started from (since), the read time it stands for (at),
// and per table its stream's ARN and, per shard, the sequence number of the
// last record read and whether the shard was read to its end. A shard that
// is not in it is read from its start (TRIM_HORIZON), one that is from
// after its sequence number (AFTER_SEQUENCE_NUMBER). Shards read to their
// end are dropped once the stream no longer lists them.
//
// PositionAt(t) cannot ask DynamoDB which records come after t, and stream
// records carry only an approximate creation time (rounded down to the
// second; to the minute by DynamoDB Local). Its position reads every shard
// from its start and skips, in each shard, the records created more than
// PositionSlack before t, up to the first one that is not: changes from a
// little before t are delivered again, in order, which converges since each
// upsert carries the whole item (replaying a key's older changes in order
// ends in its latest state). The slack covers that rounding and the clock
// skew between this machine and AWS.
//
// # Retention
//
// A stream keeps records for 24 hours (StreamRetention). A position whose
// read time is older than that, a shard of the position that is no longer
// listed before it was read to its end, a record DynamoDB trimmed
// (TrimmedDataAccessException), a stream that was created after the
// position's start (streams enabled late), or a table whose stream is not
// the one the position followed (disabled and enabled again) all make
// Changes return extractors.ErrSnapshotExpired: changes may be missing, and
// sync catches up by a snapshot comparison before it streams again.
//
// Requests are retried under the extractor's policy (throttling included);
// an iterator that expired (after 15 minutes) is taken again from the last
// sequence number read.

// Stream timing.
const (
	// StreamRetention is how long DynamoDB Streams keeps a record.
	StreamRetention = 24 * time.Hour
	// PositionSlack is how far before PositionAt's time records are
	// delivered again (see PositionAt).
	PositionSlack = 10 * time.Minute
	// ReadLag is how long after a write is committed it is taken to be
	// readable from the table's stream.
	ReadLag = 2 * time.Second
)

// Polling of streams (variables for tests).
var (
	// streamPoll is the pause between two rounds that found nothing new.
	streamPoll = time.Second
	// relistEvery is how often tables and shards are listed again even
	// when no shard closed.
	relistEvery = time.Minute
)

var _ extractors.ChangeStreamer = (*Extractor)(nil)

// positionPrefix starts every position (its version).
const positionPrefix = "ddbstreams1:"

// streamPosition is a decoded position.
type streamPosition struct {
	// Since is the time the stream was started from (PositionAt's t):
	// shards read from their start skip records created more than
	// PositionSlack before it until the first that is not.
	Since time.Time `json:"since"`
	// At is the read time the position stands for.
	At time.Time `json:"at"`
	// Tables holds, per table, what was read of its stream; a table that
	// is not in it is read from the start of its shards.
	Tables map[string]*tablePosition `json:"tables,omitempty"`
}

type tablePosition struct {
	// Stream is the ARN of the stream followed.
	Stream string `json:"stream"`
	// Shards holds, per shard ID, what was read of it.
	Shards map[string]*shardPosition `json:"shards,omitempty"`
}

type shardPosition struct {
	// Seq is the sequence number of the last record read ("": none).
	Seq string `json:"seq,omitempty"`
	// Done says the shard is closed and was read to its end.
	Done bool `json:"done,omitempty"`
	// Skipping says that every record read so far was skipped as older
	// than Since less PositionSlack, so the next ones are checked too.
	Skipping bool `json:"skipping,omitempty"`
}

func (p *streamPosition) encode() string {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("dynamodb: encoding a stream position: %v", err))
	}
	return positionPrefix + string(b)
}

func parseStreamPosition(s string) (*streamPosition, error) {
	raw, ok := strings.CutPrefix(s, positionPrefix)
	if !ok {
		return nil, fmt.Errorf("%q is not a DynamoDB Streams position (want %s...)", s, positionPrefix)
	}
	var p streamPosition
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, fmt.Errorf("reading the DynamoDB Streams position: %w", err)
	}
	if p.Since.IsZero() || p.At.IsZero() {
		return nil, errors.New("the DynamoDB Streams position has no start or read time")
	}
	if p.Tables == nil {
		p.Tables = map[string]*tablePosition{}
	}
	for _, t := range p.Tables {
		if t.Shards == nil {
			t.Shards = map[string]*shardPosition{}
		}
	}
	return &p, nil
}

// PositionAt returns the position that follows every table's stream from
// the start of its shards, skipping what was created more than
// PositionSlack before t (see the package's notes on positions): every
// change committed after t is delivered, with some from just before it.
func (e *Extractor) PositionAt(t time.Time) (string, error) {
	if t.IsZero() {
		return "", errors.New("a DynamoDB Streams position needs a start time; got none")
	}
	t = t.UTC()
	return (&streamPosition{Since: t, At: t}).encode(), nil
}

// streamsClient returns a DynamoDB Streams client made from the DynamoDB
// client's settings (region, endpoint, credentials, retries).
func (e *Extractor) streamsClient() *dynamodbstreams.Client {
	o := e.client.Options()
	return dynamodbstreams.New(dynamodbstreams.Options{
		APIOptions:       o.APIOptions,
		AppID:            o.AppID,
		BaseEndpoint:     o.BaseEndpoint,
		ClientLogMode:    o.ClientLogMode,
		Credentials:      o.Credentials,
		HTTPClient:       o.HTTPClient,
		Logger:           o.Logger,
		Region:           o.Region,
		RetryMaxAttempts: o.RetryMaxAttempts,
		RetryMode:        o.RetryMode,
		Retryer:          o.Retryer,
	})
}

// follower is one run of Changes.
type follower struct {
	e      *Extractor
	c      *dynamodbstreams.Client
	pos    *streamPosition
	emit   func(record.ChangeBatch) error
	tables map[string]*followed
	// iters holds the iterator to go on reading a shard with, by table
	// and shard ID.
	iters    map[string]string
	listed   time.Time
	relist   bool
	readTime time.Time
}

// followed is one table's stream as last listed.
type followed struct {
	name   string
	keys   [2]string
	arn    string
	shards map[string]st.Shard
	order  []string // shard IDs as listed
}

// Changes follows the streams of the tables from position from until ctx
// ends (see extractors.ChangeStreamer, and the notes on DynamoDB Streams
// at the top of this file). hints are not used: every table read is
// followed.
func (e *Extractor) Changes(ctx context.Context, from string, _ extractors.ChangeHints, emit func(record.ChangeBatch) error) error {
	pos, err := parseStreamPosition(from)
	if err != nil {
		return err
	}
	if age := time.Since(pos.At); age > StreamRetention {
		return fmt.Errorf("following DynamoDB Streams from %s (%s ago): streams keep 24 hours: %w",
			pos.At.Format(time.RFC3339), age.Round(time.Minute), extractors.ErrSnapshotExpired)
	}
	f := &follower{e: e, c: e.streamsClient(), pos: pos, emit: emit, iters: map[string]string{}, readTime: pos.At, relist: true}
	err = f.run(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (f *follower) run(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.relist || time.Since(f.listed) >= relistEvery {
			if err := f.list(ctx); err != nil {
				return err
			}
		}
		started := time.Now()
		if err := f.round(ctx); err != nil {
			return err
		}
		if f.relist {
			// A shard closed: its children are read in the same round
			// of the next listing, before the round counts as caught up.
			continue
		}
		if rt := started.Add(-ReadLag).UTC(); rt.After(f.readTime) {
			f.readTime = rt
		}
		f.pos.At = f.readTime
		if err := f.emit(record.ChangeBatch{ReadTime: f.readTime, Position: f.pos.encode()}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(streamPoll):
		}
	}
}

// permanent marks err as no retry's to mend.
func permanent(err error) error { return failure.Mark(err, failure.Permanent) }

// list lists the tables and their streams' shards, checking that each
// stream can be followed from the position.
func (f *follower) list(ctx context.Context) error {
	names, err := f.e.tableNames(ctx)
	if err != nil {
		return err
	}
	tables := map[string]*followed{}
	for _, name := range names {
		t, err := f.listTable(ctx, name)
		if err != nil {
			return err
		}
		tables[name] = t
	}
	f.tables, f.listed, f.relist = tables, time.Now(), false
	return nil
}

// followable returns nil when table name (described as d) has a stream
// whose records hold the items' new image, or else a permanent error
// saying so with the command that fixes it.
func followable(name string, d *types.TableDescription) error {
	fix := fmt.Sprintf("enable a stream with the new image: aws dynamodb update-table --table-name %s --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES", name)
	spec := d.StreamSpecification
	if spec == nil || !aws.ToBool(spec.StreamEnabled) || d.LatestStreamArn == nil {
		return permanent(fmt.Errorf("following DynamoDB table %s: it has no stream (DynamoDB Streams is not enabled); %s", name, fix))
	}
	switch spec.StreamViewType {
	case types.StreamViewTypeNewAndOldImages, types.StreamViewTypeNewImage:
		return nil
	default:
		return permanent(fmt.Errorf("following DynamoDB table %s: its stream's view type %s holds no new image of the items; "+
			"a stream's view type cannot change: disable the stream (--stream-specification StreamEnabled=false), then %s (sync then catches up by a comparison)",
			name, spec.StreamViewType, fix))
	}
}

// CheckChanges (extractors.ChangeChecker) returns an error naming every
// table whose stream cannot be followed, with the command that fixes it,
// so that sync stops before its copy rather than after.
func (e *Extractor) CheckChanges(ctx context.Context) error {
	names, err := e.tableNames(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		d, err := e.describe(ctx, name, true)
		if err != nil {
			return err
		}
		if err := followable(name, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f *follower) listTable(ctx context.Context, name string) (*followed, error) {
	d, err := f.e.describe(ctx, name, true)
	if err != nil {
		return nil, err
	}
	keys, err := keySchema(d)
	if err != nil {
		return nil, err
	}
	if err := followable(name, d); err != nil {
		return nil, err
	}
	arn := aws.ToString(d.LatestStreamArn)
	t := &followed{name: name, keys: keys, arn: arn, shards: map[string]st.Shard{}}
	var start *string
	var created time.Time
	for {
		var out *dynamodbstreams.DescribeStreamOutput
		err := f.e.do(ctx, "describing the DynamoDB stream of table "+name, func(ctx context.Context) error {
			var err error
			out, err = f.c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: start})
			return err
		})
		if err != nil {
			return nil, err
		}
		sd := out.StreamDescription
		if sd.CreationRequestDateTime != nil {
			created = *sd.CreationRequestDateTime
		}
		for _, sh := range sd.Shards {
			id := aws.ToString(sh.ShardId)
			if _, dup := t.shards[id]; !dup {
				t.order = append(t.order, id)
			}
			t.shards[id] = sh
		}
		if sd.LastEvaluatedShardId == nil {
			break
		}
		start = sd.LastEvaluatedShardId
	}
	tp := f.pos.Tables[name]
	switch {
	case tp == nil:
		// Read from the start of the stream: it must hold every change
		// since the position's start.
		if !created.IsZero() && created.After(f.pos.Since) {
			return nil, fmt.Errorf("following DynamoDB table %s: its stream was created at %s, after %s, where sync starts: %w",
				name, created.UTC().Format(time.RFC3339), f.pos.Since.Format(time.RFC3339), extractors.ErrSnapshotExpired)
		}
		f.pos.Tables[name] = &tablePosition{Stream: arn, Shards: map[string]*shardPosition{}}
	case tp.Stream != arn:
		return nil, fmt.Errorf("following DynamoDB table %s: its stream is not the one followed so far (streams were disabled and enabled again): %w", name, extractors.ErrSnapshotExpired)
	default:
		for id, sp := range tp.Shards {
			if _, listed := t.shards[id]; listed {
				continue
			}
			if !sp.Done {
				return nil, fmt.Errorf("following DynamoDB table %s: shard %s was trimmed (older than the stream keeps) before it was read to its end: %w", name, id, extractors.ErrSnapshotExpired)
			}
			delete(tp.Shards, id) // read, and gone from the stream
		}
	}
	return t, nil
}

// round reads every readable shard of every table to an empty page (or its
// end), parents before their children.
func (f *follower) round(ctx context.Context) error {
	for _, name := range slices.Sorted(maps.Keys(f.tables)) {
		t := f.tables[name]
		tp := f.pos.Tables[name]
		read := map[string]bool{}
		for progress := true; progress; {
			progress = false
			for _, id := range t.order {
				if read[id] || !readable(t, tp, id) {
					continue
				}
				read[id], progress = true, true
				if err := f.readShard(ctx, t, tp, id); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// readable reports whether shard id of t may be read now: it is not read
// to its end, and its parent is (or is no longer listed).
func readable(t *followed, tp *tablePosition, id string) bool {
	if sp := tp.Shards[id]; sp != nil && sp.Done {
		return false
	}
	parent := aws.ToString(t.shards[id].ParentShardId)
	if parent == "" {
		return true
	}
	if _, listed := t.shards[parent]; !listed {
		return true
	}
	sp := tp.Shards[parent]
	return sp != nil && sp.Done
}

// readShard reads shard id page by page until a page is empty or the
// shard ends, delivering each page that holds records as a batch.
func (f *follower) readShard(ctx context.Context, t *followed, tp *tablePosition, id string) error {
	sp := tp.Shards[id]
	if sp == nil {
		sp = &shardPosition{Skipping: true}
		tp.Shards[id] = sp
	}
	ikey := t.name + "\x00" + id
	what := fmt.Sprintf("reading DynamoDB table %s's stream, shard %s", t.name, id)
	for {
		it, ok := f.iters[ikey]
		if !ok {
			var err error
			if it, err = f.iterator(ctx, t, id, sp.Seq); err != nil {
				return err
			}
		}
		var out *dynamodbstreams.GetRecordsOutput
		err := f.e.do(ctx, what, func(ctx context.Context) error {
			var err error
			out, err = f.c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
			return err
		})
		var expired *st.ExpiredIteratorException
		switch {
		case errors.As(err, &expired):
			delete(f.iters, ikey) // taken again after the last record read
			continue
		case err != nil:
			delete(f.iters, ikey)
			return streamErr(err, t.name, id)
		}
		if len(out.Records) > 0 {
			changes, err := f.changes(t, sp, out.Records)
			if err != nil {
				return permanent(fmt.Errorf("%s: %w", what, err))
			}
			if len(changes) > 0 || !sp.Skipping {
				if err := f.emit(record.ChangeBatch{Changes: changes, ReadTime: f.readTime, Position: f.pos.encode()}); err != nil {
					return err
				}
			}
		}
		if out.NextShardIterator == nil {
			sp.Done, sp.Seq, sp.Skipping = true, "", false
			delete(f.iters, ikey)
			f.relist = true // its children may not be listed yet
			return nil
		}
		f.iters[ikey] = aws.ToString(out.NextShardIterator)
		if len(out.Records) == 0 {
			return nil
		}
	}
}

// iterator takes an iterator of shard id: after seq, or from the shard's
// start when seq is "".
func (f *follower) iterator(ctx context.Context, t *followed, id, seq string) (string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(t.arn), ShardId: aws.String(id), ShardIteratorType: st.ShardIteratorTypeTrimHorizon}
	if seq != "" {
		in.ShardIteratorType, in.SequenceNumber = st.ShardIteratorTypeAfterSequenceNumber, aws.String(seq)
	}
	var out *dynamodbstreams.GetShardIteratorOutput
	err := f.e.do(ctx, fmt.Sprintf("opening DynamoDB table %s's stream, shard %s", t.name, id), func(ctx context.Context) error {
		var err error
		out, err = f.c.GetShardIterator(ctx, in)
		return err
	})
	if err != nil {
		return "", streamErr(err, t.name, id)
	}
	return aws.ToString(out.ShardIterator), nil
}

// streamErr turns DynamoDB saying that what a position needs is gone into
// extractors.ErrSnapshotExpired.
func streamErr(err error, table, shard string) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "TrimmedDataAccessException", "ResourceNotFoundException":
			return fmt.Errorf("following DynamoDB table %s, shard %s: %w: %w", table, shard, extractors.ErrSnapshotExpired, err)
		}
	}
	return err
}

// changes converts a page of stream records, moving sp past them.
func (f *follower) changes(t *followed, sp *shardPosition, recs []st.Record) ([]record.Change, error) {
	var out []record.Change
	skipBefore := f.pos.Since.Add(-PositionSlack)
	for _, r := range recs {
		sr := r.Dynamodb
		if sr == nil || sr.SequenceNumber == nil {
			return nil, errors.New("a stream record has no sequence number")
		}
		sp.Seq = aws.ToString(sr.SequenceNumber)
		at := aws.ToTime(sr.ApproximateCreationDateTime).UTC()
		if sp.Skipping {
			if sr.ApproximateCreationDateTime != nil && at.Before(skipBefore) {
				continue
			}
			sp.Skipping = false
		}
		c, err := change(t.name, t.keys, r, at, f.e.keepDel)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", sp.Seq, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// change converts one stream record of table (at: its approximate creation
// time) into the change it makes to the table's records.
func change(table string, keys [2]string, r st.Record, at time.Time, keepDel bool) (record.Change, error) {
	sr := r.Dynamodb
	switch r.EventName {
	case st.OperationTypeRemove:
		key, err := attributevalue.FromDynamoDBStreamsMap(sr.Keys)
		if err != nil {
			return record.Change{}, err
		}
		id, _, err := itemID(keys, key)
		if err != nil {
			return record.Change{}, err
		}
		return record.Change{Op: record.OpDelete, Record: record.Record{Kind: record.KindDocument, Key: table + "/" + id}, CommitTime: at}, nil
	case st.OperationTypeInsert, st.OperationTypeModify:
		if sr.NewImage == nil {
			return record.Change{}, fmt.Errorf("a %s record carries no new image (stream view type %s): the stream must be NEW_AND_OLD_IMAGES or NEW_IMAGE", r.EventName, sr.StreamViewType)
		}
		item, err := attributevalue.FromDynamoDBStreamsMap(sr.NewImage)
		if err != nil {
			return record.Change{}, err
		}
		rec, _, skip, err := toRecord(table, keys, item, keepDel)
		if err != nil {
			return record.Change{}, err
		}
		if skip {
			// A DataStore tombstone the copy leaves out: its row goes.
			return record.Change{Op: record.OpDelete, Record: record.Record{Kind: record.KindDocument, Key: rec.Key}, CommitTime: at}, nil
		}
		c := record.Change{Op: record.OpUpsert, Record: rec, CommitTime: rec.UpdateTime}
		if c.CommitTime.IsZero() {
			c.CommitTime = at
		}
		return c, nil
	}
	return record.Change{}, fmt.Errorf("unknown stream event %q", r.EventName)
}
