// Package firestore extracts every document of a Cloud Firestore database.
//
// # How the database is split
//
// Each root collection is a stream: the collection's documents and
// everything under them, at any depth — including subcollections of
// "missing" documents that exist only as parents. A stream is read with a
// kindless all-descendants query from the database root (the query Firebase's
// own recursive delete uses), ordered by document name, between the first
// document name of its root collection and the first of the next one. That
// one query sees every document exactly once without a discovery pass over
// every document's subcollections, and delivers a parent before its
// descendants.
//
// Streams are split into partitions at document names returned by
// PartitionQuery on the root collection's collection group. Each partition
// is read in pages of bounded size with start_after cursors, so memory stays
// bounded and a read resumes exactly after the last committed document.
//
// # Consistency
//
// All partitions of a run read at one read_time, a snapshot Firestore keeps
// for one hour (seven days with point-in-time recovery). A run that outlives
// it gets ErrSnapshotExpired from Read; the migration continues at a new read
// time and records both.
package firestore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vkit "cloud.google.com/go/firestore/apiv1"
	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Options of the firestore extractor.
var (
	DatabaseOption = plugin.Option{
		Name:    "firestore-database",
		Help:    "Firestore database ID.",
		Default: "(default)",
	}
	EmulatorOption = plugin.Option{
		Name: "firestore-emulator-host",
		Help: "Read from a Firestore emulator at host:port instead of Google.",
		Env:  []string{"FIRESTORE_EMULATOR_HOST"},
	}
	CollectionsOption = plugin.Option{
		Name: "collections",
		Help: "Comma-separated root collections to migrate, each with everything under it (default: all).",
	}
	PageSizeOption = plugin.Option{
		Name:    "firestore-page-size",
		Help:    "Documents fetched per query page; bounds memory per partition.",
		Default: "1000",
		Type:    plugin.Int,
	}
	SnapshotWindowOption = plugin.Option{
		Name:    "firestore-snapshot-window",
		Help:    "How long Firestore keeps past versions readable: 1h, or 168h with point-in-time recovery.",
		Default: "1h",
		Type:    plugin.Duration,
	}
)

