// Package amplifystorage extracts the objects of an AWS Amplify app's S3
// bucket (Amplify Storage) as file records, registered as the files
// extractor of --source amplify.
//
// # How the bucket is read
//
// The bucket is one stream. Plan lists its keys once (keys only, 1,000 a
// request) and cuts them, in S3's listing order (the bytes of the UTF-8
// key), into at most n ranges of about equal count, keeping only a bounded
// sample of keys in memory. A partition covers the keys after Start
// (exclusive; "" from the first) up to End (inclusive; "" to the last),
// so that each bound is a key S3 listed and a listing can start after it
// (ListObjectsV2 StartAfter). Read lists a range a page at a time and
// reads each object's metadata with a HEAD request. A record's cursor is
// its key: a read resumed after a cursor yields exactly the objects that
// follow, and records come in byte order of keys, as plan and verify merge
// files.
//
// # Records
//
// Key and Name are the object's key, exactly: Amplify's access levels are
// prefixes of it (public/, protected/{identityId}/, private/{identityId}/)
// and stay in the name. Bucket is the bucket's name. From the HEAD
// response: size, Content-Type, Cache-Control, Content-Encoding,
// Content-Disposition, Content-Language, the storage class, and the user
// metadata (x-amz-meta-* headers) as custom metadata under their names
// without the prefix, lowercased as S3 stores them, and their values as
// stored (non-ASCII values, which S3 sends RFC 2047-encoded, are decoded
// by minio-go); Last-Modified is the
// update time (S3 keeps no creation time). An eTag that is the MD5 of the
// bytes (a single upload without SSE-KMS or SSE-C encryption) becomes the
// record's MD5, which every copy is checked against; for any other eTag
// (uploads in parts, "<md5>-<parts>"; encrypted objects) the extractor
// reads the object once while listing and records the MD5 of its bytes,
// unless --amplify-compute-md5=false (then size only). An object deleted
// between the listing and its HEAD is left out, as a listing made a
// moment later would. A record's bytes are read of the version its HEAD
// described (If-Match its eTag): an object replaced since fails the copy
// (s3objects.ErrChanged), and a new run, or sync's next poll, reads the
// new version whole, so that no copy holds the metadata of one version
// and the bytes of another.
//
// Credentials come from the AWS SDK's default chain (extractors/amplify).
package amplifystorage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/amplify"
	"github.com/baasmigrate/baasmigrate/extractors/s3objects"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// ComputeMD5Option decides whether objects whose eTag is no MD5 of their
// bytes are read once more to compute one.
var ComputeMD5Option = plugin.Option{
	Name: "amplify-compute-md5",
	Help: "Read objects whose eTag is no MD5 of their bytes (uploaded in parts, or encrypted with SSE-KMS or SSE-C) once more " +
		"to compute their MD5, so that copies and verify check their bytes; false checks their size only.",
	Type:    plugin.Switch,
	Default: "true",
}

// pageSize is the number of keys listed per request (S3's maximum).
const pageSize = 1000

// awsHost names AWS's own S3 endpoint in Source.
const awsHost = "s3.amazonaws.com"

func init() {
	extractors.Register(extractors.Spec{
		Source: amplify.Source,
		Name:   "amplify-storage",
		Kind:   record.KindFile,
		Help:   "Every object of an Amplify app's S3 bucket with its metadata, read through the S3 API.",
		Options: []plugin.Option{
			amplify.RegionOption, amplify.S3EndpointOption, amplify.S3BucketOption, ComputeMD5Option,
			retry.AttemptsOption, retry.BackoffOption, retry.SourceTimeoutOption,
		},
		New: func(ctx context.Context, cfg plugin.Config) (extractors.Extractor, error) { return New(ctx, cfg) },
	})
}

// Extractor reads one bucket. It is safe for concurrent use.
type Extractor struct {
	b          *s3objects.Bucket
	host       string // the endpoint's host, for Source
	computeMD5 bool
}

var (
	_ extractors.Extractor  = (*Extractor)(nil)
	_ extractors.Sizer      = (*Extractor)(nil)
	_ extractors.Counter    = (*Extractor)(nil)
	_ extractors.Bucketed   = (*Extractor)(nil)
	_ extractors.KeyOrderer = (*Extractor)(nil)
	_ extractors.Configured = (*Extractor)(nil)
)

