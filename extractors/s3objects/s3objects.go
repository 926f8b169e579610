// Package s3objects reads the objects of an S3-compatible bucket for the
// extractors whose file bytes sit behind S3 (Supabase Storage's S3
// endpoint, an Amplify app's bucket): streams that resume at the byte
// where a read broke (of the same version of the object), MD5 digests of
// objects whose eTag is none, the MD5 an eTag holds, and GoneError for an
// object listed but no longer there.
//
// It holds no source's options: each extractor builds its *minio.Client
// (NewPathClient for an endpoint served under a path) and names its
// options in its own errors.
package s3objects

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Bucket reads objects of one bucket. It is safe for concurrent use.
type Bucket struct {
	Client *minio.Client
	// Name is the bucket's.
	Name string
	// Endpoint names the endpoint in messages, without credentials.
	Endpoint string
	// Listed says where objects were listed, for GoneError ("storage.objects").
	Listed string
	// Policy retries failed requests and broken reads.
	Policy retry.Policy
}

// GoneError says an object that was listed is not in the bucket (deleted
// after it was listed, or its bytes lost). It matches fs.ErrNotExist.
type GoneError struct{ Bucket, Name, Listed string }

func (e *GoneError) Error() string {
	return fmt.Sprintf("%s/%s is listed in %s but not found through the S3 endpoint (deleted after it was listed?)", e.Bucket, e.Name, e.Listed)
}

// Is makes GoneError match fs.ErrNotExist.
func (e *GoneError) Is(target error) bool { return target == fs.ErrNotExist }

// ETagMD5 returns the MD5 an eTag holds (quoted or not), or nil when it
// holds none (an upload in parts: "<md5>-<parts>"; an encrypted object's).
func ETagMD5(etag string) []byte {
	etag = strings.TrimPrefix(strings.TrimSuffix(etag, `"`), `"`)
	etag = strings.TrimPrefix(etag, `W/"`)
	if len(etag) != 32 {
		return nil
	}
	b, err := hex.DecodeString(etag)
	if err != nil {
		return nil
	}
	return b
}

// Get starts reading the object key from byte offset; it fails with a
// GoneError when the endpoint does not have it.
func (b *Bucket) Get(ctx context.Context, key string, offset int64) (*minio.Object, error) {
	obj, _, err := b.get(ctx, key, offset, "")
	return obj, err
}

// get is Get of the version whose eTag is etag ("" for the current one),
// also returning the eTag of the version read. Another version fails with
// ErrChanged.
func (b *Bucket) get(ctx context.Context, key string, offset int64, etag string) (*minio.Object, string, error) {
	opts := minio.GetObjectOptions{}
	if offset > 0 {
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, "", err
		}
	}
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, "", err
		}
	}
	obj, err := b.Client.GetObject(ctx, b.Name, key, opts)
	if err != nil {
		return nil, "", b.ReadError(key, err)
	}
	// GetObject sends nothing until the first read: Stat sends the request.
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, "", b.ReadError(key, err)
	}
	return obj, info.ETag, nil
}

// ErrChanged is the error of a read that broke and could not resume
// because the object was replaced meanwhile: its first bytes were of
// another version. It is retryable: a new read from the start reads the
// new version whole.
var ErrChanged = retry.Mark(errors.New("the object was replaced while it was read"), true)

// ReadError names the object in err, and turns a missing object into a
// GoneError.
func (b *Bucket) ReadError(key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return &GoneError{Bucket: b.Name, Name: key, Listed: b.Listed}
	case "PreconditionFailed":
		return fmt.Errorf("reading %s/%s through %s: %w", b.Name, key, b.Endpoint, ErrChanged)
	case "NoSuchBucket":
		return fmt.Errorf("reading %s/%s through %s: the S3 endpoint has no bucket %q: %w", b.Name, key, b.Endpoint, b.Name, err)
	}
	return fmt.Errorf("reading %s/%s through %s: %w", b.Name, key, b.Endpoint, err)
}

// Digest reads the object's bytes and returns their MD5 and length.
func (b *Bucket) Digest(ctx context.Context, key string) ([]byte, int64, error) {
	var (
		sum  []byte
		size int64
	)
	what := fmt.Sprintf("computing the MD5 of %s/%s", b.Name, key)
	err := retry.Do(ctx, b.Policy, what, func(ctx context.Context) error {
		obj, err := b.Get(ctx, key, 0)
		if err != nil {
			return err
		}
		defer obj.Close()
		h := md5.New()
		n, err := io.Copy(h, aliveReader{ctx, obj})
		if err != nil {
			return b.ReadError(key, err)
		}
		sum, size = h.Sum(nil), n
		return nil
	})
	return sum, size, retry.Describe(what, err)
}

// aliveReader tells the retry watchdog that bytes are coming.
type aliveReader struct {
	ctx context.Context
	r   io.Reader
}

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		retry.Alive(a.ctx)
	}
	return n, err
}

// Open streams the object's bytes; a read that breaks resumes at the byte
// where it stopped, of the same version (If-Match its eTag), under the
// bucket's retry policy. A missing object is a GoneError; one replaced
// before a resume fails the read with ErrChanged.
func (b *Bucket) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return b.OpenVersion(ctx, key, "")
}

// OpenVersion is Open of the version whose eTag is etag, as a HEAD or a
// listing described it ("" for the current one): a record's metadata and
// bytes are then of one version. When the object has been replaced since,
// it fails with ErrChanged, naming the object. That error stays retryable:
// a new attempt of the same record finds the same, but the run fails
// without checkpointing the record, and a new run (or sync's next poll)
// reads the object anew, of its new version.
func (b *Bucket) OpenVersion(ctx context.Context, key, etag string) (io.ReadCloser, error) {
	r := &objectReader{b: b, ctx: ctx, key: key, etag: etag, retries: b.Policy.Start(fmt.Sprintf("reading %s/%s", b.Name, key))}
	if err := r.reopen(); err != nil {
		if etag != "" && errors.Is(err, ErrChanged) {
			err = fmt.Errorf("%s/%s was replaced after its metadata was read (its eTag is no longer %s); "+
				"a new run reads the new version: %w", b.Name, key, etag, err)
		}
		return nil, err
	}
	return r, nil
}

type objectReader struct {
	b       *Bucket
	ctx     context.Context
	key     string
	offset  int64
	etag    string // of the version being read; a resumed read asks for it
	obj     *minio.Object
	retries *retry.Backoff
}

func (r *objectReader) reopen() error {
	for {
		obj, etag, err := r.b.get(r.ctx, r.key, r.offset, r.etag)
		if err == nil {
			if r.obj != nil {
				r.obj.Close()
			}
			r.obj, r.etag = obj, etag
			return nil
		}
		var gone *GoneError
		if errors.As(err, &gone) || errors.Is(err, ErrChanged) {
			return err
		}
		if err := r.retries.Retry(r.ctx, err); err != nil {
			return err
		}
	}
}

func (r *objectReader) Read(p []byte) (int, error) {
	for {
		n, err := r.obj.Read(p)
		r.offset += int64(n)
		if err == nil || err == io.EOF {
			return n, err
		}
		if n > 0 {
			return n, nil // the next Read fails again and resumes
		}
		err = r.b.ReadError(r.key, err)
		if !retry.IsRetryable(err) {
			return 0, err
		}
		if err := r.retries.Retry(r.ctx, err); err != nil {
			return 0, err
		}
		if err := r.reopen(); err != nil {
			return 0, err
		}
	}
}

func (r *objectReader) Close() error { return r.obj.Close() }
