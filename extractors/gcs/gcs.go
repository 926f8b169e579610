// Package gcs extracts the objects of a Cloud Storage bucket — the bucket of
// Cloud Storage for Firebase — as file records.
//
// # How a bucket is split and resumed
//
// A bucket (or the part of it under --storage-prefix) is one stream. Plan
// lists the object names and sizes once and cuts the name space into
// partitions of about equal weight (bytes plus a fixed cost per object), at
// object names: partition i covers the names in [Start, End), read with the
// listing's StartOffset and EndOffset. The first partition starts at "" and
// the last ends at "", so objects created after planning are read too.
//
// Read lists a partition in name order, page by page, and emits one record
// per object. A record's cursor is its object name; a read resumed after a
// cursor lists from the next possible name (cursor + "\x00"), so it yields
// exactly the objects that follow.
//
// # Records
//
// Record.Key is the object name, exactly. Fields are those of
// record.File (size, HTTP metadata, md5, crc32c, generation, custom
// metadata including firebaseStorageDownloadTokens, and those tokens as
// its DownloadTokens); CreateTime and
// UpdateTime are the object's. Record.Open streams the object's stored bytes
// (never decompressed, so they match md5 and crc32c) pinned to the listed
// generation: the bytes always belong to the metadata in the record. When
// that generation is gone — the object was deleted or overwritten after it
// was listed — Open returns an error that matches fs.ErrNotExist.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Options of the gcs extractor.
var (
	BucketOption = plugin.Option{
		Name: "storage-bucket",
		Help: "Cloud Storage bucket to copy files from (default: <firebase-project>.appspot.com, Firebase's default bucket).",
	}
	EmulatorOption = plugin.Option{
		Name: "storage-emulator-host",
		Help: "Read from a Cloud Storage emulator (fake-gcs-server) at this URL instead of Google.",
		Env:  []string{"STORAGE_EMULATOR_HOST"},
	}
	PrefixOption = plugin.Option{
		Name: "storage-prefix",
		Help: "Copy only objects whose names start with this prefix (default: the whole bucket).",
	}
	PageSizeOption = plugin.Option{
		Name:    "storage-page-size",
		Help:    "Objects listed per request; bounds memory per partition.",
		Default: "1000",
		Type:    plugin.Int,
	}
)