func init() {
	extractors.Register(extractors.Spec{
		Source: "firebase",
		Name:   "firestore",
		Kind:   record.KindDocument,
		Help:   "Every document of a Cloud Firestore database, subcollections included.",
		Options: []plugin.Option{
			firebase.ProjectOption, firebase.CredentialsOption, DatabaseOption, EmulatorOption,
			CollectionsOption, PageSizeOption, SnapshotWindowOption, retry.AttemptsOption, retry.BackoffOption,
			retry.SourceTimeoutOption, DiscoverOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// Extractor reads one Firestore database.
type Extractor struct {
	client      *vkit.Client
	project, db string
	root        string // "projects/P/databases/D/documents"
	collections []string
	// settings are the options a run is bound to (extractors.Configured).
	settings map[string]string
	pageSize int
	window   time.Duration
	policy   retry.Policy
	reads    atomic.Int64
	discover bool // --firestore-discover (changes.go)
}

var (
	_ extractors.Extractor   = (*Extractor)(nil)
	_ extractors.Snapshotter = (*Extractor)(nil)
	_ extractors.Counter     = (*Extractor)(nil)
	_ extractors.ReadMeter   = (*Extractor)(nil)
)

// New connects to the database cfg names.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	if err := plugin.CheckRequired([]plugin.Option{firebase.ProjectOption}, cfg); err != nil {
		return nil, err
	}
	pageSize, err := cfg.Int(PageSizeOption.Name, 1000)
	if err != nil {
		return nil, err
	}
	if pageSize < 1 {
		return nil, fmt.Errorf("--%s must be at least 1", PageSizeOption.Name)
	}
	window, err := time.ParseDuration(cfg.String(SnapshotWindowOption.Name))
	if err != nil || window <= 0 {
		// Zero or less would make every read time count as expired.
		return nil, fmt.Errorf("--%s: %q is not a positive duration like 1h (or 168h with point-in-time recovery)",
			SnapshotWindowOption.Name, cfg.String(SnapshotWindowOption.Name))
	}
	policy, err := retry.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	discover := true // the option's default, also when a caller's config lacks it
	if cfg.String(DiscoverOption.Name) != "" {
		discover, err = cfg.Bool(DiscoverOption.Name)
	}
	if err != nil {
		return nil, err
	}
	e := &Extractor{
		discover: discover,
		project:  cfg.String(firebase.ProjectOption.Name),
		db:       cfg.String(DatabaseOption.Name),
		pageSize: pageSize,
		window:   window,
		policy:   policy,
	}
	if e.db == "" {
		e.db = "(default)"
	}
	e.root = fmt.Sprintf("projects/%s/databases/%s/documents", e.project, e.db)
	e.settings = map[string]string{CollectionsOption.Name: cfg.String(CollectionsOption.Name)}
	for _, c := range strings.Split(cfg.String(CollectionsOption.Name), ",") {
		if c = strings.TrimSpace(c); c != "" {
			e.collections = append(e.collections, c)
		}
	}
	var opts []option.ClientOption
	if host := cfg.String(EmulatorOption.Name); host != "" {
		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(host, "http://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(emulatorCreds{}))
		if err != nil {
			return nil, fmt.Errorf("connecting to the Firestore emulator at %s: %w", host, err)
		}
		opts = append(opts, option.WithGRPCConn(conn))
	} else {
		creds, err := firebase.ClientOptions(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, creds...)
	}
	client, err := vkit.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to Firestore: %w", err)
	}
	// The generated client retries some calls on its own, for up to a
	// minute each; our policy (the --retry-* options) decides instead.
	client.CallOptions = &vkit.CallOptions{}
	e.client = client
	return e, nil
}

// emulatorCreds authenticates to an emulator the way Google's client does.
type emulatorCreds struct{}

func (emulatorCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (emulatorCreds) RequireTransportSecurity() bool { return false }

// Source identifies the database.
//
// A run restricted to some root collections (--collections) is a job of its
// own: its checkpoints and mapping do not stand for the others.
func (e *Extractor) Source() string {
	s := e.WholeSource()
	if len(e.collections) > 0 {
		sorted := slices.Sorted(slices.Values(e.collections))
		s += "?collections=" + strings.Join(sorted, ",")
	}
	return s
}

var _ extractors.Parter = (*Extractor)(nil)

// WholeSource is the database, whichever collections are read.
func (e *Extractor) WholeSource() string {
	return "firestore:" + strings.TrimSuffix(e.root, "/documents")
}

// Close releases the connection.
func (e *Extractor) Close() error { return e.client.Close() }

// BillableReads is the number of document reads Firestore bills for the
// calls made so far (a query that returns nothing is billed one read).
func (e *Extractor) BillableReads() int64 { return e.reads.Load() }

// SnapshotWindow is how long a read time stays readable.
func (e *Extractor) SnapshotWindow() time.Duration { return e.window }

// SnapshotTime returns Firestore's current time, taken from a one-document
// query (one billed read), so a read time is never ahead of the server.
func (e *Extractor) SnapshotTime(ctx context.Context) (time.Time, error) {
	q := e.kindless("", "", "", 1)
	q.Select = &pb.StructuredQuery_Projection{Fields: []*pb.StructuredQuery_FieldReference{{FieldPath: "__name__"}}}
	var t time.Time
	err := e.do(ctx, "taking a snapshot time", func(ctx context.Context) error {
		stream, err := e.client.RunQuery(ctx, &pb.RunQueryRequest{Parent: e.root, QueryType: &pb.RunQueryRequest_StructuredQuery{StructuredQuery: q}})
		if err != nil {
			return err
		}
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			retry.Alive(ctx)
			if resp.ReadTime != nil && t.IsZero() {
				t = resp.ReadTime.AsTime()
			}
		}
		e.reads.Add(1)
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if t.IsZero() {
		return time.Time{}, errors.New("taking a snapshot time: Firestore returned no read time")
	}
	if e.window > time.Hour {
		// With point-in-time recovery Firestore serves read times older
		// than an hour only on whole minutes.
		t = t.Truncate(time.Minute)
	}
	return t, nil
}

// Plan lists root collections at readTime; each becomes a stream over the
// names from its first document to the first document of the next root
// collection, split at PartitionQuery cursors.
func (e *Extractor) Plan(ctx context.Context, partitions int, readTime time.Time) ([]extractors.Stream, error) {
	roots, err := e.rootCollections(ctx, readTime)
	if err != nil {
		return nil, err
	}
	// First document names, missing parents included; a root collection
	// with nothing at all under it at readTime has none and is dropped.
	type root struct{ id, first string }
	var rs []root
	for _, c := range roots {
		first, err := e.firstDocument(ctx, c, readTime)
		if err != nil {
			return nil, err
		}
		if first != "" {
			rs = append(rs, root{c, first})
		}
	}
	var streams []extractors.Stream
	for i, r := range rs {
		if len(e.collections) > 0 && !slices.Contains(e.collections, r.id) {
			continue
		}
		start, end := r.first, ""
		if i == 0 && len(e.collections) == 0 {
			start = "" // the whole key space is covered, whatever a listing missed
		}
		if i+1 < len(rs) {
			end = rs[i+1].first
		}
		splits, err := e.splitPoints(ctx, r.id, partitions, readTime, start, end)
		if err != nil {
			return nil, err
		}
		bounds := append(append([]string{start}, splits...), end)
		st := extractors.Stream{Name: r.id, Kind: record.KindDocument}
		for j := 0; j+1 < len(bounds); j++ {
			st.Partitions = append(st.Partitions, extractors.Partition{
				Stream: r.id, ID: fmt.Sprintf("p%04d", j), Start: bounds[j], End: bounds[j+1],
			})
		}
		streams = append(streams, st)
	}
	return streams, nil
}

// rootCollections lists the database's root collection IDs in Firestore's
// order, checking that every --collections entry exists.
func (e *Extractor) rootCollections(ctx context.Context, readTime time.Time) ([]string, error) {
	ids, err := e.collectionIDs(ctx, e.root, readTime)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range e.collections {
		if !slices.Contains(ids, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("--collections: no root collection named %q in %s", missing, e.root)
	}
	slices.SortFunc(ids, CompareIDs)
	return ids, nil
}

// firstDocument returns the smallest document name directly in root
// collection c, counting missing documents (parents that exist only through
// subcollections), so that the range starting there holds all of c's
// subtree; "" when c holds nothing at readTime.
func (e *Extractor) firstDocument(ctx context.Context, c string, readTime time.Time) (string, error) {
	var first string
	err := e.do(ctx, "finding the first document of "+c, func(ctx context.Context) error {
		// Names only (an empty mask), in the default order: by name
		// ascending. Firestore refuses order_by together with show_missing.
		req := &pb.ListDocumentsRequest{
			Parent: e.root, CollectionId: c, PageSize: 1, ShowMissing: true, Mask: &pb.DocumentMask{},
		}
		if !readTime.IsZero() {
			req.ConsistencySelector = &pb.ListDocumentsRequest_ReadTime{ReadTime: timestamppb.New(readTime)}
		}
		it := e.client.ListDocuments(ctx, req)
		it.PageInfo().MaxSize = 1
		doc, err := it.Next()
		if err == iterator.Done {
			first = ""
			return nil
		}
		if err != nil {
			return err
		}
		first = e.relative(doc.Name)
		return nil
	})
	e.reads.Add(1)
	return first, err
}

// splitPoints asks PartitionQuery for up to n-1 split points in (start,
// end), in order.
func (e *Extractor) splitPoints(ctx context.Context, c string, n int, readTime time.Time, start, end string) ([]string, error) {
	if n < 2 {
		return nil, nil
	}
	var points []string
	err := e.do(ctx, "partitioning "+c, func(ctx context.Context) error {
		points = points[:0]
		req := &pb.PartitionQueryRequest{
			Parent: e.root,
			QueryType: &pb.PartitionQueryRequest_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
				From:    []*pb.StructuredQuery_CollectionSelector{{CollectionId: c, AllDescendants: true}},
				OrderBy: []*pb.StructuredQuery_Order{{Field: &pb.StructuredQuery_FieldReference{FieldPath: "__name__"}, Direction: pb.StructuredQuery_ASCENDING}},
			}},
			PartitionCount: int64(n),
		}
		if !readTime.IsZero() {
			req.ConsistencySelector = &pb.PartitionQueryRequest_ReadTime{ReadTime: timestamppb.New(readTime)}
		}
		it := e.client.PartitionQuery(ctx, req)
		for {
			cur, err := it.Next()
			if err == iterator.Done {
				return nil
			}
			if err != nil {
				return err
			}
			retry.Alive(ctx)
			if len(cur.Values) == 0 {
				continue
			}
			p := e.relative(cur.Values[0].GetReferenceValue())
			if (start == "" || ComparePaths(p, start) > 0) && (end == "" || ComparePaths(p, end) < 0) {
				points = append(points, p)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	e.reads.Add(1)
	slices.SortFunc(points, ComparePaths)
	return slices.Compact(points), nil
}

// Count counts the documents of a planned stream (between its first
// partition's start and its last partition's end) with an aggregation
// query, which Firestore bills at one read per 1,000 documents counted.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	start, end := "", ""
	if len(s.Partitions) > 0 {
		start, end = s.Partitions[0].Start, s.Partitions[len(s.Partitions)-1].End
	}
	q := e.kindless(start, "", end, 0)
	var n int64
	err := e.do(ctx, "counting "+s.Name, func(ctx context.Context) error {
		req := &pb.RunAggregationQueryRequest{
			Parent: e.root,
			QueryType: &pb.RunAggregationQueryRequest_StructuredAggregationQuery{StructuredAggregationQuery: &pb.StructuredAggregationQuery{
				QueryType:    &pb.StructuredAggregationQuery_StructuredQuery{StructuredQuery: q},
				Aggregations: []*pb.StructuredAggregationQuery_Aggregation{{Alias: "n", Operator: &pb.StructuredAggregationQuery_Aggregation_Count_{Count: &pb.StructuredAggregationQuery_Aggregation_Count{}}}},
			}},
		}
		if !s.ReadTime.IsZero() {
			req.ConsistencySelector = &pb.RunAggregationQueryRequest_ReadTime{ReadTime: timestamppb.New(s.ReadTime)}
		}
		stream, err := e.client.RunAggregationQuery(ctx, req)
		if err != nil {
			return err
		}
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			retry.Alive(ctx)
			if r := resp.GetResult(); r != nil {
				n = r.AggregateFields["n"].GetIntegerValue()
			}
		}
	})
	e.reads.Add(max(1, (n+999)/1000))
	return n, err
}

// Read emits the documents of p after cursor after, page by page. Retries
// that make progress (a stream cut after some documents) do not use up the
// retry budget: only consecutive failures without a document count.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, readTime time.Time, after string, emit func(record.Record) error) error {
	// An error from emit ends the read, whatever its class: retrying it
	// would deliver the record again.
	var emitErr error
	consume := func(r record.Record) error {
		if err := emit(r); err != nil {
			emitErr = err
			return err
		}
		return nil
	}
	for {
		n, last, err := e.readPage(ctx, p, readTime, after, e.pageSize, consume)
		if emitErr != nil {
			return emitErr
		}
		if err != nil && !(n > 0 && retry.IsRetryable(err)) {
			return err
		}
		if err == nil && n < e.pageSize {
			return nil
		}
		after = last
	}
}

// ReadFirst emits the first n documents of p at readTime (all of them
// when it holds fewer), asking Firestore for no more than n: a sample
// billed at n reads. n < 1 reads nothing.
func (e *Extractor) ReadFirst(ctx context.Context, p extractors.Partition, readTime time.Time, n int, emit func(record.Record) error) error {
	if n < 1 {
		return nil
	}
	_, _, err := e.readPage(ctx, p, readTime, "", n, emit)
	return err
}

// readPage reads one page (at most pageSize documents) after after,
// retrying transient failures from the last document emitted. It returns
// how many documents the page held and the last one's path.
func (e *Extractor) readPage(ctx context.Context, p extractors.Partition, readTime time.Time, after string, pageSize int, emit func(record.Record) error) (int, string, error) {
	n, last := 0, after
	var emitErr error
	err := e.do(ctx, fmt.Sprintf("reading %s partition %s", p.Stream, p.ID), func(ctx context.Context) error {
		q := e.kindless(p.Start, last, p.End, pageSize-n)
		req := &pb.RunQueryRequest{Parent: e.root, QueryType: &pb.RunQueryRequest_StructuredQuery{StructuredQuery: q}}
		if !readTime.IsZero() {
			req.ConsistencySelector = &pb.RunQueryRequest_ReadTime{ReadTime: timestamppb.New(readTime)}
		}
		stream, err := e.client.RunQuery(ctx, req)
		if err != nil {
			return err
		}
		got := 0
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				e.reads.Add(int64(got))
				return err
			}
			retry.Alive(ctx)
			if resp.Document == nil {
				continue
			}
			got++
			rec, err := e.toRecord(resp.Document)
			if err != nil {
				// The consumer's error is not the source's: never
				// retried (that would deliver the record again).
				emitErr = err
				return retry.Mark(emitErr, false)
			}
			// Waiting for the target is not the source's silence.
			release := retry.Hold(ctx)
			err = emit(rec)
			release()
			if err != nil {
				// The consumer's error is not the source's: never
				// retried (that would deliver the record again).
				emitErr = err
				return retry.Mark(emitErr, false)
			}
			n, last = n+1, rec.Key
		}
		e.reads.Add(int64(max(got, 1)))
		return nil
	})
	if emitErr != nil {
		return n, last, emitErr
	}
	if isExpired(err, readTime) {
		return n, last, fmt.Errorf("reading %s partition %s at %s: %w", p.Stream, p.ID, readTime.Format(time.RFC3339Nano), extractors.ErrSnapshotExpired)
	}
	return n, last, err
}

// kindless builds the all-descendants query from the database root over
// names in [start, end), strictly after after when it is set, at most limit
// documents (0: no limit).
func (e *Extractor) kindless(start, after, end string, limit int) *pb.StructuredQuery {
	q := &pb.StructuredQuery{
		From:    []*pb.StructuredQuery_CollectionSelector{{AllDescendants: true}},
		OrderBy: []*pb.StructuredQuery_Order{{Field: &pb.StructuredQuery_FieldReference{FieldPath: "__name__"}, Direction: pb.StructuredQuery_ASCENDING}},
	}
	switch {
	case after != "":
		q.StartAt = &pb.Cursor{Values: []*pb.Value{e.ref(after)}, Before: false}
	case start != "":
		q.StartAt = &pb.Cursor{Values: []*pb.Value{e.ref(start)}, Before: true}
	}
	if end != "" {
		q.EndAt = &pb.Cursor{Values: []*pb.Value{e.ref(end)}, Before: true}
	}
	if limit > 0 {
		q.Limit = wrapperspb.Int32(int32(limit))
	}
	return q
}

func (e *Extractor) ref(path string) *pb.Value {
	return &pb.Value{ValueType: &pb.Value_ReferenceValue{ReferenceValue: e.root + "/" + path}}
}

// relative turns a full document name into a path relative to the root.
func (e *Extractor) relative(name string) string {
	return strings.TrimPrefix(name, e.root+"/")
}

// do runs fn under the extractor's retry policy: each call is cut after
// --source-timeout without a message (fn calls retry.Alive on each one,
// and holds the clock with retry.Hold while it hands a document on), and
// transient failures (failure.Classify) are retried. An error that remains
// keeps its class, so callers can tell an outage from a refusal.
func (e *Extractor) do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	return retry.Describe(what, retry.Do(ctx, e.policy, what, fn))
}

// isExpired recognises Firestore refusing a read time older than it keeps.
func isExpired(err error, readTime time.Time) bool {
	if err == nil || readTime.IsZero() {
		return false
	}
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.FailedPrecondition {
		return false
	}
	msg := strings.ToLower(s.Message())
	return strings.Contains(msg, "read_time") || strings.Contains(msg, "read time")
}

// ComparePaths orders document paths as Firestore orders names: segment by
// segment, each segment by CompareIDs, then the shorter path first.
func ComparePaths(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := CompareIDs(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

// CompareIDs orders two document (or collection) IDs as Firestore orders
// the segments of document names: legacy numeric IDs first, by their value,
// then every other ID by its UTF-8 bytes. A numeric ID is "__id" + an int64
// in canonical decimal + "__" (__id7__, __id-3__, __id0__); anything else —
// __id007__, __id+7__, __id-0__, __id9223372036854775808__, __id__ — is an
// ordinary string. IDOrder.OrderBy is the same rule in SQL, for reading
// target tables in this order.
func CompareIDs(a, b string) int {
	na, aNum := numericID(a)
	nb, bNum := numericID(b)
	switch {
	case aNum && bNum:
		return cmp.Compare(na, nb)
	case aNum:
		return -1
	case bNum:
		return 1
	}
	return strings.Compare(a, b)
}

// numericID returns n for an ID of the form __id<n>__ with n an int64
// written the one way Firestore writes it (no plus sign, no leading zero,
// no -0).
func numericID(id string) (int64, bool) {
	if len(id) < len("__id0__") || !strings.HasPrefix(id, "__id") || !strings.HasSuffix(id, "__") {
		return 0, false
	}
	digits := id[len("__id") : len(id)-len("__")]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// RunSettings is --collections as given: a run reading some root
// collections resumes only with the same ones.
func (e *Extractor) RunSettings() map[string]string { return maps.Clone(e.settings) }

// Roots returns the root collections --collections names, or nil for all.
func (e *Extractor) Roots() []string { return slices.Clone(e.collections) }

var (
	_ extractors.Configured = (*Extractor)(nil)
	_ extractors.Rooted     = (*Extractor)(nil)
)
