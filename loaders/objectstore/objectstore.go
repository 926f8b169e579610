// Package objectstore copies the bytes of file records into an object store
// — an S3-compatible bucket (AWS S3, MinIO, R2, …) or a local directory —
// verifying every object end to end.
//
// # Targets
//
// A target is named by a URL:
//
//	s3://BUCKET?endpoint=http://127.0.0.1:9000&region=us-east-1
//	s3://BUCKET?region=eu-west-1          (AWS, virtual-host style)
//	file:///srv/files
//
// S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), or the shared credentials file, never from the URL (a
// URL carrying them is refused); with an endpoint, requests are
// path-style. The bucket (or directory) is created when missing.
//
// # Keys
//
// An object's target key is Options.Prefix followed by its name, unchanged.
// A name the target cannot hold exactly is rejected with the reason, never
// rewritten: names with empty, "." or ".." segments (which includes a
// leading, trailing or doubled "/"), which a directory cannot hold and
// S3-compatible stores such as MinIO merge ("/abs" is "abs" there); for a
// directory also segments over 255 bytes and NUL; for S3 keys over 1,024
// bytes, not UTF-8, and whatever the server refuses. A directory target
// cannot be escaped: files are created through an os.Root, which refuses
// "..", absolute names and symbolic links that lead outside.
//
// Distinct accepted names give distinct keys, but a target may still hold
// two keys as one object: a directory on a case-insensitive or normalizing
// file system (probed by Prepare; Options.CaseInsensitive forces it).
// Store.Fold gives a key as the target identifies it; callers detect
// collisions by comparing folds (loaders/postgres records them). CopyGuarded
// leaves alone an object someone else put at a key.
//
// # Copies
//
// Objects are streamed from the source to the target, never held whole in
// memory: small objects in one PUT, larger ones (Options.PartSize) in a
// multipart upload whose parts are streamed too. Memory per object in
// flight is a few buffers of at most 256 KiB, whatever its size. At most
// Options.Concurrency objects and Options.MaxInflight bytes of objects are
// copied at once; an object larger than MaxInflight is copied alone.
//
// Every copy is verified: the CRC-32C the source declares (its MD5 when
// that is all it declares) is checked against the bytes read, and an
// upload is abandoned before it completes when they differ (a directory
// target writes to a temporary file, fsyncs it and renames it into place
// only then, so a crash never leaves a partial file under an object's
// name). An S3 target verifies the stored bytes itself: single PUTs carry
// the source's Content-MD5 and x-amz-checksum-crc32c, multipart uploads a
// CRC-32C per part and the source's full-object CRC-32C at completion; the
// server refuses bytes that do not match them, and the checksum it reports
// for the stored object (in the upload's response, or from a HEAD) is
// compared with the source's before the copy counts as done.
//
// An object the target already holds with the same size and checksum (and,
// for S3, the same metadata) is skipped, so a re-run copies only what is
// missing. A source object deleted after it was listed, a name or metadata
// the target cannot hold, and bytes that still do not match their checksum
// after Options.ChecksumAttempts copies are rejected with a reason; transient
// failures are retried with backoff and, when they persist, fail the batch
// with an error marked retryable.
package objectstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/baasmigrate/baasmigrate/internal/failure"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Options configure a Store. Zero values mean the defaults.
type Options struct {
	// Prefix is put before every object name to make its target key.
	Prefix string
	// Concurrency is how many objects are copied at once (default 16).
	Concurrency int
	// MaxInflight bounds the total size of the objects being copied at once
	// (default 256 MiB).
	MaxInflight int64
	// PartSize is the part size of multipart uploads to S3; larger objects
	// are uploaded in parts (default 64 MiB, at least 5 MiB).
	PartSize int64
	// Retry is the policy for transient failures of one object (default
	// retry.Default). Its Timeout, when set, cuts an attempt whose target
	// has been silent that long (time spent reading the source does not
	// count), and the attempt is retried.
	Retry retry.Policy
	// ChecksumAttempts is how many times an object whose bytes do not match
	// its checksum is copied before it is rejected (default 3).
	ChecksumAttempts int
	// CaseInsensitive compares keys as a case-insensitive, normalizing file
	// system does (see KeyComparison), whatever the target says of itself:
	// for a directory target on a file system the probe of Prepare cannot
	// see through (a network share), or to test.
	CaseInsensitive bool
	// ReplaceForeign lets CopyGuarded replace an object that is already at
	// a guarded key with other bytes; without it such an object is left
	// alone and the record rejected.
	ReplaceForeign bool
}