func init() {
	extractors.Register(extractors.Spec{
		Source: "firebase",
		Name:   "gcs",
		Kind:   record.KindFile,
		Help:   "Every object of a Cloud Storage (Firebase Storage) bucket, with its metadata and download tokens.",
		Options: []plugin.Option{
			firebase.ProjectOption, firebase.CredentialsOption, BucketOption, EmulatorOption, PrefixOption, PageSizeOption,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// DownloadTokensKey is the custom metadata key under which Firebase keeps an
// object's download tokens, comma-separated. Existing clients put a token in
// their download URLs, so the tokens are migrated with the object: records
// carry them as record.File.DownloadTokens (and the metadata keeps the key).
const DownloadTokensKey = "firebaseStorageDownloadTokens"

// DownloadTokens returns the Firebase download tokens that custom metadata
// holds, in order, without empty entries; nil when there are none.
func DownloadTokens(metadata map[string]string) []string {
	var out []string
	for _, t := range strings.Split(metadata[DownloadTokensKey], ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// objectWeight is the planning weight of one object on top of its bytes:
// the latency of a request, expressed in bytes at a typical rate.
const objectWeight = 512 << 10

// maxSplitCandidates bounds the names Plan keeps while listing.
const maxSplitCandidates = 4096

// Extractor reads one bucket. It is safe for concurrent use.
type Extractor struct {
	client   *storage.Client
	bucket   *storage.BucketHandle
	name     string
	prefix   string
	pageSize int
	policy   retry.Policy
}

var (
	_ extractors.Extractor   = (*Extractor)(nil)
	_ extractors.Sizer       = (*Extractor)(nil)
	_ extractors.Bucketed    = (*Extractor)(nil)
	_ extractors.ObjectNamer = (*Extractor)(nil)
)

// New connects to the bucket cfg names. The bucket defaults to Firebase's
// default bucket of the project.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	name := cfg.String(BucketOption.Name)
	if name == "" {
		project := cfg.String(firebase.ProjectOption.Name)
		if project == "" {
			return nil, fmt.Errorf("no bucket to read: pass --%s or --%s", BucketOption.Name, firebase.ProjectOption.Name)
		}
		name = project + ".appspot.com"
	}
	pageSize, err := cfg.Int(PageSizeOption.Name, 1000)
	if err != nil {
		return nil, err
	}
	if pageSize < 1 {
		return nil, fmt.Errorf("--%s must be at least 1", PageSizeOption.Name)
	}
	policy, err := retry.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	var opts []option.ClientOption
	if host := cfg.String(EmulatorOption.Name); host != "" {
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		// The client derives its XML read host from this endpoint too.
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(host, "/")+"/storage/v1/"), option.WithoutAuthentication())
	} else {
		creds, err := firebase.ClientOptions(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, creds...)
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to Cloud Storage: %w", err)
	}
	// The client retries nothing itself: listings, opens and interrupted
	// reads are retried by our policy (list, open, objectReader), which
	// cuts silent calls, logs every retry and resumes where it was.
	client.SetRetry(storage.WithPolicy(storage.RetryNever))
	return &Extractor{
		client: client, bucket: client.Bucket(name), name: name,
		prefix: cfg.String(PrefixOption.Name), pageSize: pageSize, policy: policy,
	}, nil
}

// Bucket is the name of the bucket read.
func (e *Extractor) Bucket() string { return e.name }

// Prefix is what the names of the objects read start with (--storage-prefix).
func (e *Extractor) Prefix() string { return e.prefix }

// ObjectURL names an object as Cloud Storage does: gs://bucket/name.
func (e *Extractor) ObjectURL(bucket, name string) string { return "gs://" + bucket + "/" + name }

// Source identifies the bucket and prefix.
func (e *Extractor) Source() string {
	return "gcs:" + e.streamName()
}

var _ extractors.Parter = (*Extractor)(nil)

// WholeSource is the bucket, whatever prefix is read.
func (e *Extractor) WholeSource() string { return "gcs:gs://" + e.name }

func (e *Extractor) streamName() string { return "gs://" + e.name + "/" + e.prefix }

// Close releases the client.
func (e *Extractor) Close() error { return e.client.Close() }

// Plan returns the bucket as one stream split into at most partitions
// partitions of about equal weight. Cloud Storage has no snapshot reads:
// readTime is ignored and objects are read as they are when listed.
func (e *Extractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	stream := extractors.Stream{Name: e.streamName(), Kind: record.KindFile}
	var bounds []string
	if partitions > 1 {
		var err error
		if bounds, err = e.splitPoints(ctx, partitions); err != nil {
			return nil, err
		}
	}
	bounds = append(append([]string{""}, bounds...), "")
	for i := 0; i+1 < len(bounds); i++ {
		stream.Partitions = append(stream.Partitions, extractors.Partition{
			Stream: stream.Name, ID: fmt.Sprintf("p%04d", i), Start: bounds[i], End: bounds[i+1],
		})
	}
	return []extractors.Stream{stream}, nil
}

// Size lists the stream's partitions (names and sizes only) and returns
// the number of objects and their total bytes, for the progress bar's ETA.
// Listing costs one Class A operation per 1,000 objects.
func (e *Extractor) Size(ctx context.Context, s extractors.Stream) (objects, bytes int64, err error) {
	for _, p := range s.Partitions {
		err := e.list(ctx, "sizing "+e.streamName(), p.Start, p.End, []string{"Name", "Size"}, func(a *storage.ObjectAttrs) error {
			objects++
			bytes += a.Size
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return objects, bytes, nil
}

// splitCandidate is an object name with the weight of the objects before it.
type splitCandidate struct {
	name   string
	before int64
}

// splitPoints lists names and sizes and returns up to n-1 object names that
// cut the bucket into runs of about equal weight. It keeps at most
// maxSplitCandidates names, evenly spaced by count, whatever the size of
// the bucket.
func (e *Extractor) splitPoints(ctx context.Context, n int) ([]string, error) {
	var (
		cands  []splitCandidate
		stride = 1
		seen   int
		total  int64
	)
	err := e.list(ctx, "planning "+e.streamName(), "", "", []string{"Name", "Size"}, func(a *storage.ObjectAttrs) error {
		if seen%stride == 0 {
			cands = append(cands, splitCandidate{a.Name, total})
			if len(cands) > maxSplitCandidates {
				kept := cands[:0]
				for i := 0; i < len(cands); i += 2 {
					kept = append(kept, cands[i])
				}
				cands, stride = kept, stride*2
			}
		}
		seen++
		total += a.Size + objectWeight
		return nil
	})
	if err != nil {
		return nil, err
	}
	var points []string
	next := 1
	for _, c := range cands {
		if next >= n {
			break
		}
		if c.name != "" && c.before >= total*int64(next)/int64(n) {
			if len(points) == 0 || points[len(points)-1] != c.name {
				points = append(points, c.name)
			}
			for next < n && c.before >= total*int64(next)/int64(n) {
				next++
			}
		}
	}
	return points, nil
}

// Read emits the objects of p after the object named after, in name order.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	start := p.Start
	if after != "" {
		start = after + "\x00" // the smallest name after after
	}
	return e.list(ctx, fmt.Sprintf("listing %s partition %s", p.Stream, p.ID), start, p.End, nil, func(a *storage.ObjectAttrs) error {
		return emit(e.toRecord(a))
	})
}

// list calls fn for every object with a name in [start, end) under the
// prefix, in name order, page by page. A page request that fails
// transiently, or gets no answer for --source-timeout, is retried by the
// extractor's policy from the object after the last one handed to fn; an
// error left after that keeps its class (failure.Classify). An error from
// fn is returned unchanged. attrs, when not nil, restricts what the
// listing returns.
func (e *Extractor) list(ctx context.Context, what, start, end string, attrs []string, fn func(*storage.ObjectAttrs) error) error {
	var fnErr error
	err := retry.Do(ctx, e.policy, what, func(ctx context.Context) error {
		q := &storage.Query{Prefix: e.prefix, StartOffset: start, EndOffset: end, Projection: storage.ProjectionNoACL}
		if attrs != nil {
			if err := q.SetAttrSelection(attrs); err != nil {
				return err
			}
		}
		it := e.bucket.Objects(ctx, q)
		it.PageInfo().MaxSize = e.pageSize
		for {
			a, err := it.Next()
			if err == iterator.Done {
				return nil
			}
			if errors.Is(err, storage.ErrBucketNotExist) {
				return fmt.Errorf("bucket %q does not exist (set --%s)", e.name, BucketOption.Name)
			}
			if err != nil {
				return err
			}
			retry.Alive(ctx)
			release := retry.Hold(ctx) // fn may wait for the target
			fnErr = fn(a)
			release()
			if fnErr != nil {
				return errStop
			}
			start = a.Name + "\x00" // the smallest name after a's
		}
	})
	if fnErr != nil {
		return fnErr
	}
	return retry.Describe(what, err)
}

// errStop ends a listing when its callback fails (a permanent error: the
// callback's own error is returned instead).
var errStop = errors.New("stopped by the callback")

// toRecord turns listed attributes into a file record.
func (e *Extractor) toRecord(a *storage.ObjectAttrs) record.Record {
	f := record.File{
		Bucket: a.Bucket, Name: a.Name, Size: a.Size,
		ContentType: a.ContentType, CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition,
		ContentEncoding: a.ContentEncoding, ContentLanguage: a.ContentLanguage,
		MD5: a.MD5, CRC32C: a.CRC32C, HasCRC32C: true,
		Generation: a.Generation, Metageneration: a.Metageneration, StorageClass: a.StorageClass,
		Metadata: a.Metadata, DownloadTokens: DownloadTokens(a.Metadata), Created: a.Created, Updated: a.Updated,
	}
	if len(f.MD5) == 0 {
		f.MD5 = nil
	}
	name, gen := a.Name, a.Generation
	return record.Record{
		Kind: record.KindFile, Key: a.Name, CreateTime: a.Created, UpdateTime: a.Updated,
		Fields: f.Fields(), Cursor: a.Name,
		Open: func(ctx context.Context) (io.ReadCloser, error) { return e.open(ctx, name, gen) },
	}
}

// GoneError says an object's listed generation can no longer be read. It
// matches fs.ErrNotExist.
type GoneError struct {
	Bucket, Name string
	Generation   int64
	// Now is the object's current generation, 0 when it was deleted.
	Now int64
}

func (e *GoneError) Error() string {
	if e.Now != 0 {
		return fmt.Sprintf("gs://%s/%s was overwritten at the source after it was listed (generation %d listed, %d now); the next run copies the new version", e.Bucket, e.Name, e.Generation, e.Now)
	}
	return fmt.Sprintf("gs://%s/%s was deleted at the source after it was listed (generation %d)", e.Bucket, e.Name, e.Generation)
}

// Is makes GoneError match fs.ErrNotExist.
func (e *GoneError) Is(target error) bool { return target == fs.ErrNotExist }

// ChecksumError says the bytes read did not match the checksum Cloud Storage
// sent with them.
type ChecksumError struct {
	Bucket, Name string
	Err          error
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("reading gs://%s/%s: the bytes read do not match the object's checksum: %v", e.Bucket, e.Name, e.Err)
}

func (e *ChecksumError) Unwrap() error { return e.Err }

// ChecksumMismatch marks the error as a checksum mismatch for sinks.
func (e *ChecksumError) ChecksumMismatch() bool { return true }

// open starts reading generation gen of name, undecompressed, with the
// extractor's retry policy: a failed or silent open is retried, and a read
// that breaks or stalls (no bytes for --source-timeout while the reader
// waits for them) resumes at the byte where it stopped, from the same
// generation.
func (e *Extractor) open(ctx context.Context, name string, gen int64) (io.ReadCloser, error) {
	o := &objectReader{e: e, ctx: ctx, name: name, gen: gen}
	if err := o.reopen(); err != nil {
		return nil, err
	}
	return o, nil
}

// objectReader reads one object, resuming after transient failures; it
// names the object in read errors and turns the client's own CRC check
// failure into a ChecksumError.
type objectReader struct {
	e       *Extractor
	ctx     context.Context
	name    string
	gen     int64
	offset  int64
	r       *storage.Reader
	w       *retry.Watchdog
	retries *retry.Backoff
	broken  error // why the current reader failed; the next Read resumes
}

// reopen opens the object at the current offset, retrying by the policy.
func (o *objectReader) reopen() error {
	if o.retries == nil {
		o.retries = o.e.policy.Start(fmt.Sprintf("reading gs://%s/%s", o.e.name, o.name))
	}
	for {
		err := o.openOnce()
		if err == nil {
			return nil
		}
		if err := o.retries.Retry(o.ctx, err); err != nil {
			return err
		}
	}
}

func (o *objectReader) openOnce() error {
	e := o.e
	obj := e.bucket.Object(o.name).ReadCompressed(true)
	if o.gen != 0 {
		obj = obj.Generation(o.gen)
	}
	ctx, w := retry.Watch(o.ctx, e.policy.Timeout, e.policy.TimeoutOption)
	r, err := obj.NewRangeReader(ctx, o.offset, -1)
	if err != nil {
		err = w.Err(err)
		w.Stop()
	}
	if errors.Is(err, storage.ErrObjectNotExist) {
		gone := &GoneError{Bucket: e.name, Name: o.name, Generation: o.gen}
		actx, aw := retry.Watch(o.ctx, e.policy.Timeout, e.policy.TimeoutOption)
		a, aerr := e.bucket.Object(o.name).Attrs(actx)
		aerr = aw.Err(aerr)
		aw.Stop()
		switch {
		case aerr == nil && a.Generation == o.gen:
			// Listed and still there, yet not readable: worth another try.
			return retry.Mark(fmt.Errorf("opening gs://%s/%s: not found, though generation %d is still listed", e.name, o.name, o.gen), true)
		case aerr == nil:
			gone.Now = a.Generation
		case !errors.Is(aerr, storage.ErrObjectNotExist):
			return fmt.Errorf("opening gs://%s/%s: %w", e.name, o.name, aerr)
		}
		return gone
	}
	if err != nil {
		return fmt.Errorf("opening gs://%s/%s: %w", e.name, o.name, err)
	}
	w.Hold() // the clock runs only while Read waits for bytes
	if o.r != nil {
		o.r.Close()
		o.w.Stop()
	}
	o.r, o.w = r, w
	return nil
}

func (o *objectReader) Read(p []byte) (int, error) {
	for {
		if o.broken != nil {
			err := o.broken
			o.broken = nil
			if err := o.retries.Retry(o.ctx, err); err != nil {
				return 0, err
			}
			if err := o.reopen(); err != nil {
				return 0, err
			}
		}
		o.w.Alive()
		n, err := o.r.Read(p)
		o.w.Hold()
		o.offset += int64(n)
		if err == nil || err == io.EOF {
			return n, err
		}
		if strings.Contains(err.Error(), "bad CRC") {
			return n, &ChecksumError{Bucket: o.e.name, Name: o.name, Err: err}
		}
		o.broken = fmt.Errorf("reading gs://%s/%s at byte %d: %w", o.e.name, o.name, o.offset, o.w.Err(err))
		if n > 0 {
			return n, nil // resume at the next Read
		}
	}
}

func (o *objectReader) Close() error {
	err := o.r.Close()
	o.w.Stop()
	return err
}