// New builds a client of the bucket cfg names (--amplify-s3-bucket,
// required), at --amplify-s3-endpoint or AWS's endpoint for --aws-region,
// with the default credential chain's credentials.
func New(ctx context.Context, cfg plugin.Config) (*Extractor, error) {
	bucket := cfg.String(amplify.S3BucketOption.Name)
	if bucket == "" {
		return nil, fmt.Errorf("no S3 bucket to copy files from: pass --%s (or %s), the bucket of the app's storage",
			amplify.S3BucketOption.Name, amplify.S3BucketOption.Env[0])
	}
	e := &Extractor{computeMD5: true}
	var err error
	if cfg.String(ComputeMD5Option.Name) != "" {
		if e.computeMD5, err = cfg.Bool(ComputeMD5Option.Name); err != nil {
			return nil, err
		}
	}
	policy, err := retry.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := amplify.Config(ctx, cfg)
	if err != nil {
		return nil, err
	}
	client, host, err := amplify.S3Client(ctx, cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = awsHost
	}
	e.host = host
	e.b = &s3objects.Bucket{Client: client, Name: bucket, Endpoint: host, Listed: "the bucket's listing", Policy: policy}
	return e, nil
}

// Bucket is the bucket read.
func (e *Extractor) Bucket() string { return e.b.Name }

// Prefix is "": the whole bucket is read.
func (e *Extractor) Prefix() string { return "" }

// KeyOrder is byte order, the order S3 lists keys in.
func (e *Extractor) KeyOrder() record.KeyOrder { return record.ByteOrder }

// Source names the endpoint and bucket: "amplify-s3:s3.amazonaws.com/BUCKET"
// for AWS (bucket names are global), "amplify-s3:HOST:PORT/BUCKET" for
// another endpoint.
func (e *Extractor) Source() string { return "amplify-s3:" + e.host + "/" + e.b.Name }

// RunSettings are the settings that change what records say: whether MD5s
// of objects whose eTag is none are computed.
func (e *Extractor) RunSettings() map[string]string {
	return map[string]string{ComputeMD5Option.Name: strconv.FormatBool(e.computeMD5)}
}

// Close releases nothing: the client holds idle connections only.
func (e *Extractor) Close() error { return nil }

func (e *Extractor) streamName() string { return "s3://" + e.b.Name }

// list calls fn for every object of the bucket after the key after (""
// from the first) in listing order, a page of up to pageSize keys at a
// time, until fn returns false or the listing ends. Failed listings are
// retried from the last key listed.
func (e *Extractor) list(ctx context.Context, what, after string, fn func(minio.ObjectInfo) (bool, error)) error {
	for {
		var page []minio.ObjectInfo
		err := retry.Do(ctx, e.b.Policy, what, func(ctx context.Context) error {
			page = page[:0]
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for o := range e.b.Client.ListObjects(lctx, e.b.Name, minio.ListObjectsOptions{Recursive: true, StartAfter: after, MaxKeys: pageSize}) {
				if o.Err != nil {
					return e.listError(o.Err)
				}
				page = append(page, o)
				if len(page) == pageSize {
					break
				}
			}
			return nil
		})
		if err != nil {
			return retry.Describe(what, err)
		}
		for _, o := range page {
			more, err := fn(o)
			if err != nil || !more {
				return err
			}
			after = o.Key
		}
		if len(page) < pageSize {
			return nil
		}
	}
}

// listError names the bucket in a listing error; a missing bucket is not
// retried.
func (e *Extractor) listError(err error) error {
	if minio.ToErrorResponse(err).Code == "NoSuchBucket" {
		return retry.Mark(fmt.Errorf("%s has no bucket %q (see --%s)", e.b.Endpoint, e.b.Name, amplify.S3BucketOption.Name), false)
	}
	return fmt.Errorf("listing bucket %s at %s: %w", e.b.Name, e.b.Endpoint, err)
}

