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
// AWS_SESSION_TOKEN), or the shared credentials file; with an endpoint,
// requests are path-style. The bucket (or directory) is created when
// missing.
//
// # Keys
//
// An object's target key is Options.Prefix followed by its name, unchanged.
// A name the target cannot hold exactly is rejected with the reason, never
// rewritten: for a directory, names with empty, "." or ".." segments (which
// includes a leading or trailing "/"), segments over 255 bytes, or NUL; for
// S3, keys over 1,024 bytes and whatever the server refuses (MinIO refuses
// "." and ".." segments too). A directory target cannot be escaped: files
// are created through an os.Root, which refuses "..", absolute names and
// symbolic links that lead outside.
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
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

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
	// retry.Default).
	Retry retry.Policy
	// ChecksumAttempts is how many times an object whose bytes do not match
	// its checksum is copied before it is rejected (default 3).
	ChecksumAttempts int
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
	File File
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
	metadataProblem(f File) string
	// holds reports whether key already holds f's bytes (same size and
	// checksum) and metadata.
	holds(ctx context.Context, key string, f File) (bool, error)
	// put stores the bytes read from v under key with f's metadata. It must
	// not make the object visible unless v reached its end verified. It
	// returns what the target says it stored, when it says.
	put(ctx context.Context, key string, f File, v *verifier) (stored, error)
	// check confirms after put that key holds f's size and checksum, from
	// what put returned or by looking.
	check(ctx context.Context, key string, f File, st stored) error
	// refusal says why err means the target refuses this object for good
	// (a name or metadata it cannot hold); ok is false otherwise.
	refusal(err error) (reason string, ok bool)
	// transient reports whether err is worth retrying.
	transient(err error) bool
	// mismatch reports whether err is the target refusing bytes that do
	// not match the checksums sent with them.
	mismatch(err error) bool
	// inspect compares the objects under keys with files, writing
	// nothing, at most concurrency requests or reads at a time (see
	// Store.Inspect).
	inspect(ctx context.Context, keys []string, files []File, concurrency int) ([]Verdict, error)
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
		return nil, fmt.Errorf("object store URL %q: %v", redactURL(rawURL), err)
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

// redactURL drops a user:password part, should a URL carry one.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return raw
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

// Problem says why f cannot be stored in the target as it is — its key or
// its metadata — in the words of the reason Copy rejects it with; "" when
// nothing refuses it before an upload is tried (the server may still
// refuse it).
func (s *Store) Problem(f File) string {
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
	results := make([]Result, len(recs))
	// Which keys exist at all, in one listing: a fresh copy then asks
	// nothing per object before uploading it.
	var exists map[string]bool
	if l, ok := s.t.(lister); ok {
		keys := make([]string, 0, len(recs))
		for _, r := range recs {
			keys = append(keys, s.Key(r.Key))
		}
		exists, _ = l.existing(ctx, keys) // on error, look at each object instead
	}
	// Largest first: the batch is done when its last object is, so the
	// long copies should not start last. Slots are taken here, in that
	// order, first come first served with the other batches.
	order := make([]int, len(recs))
	sizes := make([]int64, len(recs))
	for i, r := range recs {
		order[i] = i
		if v, ok := r.Fields[FieldSize]; ok {
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
			r, err := s.copyOne(gctx, recs[i], absent)
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

// copyOne copies one record, holding a slot of the Store's limits. absent
// says a listing just now found no
// object under its key, so the first attempt need not look for one.
func (s *Store) copyOne(ctx context.Context, rec record.Record, absent bool) (Result, error) {
	f, err := FileFromRecord(rec)
	if err != nil {
		return Result{Outcome: Rejected, Reason: err.Error()}, nil
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

	delay := s.opts.Retry.Initial
	var transient, mismatches int
	for {
		outcome, err := s.attempt(ctx, rec, res.Key, f, absent)
		absent = false // a failed attempt may have stored the object after all
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
		default:
			if reason, ok := s.t.refusal(err); ok {
				return reject(fmt.Sprintf("object %q cannot be stored as %q in %s: %s", f.Name, res.Key, s.t, reason))
			}
			if !s.isTransient(err) {
				return res, fmt.Errorf("copying object %q to %s: %w", f.Name, s.t, err)
			}
			if transient++; transient >= s.opts.Retry.Attempts {
				return res, retry.Mark(fmt.Errorf("copying object %q to %s: gave up after %d attempts: %w", f.Name, s.t, transient, err), true)
			}
		}
		if err := sleep(ctx, jitter(delay)); err != nil {
			return res, err
		}
		if delay *= 2; delay > s.opts.Retry.Max {
			delay = s.opts.Retry.Max
		}
	}
}

// attempt copies one object once: skip when the target holds it already
// (unless it is known to be absent), else stream, upload and confirm.
func (s *Store) attempt(ctx context.Context, rec record.Record, key string, f File, absent bool) (Outcome, error) {
	if !absent {
		same, err := s.t.holds(ctx, key, f)
		if err != nil {
			return 0, fmt.Errorf("looking at the target object: %w", err)
		}
		if same {
			return Skipped, nil
		}
	}
	rc, err := rec.Open(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	v := newVerifier(rc, f)
	st, err := s.t.put(ctx, key, f, v)
	if err != nil {
		return 0, err
	}
	if !v.verified() {
		return 0, fmt.Errorf("the upload of %q completed before its bytes were verified", key)
	}
	if err := s.t.check(ctx, key, f, st); err != nil {
		return 0, err
	}
	return Copied, nil
}

// isTransient says which failures of one object are retried: those the
// source or the target classify so, and network failures.
func (s *Store) isTransient(err error) bool {
	if retry.IsRetryable(err) || s.t.transient(err) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}