// Defaults of Options.
const (
	DefaultConcurrency      = 16
	DefaultMaxInflight      = 256 << 20
	DefaultPartSize         = 64 << 20
	MinPartSize             = 5 << 20
	DefaultChecksumAttempts = 3
)

// Outcome is what happened to one object.
type Outcome int

// Outcomes of Copy.
const (
	// Copied means the object's bytes were written and verified.
	Copied Outcome = iota + 1
	// Skipped means the target already held the object, verified by size
	// and checksum; nothing was written.
	Skipped
	// Rejected means the object was not stored; Result.Reason says why.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Copied:
		return "copied"
	case Skipped:
		return "skipped"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result reports the copy of one record.
type Result struct {
	Outcome Outcome
	// File is the decoded record (zero when it could not be decoded).
	File record.File
	// Key is the object's key in the target ("" when rejected before one
	// was made).
	Key string
	// Reason says why the object was rejected, for users: it names the
	// object and never holds secrets.
	Reason string
}

// target is one kind of object store.
type target interface {
	// String names the target without secrets.
	String() string
	// prepare creates the bucket or directory when missing.
	prepare(ctx context.Context) error
	// keyProblem says why key cannot be stored exactly ("" when it can).
	keyProblem(key string) string
	// metadataProblem says why f's metadata cannot be stored ("" when it
	// can).
	metadataProblem(f record.File) string
	// holds reports whether key already holds f's bytes (same size and
	// checksum) and metadata (same), and whether anything is there at all
	// (present).
	holds(ctx context.Context, key string, f record.File) (same, present bool, err error)
	// comparison is how the target tells keys apart; it is known once
	// prepare has run.
	comparison() KeyComparison
	// put stores the bytes read from v under key with f's metadata. It must
	// not make the object visible unless v reached its end verified. It
	// returns what the target says it stored, when it says.
	put(ctx context.Context, key string, f record.File, v *verifier) (stored, error)
	// check confirms after put that key holds f's size and checksum, from
	// what put returned or by looking.
	check(ctx context.Context, key string, f record.File, st stored) error
	// refusal says why err means the target refuses this object for good
	// (a name or metadata it cannot hold); ok is false otherwise.
	refusal(err error) (reason string, ok bool)
	// mismatch reports whether err is the target refusing bytes that do
	// not match the checksums sent with them.
	mismatch(err error) bool
	// inspect compares the objects under keys with files, writing
	// nothing, at most concurrency requests or reads at a time (see
	// Store.Inspect).
	inspect(ctx context.Context, keys []string, files []record.File, concurrency int) ([]Verdict, error)
	// remove deletes the object at key; an absent object is no error.
	remove(ctx context.Context, key string) error
}

// stored is what a target reported about an object it just stored.
type stored struct {
	known  bool   // the target reported the fields below
	size   int64  // bytes stored
	crc32c string // base64 of the full-object CRC-32C the target computed
	etag   string
}

// lister is implemented by targets that can tell which of many keys exist
// with one request, cheaper than asking for each.
type lister interface {
	// existing returns the keys of keys that exist.
	existing(ctx context.Context, keys []string) (map[string]bool, error)
}

// Store copies file records into one target.
type Store struct {
	t     target
	opts  Options
	count *semaphore.Weighted
	bytes *semaphore.Weighted
}

// Open returns a Store for the target rawURL names. It checks the URL and
// the credentials it needs but does not contact the target; Prepare does.
func Open(rawURL string, opts Options) (*Store, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight
	}
	if opts.PartSize <= 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, fmt.Errorf("the part size must be at least %d MiB (S3's minimum)", MinPartSize>>20)
	}
	if opts.Retry.Attempts == 0 {
		opts.Retry = retry.Default
	}
	if opts.ChecksumAttempts <= 0 {
		opts.ChecksumAttempts = DefaultChecksumAttempts
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, secrets included
		}
		return nil, fmt.Errorf("object store URL %q: %v", redactURL(rawURL), err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("object store URL %q carries credentials, which are not used: "+
			"give S3 credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "+
			"or a profile in ~/.aws/credentials, and leave them out of the URL", redactURL(rawURL))
	}
	var t target
	switch u.Scheme {
	case "s3":
		t, err = newS3(u, opts.PartSize)
	case "file":
		t, err = newDir(u)
	default:
		err = fmt.Errorf("object store URL %q: want s3://BUCKET?endpoint=... or file:///PATH", redactURL(rawURL))
	}
	if err != nil {
		return nil, err
	}
	return &Store{t: t, opts: opts, count: semaphore.NewWeighted(int64(opts.Concurrency)), bytes: semaphore.NewWeighted(opts.MaxInflight)}, nil
}

