package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb"
	"github.com/baasmigrate/baasmigrate/extractors/dynamodb/dynamodbtest"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// streamWriter writes versioned items to DynamoDB Local and remembers
// every write, per key, in commit order.
type streamWriter struct {
	t      *testing.T
	c      *ddb.Client
	v      int64
	writes map[string][]int64 // per document key: versions put, 0 for a delete
}

func (w *streamWriter) put(table string, key map[string]types.AttributeValue, docKey string, extra map[string]types.AttributeValue) int64 {
	w.t.Helper()
	w.v++
	item := map[string]types.AttributeValue{"v": &types.AttributeValueMemberN{Value: strconv.FormatInt(w.v, 10)}}
	for k, v := range key {
		item[k] = v
	}
	for k, v := range extra {
		item[k] = v
	}
	if _, err := w.c.PutItem(context.Background(), &ddb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		w.t.Fatal(err)
	}
	w.writes[docKey] = append(w.writes[docKey], w.v)
	return w.v
}

func (w *streamWriter) del(table string, key map[string]types.AttributeValue, docKey string) {
	w.t.Helper()
	if _, err := w.c.DeleteItem(context.Background(), &ddb.DeleteItemInput{TableName: aws.String(table), Key: key}); err != nil {
		w.t.Fatal(err)
	}
	w.writes[docKey] = append(w.writes[docKey], 0)
}

// tombstone marks a key's item as an Amplify DataStore tombstone: with
// --dynamodb-deleted skip its row goes, so it counts as a delete.
func (w *streamWriter) tombstone(table string, key map[string]types.AttributeValue, docKey string) {
	w.t.Helper()
	w.put(table, key, docKey, map[string]types.AttributeValue{"_deleted": &types.AttributeValueMemberBOOL{Value: true}})
	w.writes[docKey][len(w.writes[docKey])-1] = 0
}

func sKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
}

func compositeKey(owner string, at int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"owner": &types.AttributeValueMemberS{Value: owner}, "at": &types.AttributeValueMemberN{Value: strconv.Itoa(at)}}
}

// streamRun follows Changes in the background.
type streamRun struct {
	cancel  context.CancelFunc
	batches chan record.ChangeBatch
	done    chan error
}