// Plan returns the bucket as one stream split into at most partitions
// ranges of keys of about equal count. readTime is ignored: S3 serves
// only the present.
func (e *Extractor) Plan(ctx context.Context, partitions int, _ time.Time) ([]extractors.Stream, error) {
	var points []string
	if partitions > 1 {
		// Every step-th key, the step doubled (and every other sample
		// dropped) whenever the sample grows past 8 per partition.
		var sample []string
		var n, step int64 = 0, 1
		err := e.list(ctx, "planning "+e.Source(), "", func(o minio.ObjectInfo) (bool, error) {
			n++
			if n%step == 0 {
				sample = append(sample, o.Key)
				if len(sample) > 8*partitions {
					kept := sample[:0]
					for i := 1; i < len(sample); i += 2 {
						kept = append(kept, sample[i])
					}
					sample, step = kept, step*2
				}
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		// partitions-1 sampled keys, evenly spread: each ends a range.
		for i := 1; i < partitions && len(sample) > 0; i++ {
			k := sample[min(len(sample)-1, i*len(sample)/partitions)]
			if len(points) == 0 || points[len(points)-1] < k {
				points = append(points, k)
			}
		}
	}
	return []extractors.Stream{extractors.RangeStream(e.streamName(), record.KindFile, points)}, nil
}

// Count returns the number of objects in s's partitions.
func (e *Extractor) Count(ctx context.Context, s extractors.Stream) (int64, error) {
	n, _, err := e.Size(ctx, s)
	return n, err
}

// Size returns the number of objects in s's partitions and their bytes, as
// the listing says.
func (e *Extractor) Size(ctx context.Context, s extractors.Stream) (objects, bytes int64, err error) {
	for _, p := range s.Partitions {
		err := e.list(ctx, "sizing "+e.Source(), p.Start, func(o minio.ObjectInfo) (bool, error) {
			if p.End != "" && o.Key > p.End {
				return false, nil
			}
			objects, bytes = objects+1, bytes+o.Size
			return true, nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return objects, bytes, nil
}

// Read emits the objects of p after the key after, in listing order.
func (e *Extractor) Read(ctx context.Context, p extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	if after < p.Start {
		after = p.Start
	}
	what := fmt.Sprintf("reading partition %s of %s", p.ID, e.Source())
	var emitErr error
	err := e.list(ctx, what, after, func(o minio.ObjectInfo) (bool, error) {
		if p.End != "" && o.Key > p.End {
			return false, nil
		}
		rec, ok, err := e.toRecord(ctx, o.Key)
		if err != nil || !ok {
			return err == nil, err
		}
		if err := emit(rec); err != nil {
			emitErr = err
			return false, nil
		}
		return true, nil
	})
	if emitErr != nil {
		return emitErr // unchanged
	}
	return err
}

// toRecord reads the object's metadata (and, when its eTag is no MD5 and
// MD5s are computed, its bytes); ok is false when the object is gone.
func (e *Extractor) toRecord(ctx context.Context, key string) (rec record.Record, ok bool, err error) {
	var info minio.ObjectInfo
	what := fmt.Sprintf("reading the metadata of %s/%s", e.b.Name, key)
	err = retry.Do(ctx, e.b.Policy, what, func(ctx context.Context) error {
		var err error
		info, err = e.b.Client.StatObject(ctx, e.b.Name, key, minio.StatObjectOptions{})
		if err != nil {
			return e.b.ReadError(key, err)
		}
		return nil
	})
	var gone *s3objects.GoneError
	if errors.As(err, &gone) {
		return record.Record{}, false, nil
	}
	if err != nil {
		return record.Record{}, false, retry.Describe(what, err)
	}
	f := fileOf(e.b.Name, info)
	if f.MD5 == nil && e.computeMD5 {
		sum, size, err := e.b.Digest(ctx, key)
		switch {
		case errors.As(err, &gone):
			return record.Record{}, false, nil
		case err != nil:
			return record.Record{}, false, err
		}
		f.MD5, f.Size = sum, size
	}
	return record.Record{
		Kind: record.KindFile, Key: key, UpdateTime: f.Updated, Fields: f.Fields(), Cursor: key,
		Open: func(ctx context.Context) (io.ReadCloser, error) { return e.b.OpenVersion(ctx, key, info.ETag) },
	}, true, nil
}

// fileOf maps a HEAD response to a file record of bucket (see the package
// comment).
func fileOf(bucket string, info minio.ObjectInfo) record.File {
	h := info.Metadata
	f := record.File{
		Bucket: bucket, Name: info.Key, Size: info.Size, ContentType: info.ContentType,
		CacheControl: h.Get("Cache-Control"), ContentEncoding: h.Get("Content-Encoding"),
		ContentDisposition: h.Get("Content-Disposition"), ContentLanguage: h.Get("Content-Language"),
		StorageClass: info.StorageClass, Updated: info.LastModified.UTC(),
	}
	if h.Get("X-Amz-Server-Side-Encryption") != "aws:kms" && h.Get("X-Amz-Server-Side-Encryption") != "aws:kms:dsse" &&
		h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") == "" {
		f.MD5 = s3objects.ETagMD5(info.ETag)
	}
	for k, vs := range h {
		name, ok := cutPrefixFold(k, "x-amz-meta-")
		if !ok || len(vs) == 0 {
			continue
		}
		if f.Metadata == nil {
			f.Metadata = map[string]string{}
		}
		f.Metadata[strings.ToLower(name)] = strings.Join(vs, ",")
	}
	return f
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