// redactURL replaces a user:password part, should a URL carry one, with
// REDACTED — also in a URL that does not parse: everything of the
// authority (after "://", before the next "/", "?" or "#") up to its last
// "@" goes. A query or fragment holding an "@" (an endpoint with
// credentials, perhaps escaped) is replaced whole.
func redactURL(raw string) string {
	head, tail := raw, ""
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		head, tail = raw[:i], raw[i:]
		if strings.Contains(tail, "@") || strings.Contains(strings.ToLower(tail), "%40") {
			tail = tail[:1] + "REDACTED"
		}
	}
	auth := 0
	if i := strings.Index(head, "://"); i >= 0 {
		auth = i + 3
	}
	end := strings.IndexByte(head[auth:], '/')
	if end < 0 {
		end = len(head) - auth
	}
	if at := strings.LastIndex(head[auth:auth+end], "@"); at >= 0 {
		head = head[:auth] + "REDACTED" + head[auth+at:]
	}
	return head + tail
}

// String names the target, without secrets ("s3://files at http://127.0.0.1:9000").
func (s *Store) String() string { return s.t.String() }

// Prepare creates the bucket or directory when it does not exist and
// checks that it can be written.
func (s *Store) Prepare(ctx context.Context) error {
	if err := s.t.prepare(ctx); err != nil {
		return fmt.Errorf("preparing %s: %w", s.t, err)
	}
	return nil
}

// Key returns the target key of an object name.
func (s *Store) Key(name string) string { return s.opts.Prefix + name }

// Comparison is how the target tells keys apart: what the target is
// (directories are probed by Prepare), or CaseInsensitive when
// Options.CaseInsensitive says so. Before Prepare, a directory counts as
// Exact.
func (s *Store) Comparison() KeyComparison {
	if s.opts.CaseInsensitive {
		return CaseInsensitive
	}
	return s.t.comparison()
}

// Fold returns key as the target identifies it: two keys with the same
// Fold are one object there (see KeyComparison). Call it after Prepare.
func (s *Store) Fold(key string) string { return foldKey(s.Comparison(), key) }

// Problem says why f cannot be stored in the target as it is — its key or
// its metadata — in the words of the reason Copy rejects it with; "" when
// nothing refuses it before an upload is tried (the server may still
// refuse it).
func (s *Store) Problem(f record.File) string {
	key := s.Key(f.Name)
	if p := s.t.keyProblem(key); p != "" {
		return fmt.Sprintf("object %q cannot be stored as %q in %s: %s", f.Name, key, s.t, p)
	}
	if p := s.t.metadataProblem(f); p != "" {
		return fmt.Sprintf("object %q: its metadata cannot be stored in %s: %s", f.Name, s.t, p)
	}
	return ""
}