func startChanges(ex *dynamodb.Extractor, from string) *streamRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &streamRun{cancel: cancel, batches: make(chan record.ChangeBatch), done: make(chan error, 1)}
	go func() {
		r.done <- ex.Changes(ctx, from, extractors.ChangeHints{}, func(b record.ChangeBatch) error {
			select {
			case r.batches <- b:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	return r
}

func (r *streamRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Changes returned %v when its context ended; want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Changes did not return within a minute of its context ending")
	}
}

// replay is the state a stream's changes leave each key in, and checks
// on the order they come in.
type replay struct {
	t        *testing.T
	state    map[string]record.Record // present keys
	last     map[string]int64         // per key: the last version delivered (0: a delete)
	lastRT   time.Time
	batches  []record.ChangeBatch
	after    []map[string]int64 // last after each batch
	versions map[string][]int64 // delivered, per key
}

func newReplay(t *testing.T, start time.Time) *replay {
	return &replay{t: t, state: map[string]record.Record{}, last: map[string]int64{}, lastRT: start, versions: map[string][]int64{}}
}

// until takes batches until one is consistent at or after at.
func (rp *replay) until(r *streamRun, at time.Time) {
	rp.t.Helper()
	for {
		var b record.ChangeBatch
		select {
		case b = <-r.batches:
		case err := <-r.done:
			rp.t.Fatalf("Changes returned: %v", err)
		case <-time.After(2 * time.Minute):
			rp.t.Fatal("no batch from Changes within two minutes")
		}
		rp.batch(b)
		if !b.ReadTime.Before(at) {
			return
		}
	}
}

func (rp *replay) batch(b record.ChangeBatch) {
	t := rp.t
	t.Helper()
	if b.ReadTime.Before(rp.lastRT) {
		t.Errorf("batch %d: ReadTime went back from %v to %v", len(rp.batches), rp.lastRT, b.ReadTime)
	}
	rp.lastRT = b.ReadTime
	if b.Position == "" {
		t.Errorf("batch %d has no Position", len(rp.batches))
	}
	for _, c := range b.Changes {
		key := c.Record.Key
		if c.CommitTime.IsZero() || c.Record.Kind != record.KindDocument || c.Record.Cursor != "" {
			t.Errorf("%s of %q: commit time %v, kind %q, cursor %q", c.Op, key, c.CommitTime, c.Record.Kind, c.Record.Cursor)
		}
		var v int64
		switch c.Op {
		case record.OpUpsert:
			f := c.Record.Fields["v"]
			if f.Type() != record.TypeInt {
				t.Fatalf("upsert of %q has no version field: %v", key, c.Record.Fields)
			}
			v = f.IntValue()
			if prev, ok := rp.last[key]; ok && prev > v {
				t.Errorf("%q: version %d delivered after version %d (out of order)", key, v, prev)
			}
			rp.state[key] = c.Record
		case record.OpDelete:
			if len(c.Record.Fields) != 0 {
				t.Errorf("the delete of %q carries fields", key)
			}
			delete(rp.state, key)
		default:
			t.Errorf("%q: op %v", key, c.Op)
		}
		rp.last[key] = v
		rp.versions[key] = append(rp.versions[key], v)
	}
	rp.batches = append(rp.batches, b)
	snap := make(map[string]int64, len(rp.last))
	for k, v := range rp.last {
		snap[k] = v
	}
	rp.after = append(rp.after, snap)
}

// delivered reports whether version v of key was delivered (v = 0: a
// delete after the version before it).
func (rp *replay) delivered(key string, writes []int64, i int) bool {
	got := rp.versions[key]
	if writes[i] != 0 {
		for _, v := range got {
			if v == writes[i] {
				return true
			}
		}
		return false
	}
	before := int64(-1)
	if i > 0 {
		before = writes[i-1]
	}
	for j, v := range got {
		// The first change delivered follows what the stream started from.
		if v == 0 && (before == -1 || j == 0 || got[j-1] == before) {
			return true
		}
	}
	return false
}

// matches checks that the replayed state of every key written is what a
// scan of the source reads.
func (rp *replay) matches(ex *dynamodb.Extractor, keys map[string][]int64) {
	t := rp.t
	t.Helper()
	read := map[string]record.Record{}
	streams, err := ex.Plan(context.Background(), 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		for _, p := range s.Partitions {
			if err := ex.Read(context.Background(), p, time.Time{}, "", func(r record.Record) error {
				r.Cursor = ""
				read[r.Key] = r
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for key := range keys {
		got, inStream := rp.state[key]
		want, inSource := read[key]
		switch {
		case inStream != inSource:
			t.Errorf("%q: in the replayed stream %v, read from the table %v", key, inStream, inSource)
		case inStream && !record.Equal(record.Map(got.Fields), record.Map(want.Fields)):
			t.Errorf("%q: the stream's record differs from the scan's:\n stream %v\n scan   %v", key, record.Map(got.Fields), record.Map(want.Fields))
		case inStream && !got.UpdateTime.Equal(want.UpdateTime):
			t.Errorf("%q: update time %v, the scan's %v", key, got.UpdateTime, want.UpdateTime)
		}
	}
}

// TestStreamChanges follows two tables' streams (one with a sort key)
// through inserts, updates, deletes and an Amplify tombstone written
// before the start time, after it before Changes is called, and while it
// runs; then resumes from a batch's Position.
//
// The extractortest.ChangeStream suite does not fit DynamoDB Streams: it
// requires that nothing committed at or before PositionAt's time be
// delivered, but stream records carry only an approximate creation time
// (to the minute on DynamoDB Local), so PositionAt replays changes from a
// little before it (PositionSlack). These tests check the same contract
// otherwise: per-key order, nothing after the start missed, ReadTimes that
// never decrease, resuming from a Position without repeating what came
// before it, records as a scan makes them, expired positions.
func TestStreamChanges(t *testing.T) {
	awsCredentials(t)
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	a := dynamodbtest.StreamTable(t, c, types.StreamViewTypeNewAndOldImages, "id", "S", "", "")
	b := dynamodbtest.StreamTable(t, c, types.StreamViewTypeNewImage, "owner", "S", "at", "N")
	ex := newExtractor(t, config(ep, a, b))
	w := &streamWriter{t: t, c: c, writes: map[string][]int64{}}
	ka := func(id string) string { return a + "/" + id }
	kb := func(owner string, at int) string { return fmt.Sprintf("%s/%s|%d", b, owner, at) }
	changed := map[string]types.AttributeValue{"_lastChangedAt": &types.AttributeValueMemberN{Value: "1700000000123"}, "title": &types.AttributeValueMemberS{Value: "naïve/|%"}}

	w.put(a, sKey("x1"), ka("x1"), nil)
	w.put(a, sKey("gone"), ka("gone"), nil)
	w.del(a, sKey("gone"), ka("gone"))
	start := time.Now()
	from, err := ex.PositionAt(start)
	if err != nil {
		t.Fatal(err)
	}
	// Between the start time and Changes.
	w.put(a, sKey("x1"), ka("x1"), changed)
	w.put(a, sKey("x2"), ka("x2"), nil)
	w.put(b, compositeKey("o/1", 1), kb("o%2F1", 1), nil)
	w.put(a, sKey("ts"), ka("ts"), nil)
	w.tombstone(a, sKey("ts"), ka("ts"))
	r := startChanges(ex, from)
	rp := newReplay(t, start)
	rp.until(r, time.Now())
	// While Changes runs.
	w.del(a, sKey("x1"), ka("x1"))
	w.put(a, sKey("x3"), ka("x3"), nil)
	w.put(b, compositeKey("o/1", 1), kb("o%2F1", 1), changed)
	w.put(b, compositeKey("o/1", 2), kb("o%2F1", 2), nil)
	w.put(a, sKey("x1"), ka("x1"), nil) // back after its delete
	rp.until(r, time.Now())
	r.stop(t)
	if t.Failed() {
		return
	}
	rp.matches(ex, w.writes)
	for key, writes := range w.writes {
		for i := range writes {
			if key == ka("gone") || (key == ka("x1") && i == 0) {
				continue // before the start time: may or may not come
			}
			if !rp.delivered(key, writes, i) {
				t.Errorf("%q: write %d (version %d, 0 = delete) was never delivered; delivered %v", key, i, writes[i], rp.versions[key])
			}
		}
	}

	// Resume from the Position of the last batch that delivered changes
	// (every shard has a sequence number there), and write some more.
	resumeAt := -1
	for i, bt := range rp.batches {
		if len(bt.Changes) > 0 {
			resumeAt = i
		}
	}
	if resumeAt < 0 {
		t.Fatal("no batch delivered changes")
	}
	w.put(a, sKey("x2"), ka("x2"), nil)
	w.del(b, compositeKey("o/1", 2), kb("o%2F1", 2))
	r2 := startChanges(ex, rp.batches[resumeAt].Position)
	rp2 := newReplay(t, rp.batches[resumeAt].ReadTime)
	for k, v := range rp.after[resumeAt] {
		rp2.last[k] = v
	}
	rp2.until(r2, time.Now())
	r2.stop(t)
	for key, got := range rp2.versions {
		before := rp.after[resumeAt][key]
		for _, v := range got {
			if v != 0 && v <= before {
				t.Errorf("resumed: %q version %d delivered again; the resumed batch had delivered up to version %d", key, v, before)
			}
		}
	}
	if !rp2.delivered(ka("x2"), w.writes[ka("x2")], len(w.writes[ka("x2")])-1) || !rp2.delivered(kb("o%2F1", 2), w.writes[kb("o%2F1", 2)], len(w.writes[kb("o%2F1", 2)])-1) {
		t.Errorf("resumed: the writes made while stopped were not delivered: %v", rp2.versions)
	}
	// The keys the resumed stream delivered end as the source has them.
	rp2.matches(ex, rp2.versions)
}

// TestStreamPositions: a position older than streams keep, one whose
// stream is not the table's, and one whose shard is gone are expired; a
// position that is not one is refused; emit's error comes back unchanged.
func TestStreamPositions(t *testing.T) {
	awsCredentials(t)
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	a := dynamodbtest.StreamTable(t, c, types.StreamViewTypeNewAndOldImages, "id", "S", "", "")
	ex := newExtractor(t, config(ep, a))
	ctx := context.Background()
	noEmit := func(record.ChangeBatch) error { return errors.New("no batch expected") }

	old, _ := ex.PositionAt(time.Now().Add(-dynamodb.StreamRetention - time.Minute))
	if err := ex.Changes(ctx, old, extractors.ChangeHints{}, noEmit); !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Errorf("a position older than 24 hours: %v; want ErrSnapshotExpired", err)
	}
	// Before the table's stream was created.
	before, _ := ex.PositionAt(time.Now().Add(-time.Hour))
	if err := ex.Changes(ctx, before, extractors.ChangeHints{}, noEmit); !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Errorf("a position before the stream was created: %v; want ErrSnapshotExpired", err)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	other := fmt.Sprintf(`ddbstreams1:{"since":%q,"at":%q,"tables":{%q:{"stream":"arn:aws:dynamodb:ddblocal:000000000000:table/%s/stream/2020-01-01T00:00:00.000"}}}`, now, now, a, a)
	if err := ex.Changes(ctx, other, extractors.ChangeHints{}, noEmit); !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Errorf("a position of another stream: %v; want ErrSnapshotExpired", err)
	}
	d, err := c.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(a)})
	if err != nil {
		t.Fatal(err)
	}
	gone := fmt.Sprintf(`ddbstreams1:{"since":%q,"at":%q,"tables":{%q:{"stream":%q,"shards":{"shardId-00000000000000000000-00000000":{"seq":"000000000000000000001"}}}}}`, now, now, a, aws.ToString(d.Table.LatestStreamArn))
	if err := ex.Changes(ctx, gone, extractors.ChangeHints{}, noEmit); !errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Errorf("a position whose shard is gone: %v; want ErrSnapshotExpired", err)
	}
	if err := ex.Changes(ctx, "2026-01-01T00:00:00Z", extractors.ChangeHints{}, noEmit); err == nil || errors.Is(err, extractors.ErrSnapshotExpired) {
		t.Errorf("a position that is not one: %v; want an error other than ErrSnapshotExpired", err)
	}

	w := &streamWriter{t: t, c: c, writes: map[string][]int64{}}
	from, _ := ex.PositionAt(time.Now())
	w.put(a, sKey("k"), a+"/k", nil)
	mine := errors.New("the caller's own error")
	calls := 0
	err = ex.Changes(ctx, from, extractors.ChangeHints{}, func(record.ChangeBatch) error { calls++; return mine })
	if !errors.Is(err, mine) || calls != 1 || retry.IsRetryable(err) {
		t.Errorf("emit's error: Changes returned %v after %d calls; want it unchanged after one", err, calls)
	}
}

// TestStreamRefused: tables without a stream, or whose stream holds no
// new image, are refused with the fix, not as an expired position.
func TestStreamRefused(t *testing.T) {
	awsCredentials(t)
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	none := dynamodbtest.Table(t, c, "id", "S", "", "")
	keys := dynamodbtest.StreamTable(t, c, types.StreamViewTypeKeysOnly, "id", "S", "", "")
	for _, table := range []string{none, keys} {
		ex := newExtractor(t, config(ep, table))
		from, _ := ex.PositionAt(time.Now())
		err := ex.Changes(context.Background(), from, extractors.ChangeHints{}, func(record.ChangeBatch) error { return nil })
		if err == nil || errors.Is(err, extractors.ErrSnapshotExpired) || !strings.Contains(err.Error(), "NEW_AND_OLD_IMAGES") || !strings.Contains(err.Error(), table) {
			t.Errorf("table %s: Changes returned %v; want a refusal naming the table and the fix", table, err)
		}
	}
}

// streamFaults forwards requests to DynamoDB Local, answering the
// DynamoDB Streams calls it is told to with an error as DynamoDB does.
type streamFaults struct {
	next  http.Handler
	fault func(op string, n int64) string // error code for the n-th call of op ("" to forward)
	mu    sync.Mutex
	calls map[string]int64
	given map[string]int
}

func (s *streamFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	s.mu.Lock()
	s.calls[op]++
	code := s.fault(op, s.calls[op])
	if code != "" {
		s.given[code]++
	}
	s.mu.Unlock()
	if code == "" {
		s.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected by the test"}`, code)
}

func faultProxy(t *testing.T, ep string, fault func(op string, n int64) string) (*streamFaults, string) {
	target, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	s := &streamFaults{next: httputil.NewSingleHostReverseProxy(target), fault: fault, calls: map[string]int64{}, given: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// TestStreamFaults: throttled GetRecords are retried, an expired iterator
// is taken again after the last record read (nothing lost, nothing
// delivered twice), and a trimmed shard is an expired position.
func TestStreamFaults(t *testing.T) {
	awsCredentials(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // only our retries
	ep := dynamodbtest.Endpoint(t)
	c := dynamodbtest.Client(ep)
	a := dynamodbtest.StreamTable(t, c, types.StreamViewTypeNewAndOldImages, "id", "S", "", "")
	faults, proxy := faultProxy(t, ep, func(op string, n int64) string {
		switch {
		case op == "GetRecords" && n == 1:
			return "LimitExceededException"
		case op == "GetRecords" && n == 3:
			return "ExpiredIteratorException"
		}
		return ""
	})
	cfg := config(proxy, a)
	cfg["dynamodb-page-size"] = ""
	ex := newExtractor(t, cfg)
	w := &streamWriter{t: t, c: c, writes: map[string][]int64{}}
	start := time.Now()
	from, _ := ex.PositionAt(start)
	for i := range 5 {
		w.put(a, sKey(fmt.Sprint("k", i%2)), a+"/k"+fmt.Sprint(i%2), nil)
	}
	r := startChanges(ex, from)
	rp := newReplay(t, start)
	rp.until(r, time.Now())
	for i := 5; i < 10; i++ {
		w.put(a, sKey(fmt.Sprint("k", i%2)), a+"/k"+fmt.Sprint(i%2), nil)
	}
	rp.until(r, time.Now())
	r.stop(t)
	if faults.given["LimitExceededException"] != 1 || faults.given["ExpiredIteratorException"] != 1 {
		t.Errorf("faults given: %v; want one throttling and one expired iterator", faults.given)
	}
	for key, writes := range w.writes {
		if got := rp.versions[key]; fmt.Sprint(got) != fmt.Sprint(writes) {
			t.Errorf("%q: delivered versions %v; want each of %v once, in order", key, got, writes)
		}
	}

	trimmed, proxy2 := faultProxy(t, ep, func(op string, n int64) string {
		if op == "GetShardIterator" {
			return "TrimmedDataAccessException"
		}
		return ""
	})
	ex2 := newExtractor(t, config(proxy2, a))
	err := ex2.Changes(context.Background(), rp.batches[len(rp.batches)-1].Position, extractors.ChangeHints{}, func(record.ChangeBatch) error { return nil })
	if !errors.Is(err, extractors.ErrSnapshotExpired) || trimmed.given["TrimmedDataAccessException"] == 0 {
		t.Errorf("a trimmed shard: Changes returned %v (faults %v); want ErrSnapshotExpired", err, trimmed.given)
	}
}