// Copy copies the objects of recs, concurrently within the Store's limits,
// and returns one Result per record. It returns an error only when the
// batch as a whole cannot go on (a target that stays unreachable, access
// denied); the error is marked retryable (retry.Mark) when trying the
// batch again later may help. Objects copied before such an error stay
// copied and are skipped by the next attempt.
func (s *Store) Copy(ctx context.Context, recs []record.Record) ([]Result, error) {
	return s.CopyGuarded(ctx, recs, nil)
}

// CopyGuarded is Copy, except that an object already at the key of a
// record with guard[i] set, holding other bytes (or metadata), is left
// alone and the record rejected with the reason — unless
// Options.ReplaceForeign. The caller guards the keys it has no record of
// writing: what is there was put by someone else. guard may be nil.
func (s *Store) CopyGuarded(ctx context.Context, recs []record.Record, guard []bool) ([]Result, error) {
	return s.CopyDecoded(ctx, recs, nil, guard)
}

// CopyDecoded is CopyGuarded for a caller that decoded the records
// already: files[i], when not nil, is record.FileFrom(recs[i]), and is not
// decoded again. files may be nil.
func (s *Store) CopyDecoded(ctx context.Context, recs []record.Record, files []*record.File, guard []bool) ([]Result, error) {
	results := make([]Result, len(recs))
	// Which keys exist at all, in one listing: a fresh copy then asks
	// nothing per object before uploading it.
	var exists map[string]bool
	if l, ok := s.t.(lister); ok {
		keys := make([]string, 0, len(recs))
		for _, r := range recs {
			keys = append(keys, s.Key(r.Key))
		}
		lctx, w := retry.Watch(ctx, s.opts.Retry.Timeout, s.opts.Retry.TimeoutOption)
		exists, _ = l.existing(lctx, keys) // on error (or silence), look at each object instead
		w.Stop()
	}
	// Largest first: the batch is done when its last object is, so the
	// long copies should not start last. Slots are taken here, in that
	// order, first come first served with the other batches.
	order := make([]int, len(recs))
	sizes := make([]int64, len(recs))
	for i, r := range recs {
		order[i] = i
		if v, ok := r.Fields[record.FileFieldSize]; ok {
			sizes[i] = v.IntValue()
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sizes[b], sizes[a]) })
	g, gctx := errgroup.WithContext(ctx)
	for _, i := range order {
		weight := min(max(sizes[i], 1), s.opts.MaxInflight)
		if err := s.bytes.Acquire(gctx, weight); err != nil {
			break // gctx ended: g.Wait reports why
		}
		if err := s.count.Acquire(gctx, 1); err != nil {
			s.bytes.Release(weight)
			break
		}
		g.Go(func() error {
			defer s.bytes.Release(weight)
			defer s.count.Release(1)
			absent := exists != nil && !exists[s.Key(recs[i].Key)]
			guarded := i < len(guard) && guard[i] && !s.opts.ReplaceForeign
			var f *record.File
			if i < len(files) {
				f = files[i]
			}
			r, err := s.copyOne(gctx, recs[i], f, absent, guarded)
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return results, nil
}

// copyOne copies one record, holding a slot of the Store's limits. decoded
// is its file when the caller decoded it already (nil: decode it here).
// absent says a listing just now found no object under its key, so the
// first attempt need not look for one; guarded says another object there
// must not be replaced.
func (s *Store) copyOne(ctx context.Context, rec record.Record, decoded *record.File, absent, guarded bool) (Result, error) {
	var f record.File
	if decoded != nil {
		f = *decoded
	} else {
		var err error
		if f, err = record.FileFrom(rec); err != nil {
			return Result{Outcome: Rejected, Reason: err.Error()}, nil
		}
	}
	res := Result{File: f, Key: s.Key(f.Name)}
	reject := func(reason string) (Result, error) {
		res.Outcome, res.Reason = Rejected, reason
		return res, nil
	}
	if p := s.Problem(f); p != "" {
		return reject(p)
	}
	if rec.Open == nil {
		return reject(fmt.Sprintf("object %q: the record carries no content", f.Name))
	}

	what := fmt.Sprintf("copying object %q to %s", f.Name, s.t)
	retries := s.opts.Retry.Start(what)
	var mismatches int
	for {
		outcome, err := s.attempt(ctx, rec, res.Key, f, absent, guarded)
		absent = false // a failed attempt may have stored the object after all
		var foreign *foreignError
		if errors.As(err, &foreign) {
			return reject(fmt.Sprintf("object %q: %s already holds %s that baasmigrate did not write; it is left alone "+
				"(remove it, give --objects-prefix, or pass --objects-overwrite to replace it)", f.Name, s.t, foreign.what))
		}
		if err == nil {
			res.Outcome = outcome
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return reject(fmt.Sprintf("object %q could not be read: %v", f.Name, err))
		case isMismatch(err) || s.t.mismatch(err):
			if mismatches++; mismatches >= s.opts.ChecksumAttempts {
				return reject(fmt.Sprintf("object %q: checksum mismatch in each of %d copies; last: %v", f.Name, mismatches, err))
			}
			if err := retries.Again(ctx, err); err != nil {
				return res, err
			}
		default:
			if reason, ok := s.t.refusal(err); ok {
				return reject(fmt.Sprintf("object %q cannot be stored as %q in %s: %s", f.Name, res.Key, s.t, reason))
			}
			// A full or read-only disk fails the run at once, saying so.
			if failure.Classify(err) == failure.Permanent {
				return res, fmt.Errorf("%s: %w", what, failure.Advise(err, s.where()))
			}
			if err := retries.Retry(ctx, err); err != nil {
				return res, retry.Describe(what, err)
			}
		}
	}
}

// where names the target in advice about its disk.
func (s *Store) where() string {
	if _, ok := s.t.(*dirTarget); ok {
		return "the target directory"
	}
	return "the target"
}

// foreignError is an attempt finding, at a guarded key, something other
// than the object.
type foreignError struct{ what string }

func (e *foreignError) Error() string { return e.what + " is already at the key" }

// attempt copies one object once: skip when the target holds it already
// (unless it is known to be absent), else — unless guarded and something
// else is there — stream, upload and confirm.
func (s *Store) attempt(ctx context.Context, rec record.Record, key string, f record.File, absent, guarded bool) (Outcome, error) {
	// The target's clock (--target-timeout) runs except while the source
	// is opened or read.
	ctx, w := retry.Watch(ctx, s.opts.Retry.Timeout, s.opts.Retry.TimeoutOption)
	defer w.Stop()
	if !absent {
		same, present, err := s.t.holds(ctx, key, f)
		if err != nil {
			return 0, fmt.Errorf("looking at the target object: %w", w.Err(err))
		}
		if same {
			return Skipped, nil
		}
		if present && guarded {
			return 0, &foreignError{fmt.Sprintf("%q, with other bytes or metadata", key)}
		}
	}
	release := w.Hold()
	rc, err := rec.Open(ctx)
	release()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	v := newVerifier(sourceReader{rc, w}, f)
	st, err := s.t.put(ctx, key, f, v)
	if err != nil {
		return 0, w.Err(err)
	}
	if !v.verified() {
		return 0, fmt.Errorf("the upload of %q completed before its bytes were verified", key)
	}
	if err := s.t.check(ctx, key, f, st); err != nil {
		return 0, w.Err(err)
	}
	return Copied, nil
}

// sourceReader holds the target's watchdog while the source is read.
type sourceReader struct {
	r io.Reader
	w *retry.Watchdog
}

func (r sourceReader) Read(p []byte) (int, error) {
	r.w.Hold()
	defer r.w.Alive()
	return r.r.Read(p)
}
