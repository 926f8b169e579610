package objectstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/net/http/httpguts"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// maxS3Key is the longest key S3 accepts, in bytes.
const maxS3Key = 1024

// s3Target is an S3-compatible bucket, through minio-go's low-level Core
// API so that every request streams and carries the checksums we choose.
//
// Payloads are sent unsigned (UNSIGNED-PAYLOAD, or its streaming-trailer
// form): their integrity is carried by Content-MD5 and x-amz-checksum-*
// headers and trailers, which are signed, so hashing every byte with
// SHA-256 as well would only cost CPU.
type s3Target struct {
	core     *minio.Core
	bucket   string
	region   string
	endpoint string
	partSize int64
	started  time.Time
}

func newS3(u *url.URL, partSize int64) (*s3Target, error) {
	bucket := u.Host
	if bucket == "" {
		return nil, fmt.Errorf("object store URL %q names no bucket (s3://BUCKET?...)", redactURL(u.String()))
	}
	if strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("object store URL %q: put a key prefix in --objects-prefix, not in the URL", redactURL(u.String()))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("object store URL %q: its parameters do not parse (%v)", redactURL(u.String()), redactURL(err.Error()))
	}
	for k := range q {
		if k != "endpoint" && k != "region" {
			return nil, fmt.Errorf("object store URL %q: unknown parameter %q (known: endpoint, region)", redactURL(u.String()), k)
		}
	}
	region := q.Get("region")
	host, secure, lookup := "s3.amazonaws.com", true, minio.BucketLookupAuto
	endpoint := q.Get("endpoint")
	if endpoint != "" {
		e, err := url.Parse(endpoint)
		if err != nil || e.Host == "" || (e.Scheme != "http" && e.Scheme != "https") {
			return nil, fmt.Errorf("object store URL: endpoint %q is not an http:// or https:// URL", redactURL(endpoint))
		}
		if e.User != nil {
			return nil, errors.New("object store URL: put S3 credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the endpoint")
		}
		host, secure, lookup = e.Host, e.Scheme == "https", minio.BucketLookupPath
		endpoint = e.Scheme + "://" + e.Host
	} else if region != "" {
		host = "s3." + region + ".amazonaws.com"
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{}, &credentials.FileAWSCredentials{},
	})
	v, err := creds.GetWithContext(nil)
	if err != nil || v.AccessKeyID == "" {
		return nil, fmt.Errorf("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile in ~/.aws/credentials)")
	}
	core, err := minio.NewCore(host, &minio.Options{
		Creds: creds, Secure: secure, Region: region, BucketLookup: lookup,
		TrailingHeaders: true,
		// Bodies are streams and cannot be replayed: the Store retries
		// whole objects instead.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the S3 client for %s: %w", host, err)
	}
	if endpoint == "" {
		endpoint = "https://" + host
	}
	return &s3Target{core: core, bucket: bucket, region: region, endpoint: endpoint, partSize: partSize, started: time.Now()}, nil
}

func (t *s3Target) String() string { return fmt.Sprintf("s3://%s at %s", t.bucket, t.endpoint) }

// preparePolicy bounds the retries of prepare (about 6 s of delays over
// 6 attempts): the Store retries object copies, not this.
var preparePolicy = retry.Policy{Attempts: 6, Initial: 200 * time.Millisecond, Max: 3200 * time.Millisecond}

// prepare creates the bucket when it does not exist, retrying what
// failure.Classify calls transient — throttling, server errors, cut
// connections (one 503 SlowDown must not fail a whole run).
func (t *s3Target) prepare(ctx context.Context) error {
	return retry.Do(ctx, preparePolicy, "", t.prepareOnce)
}

func (t *s3Target) prepareOnce(ctx context.Context) error {
	ok, err := t.core.BucketExists(ctx, t.bucket)
	if err != nil {
		return fmt.Errorf("looking for bucket %q: %w", t.bucket, err)
	}
	if ok {
		return nil
	}
	err = t.core.MakeBucket(ctx, t.bucket, minio.MakeBucketOptions{Region: t.region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		return nil // created meanwhile by another process
	}
	if err != nil {
		return fmt.Errorf("creating bucket %q: %w", t.bucket, err)
	}
	return nil
}

func (t *s3Target) keyProblem(key string) string {
	switch {
	case key == "":
		return "the key is empty"
	case len(key) > maxS3Key:
		return fmt.Sprintf("the key is %d bytes long; S3 keys are at most %d", len(key), maxS3Key)
	case !utf8.ValidString(key):
		return "the key is not valid UTF-8"
	}
	if p := segmentProblem(key); p != "" {
		// AWS keeps such keys apart; MinIO and other stores keeping
		// objects as files do not (see segmentProblem).
		p += ", which S3-compatible stores such as MinIO drop, merge or refuse"
		if merged := strings.Join(strings.FieldsFunc(key, func(r rune) bool { return r == '/' }), "/"); merged != "" && merged != key {
			p += fmt.Sprintf(" (there it would be the object %q)", merged)
		}
		return p
	}
	return ""
}

// metadataProblem refuses custom metadata S3 cannot hold exactly: keys that
// are not HTTP header tokens, and keys equal but for case (S3 folds them).
func (t *s3Target) metadataProblem(f record.File) string {
	seen := map[string]string{}
	for k := range f.Metadata {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Sprintf("the custom metadata key %q is not an HTTP header token", k)
		}
		lk := strings.ToLower(k)
		if other, dup := seen[lk]; dup {
			return fmt.Sprintf("the custom metadata keys %q and %q differ only in case, which S3 does not keep", other, k)
		}
		seen[lk] = k
	}
	return ""
}

// headerValue encodes a metadata value for an HTTP header: as it is when it
// is printable ASCII without surrounding spaces, else as an RFC 2047
// encoded word, as S3 itself returns non-ASCII metadata.
func headerValue(v string) string {
	plain := v == strings.TrimSpace(v)
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x20 && v[i] < 0x7f
	}
	if plain {
		return v
	}
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

var wordDecoder mime.WordDecoder

func decodeHeaderValue(v string) string {
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// putOptions carries f's HTTP and custom metadata. Custom keys are given
// with their x-amz-meta- prefix, so that minio-go never mistakes a custom
// key for a standard header.
func (t *s3Target) putOptions(f record.File) minio.PutObjectOptions {
	meta := make(map[string]string, len(f.Metadata)+2)
	for k, v := range f.Metadata {
		meta["x-amz-meta-"+k] = headerValue(v)
	}
	return minio.PutObjectOptions{
		ContentType: f.ContentType, CacheControl: f.CacheControl, ContentDisposition: f.ContentDisposition,
		ContentEncoding: f.ContentEncoding, ContentLanguage: f.ContentLanguage,
		UserMetadata: meta, DisableContentSha256: true,
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func crcBase64(c uint32) string { return b64(binary.BigEndian.AppendUint32(nil, c)) }

func (t *s3Target) stat(ctx context.Context, key string) (minio.ObjectInfo, bool, error) {
	st, err := t.core.StatObject(ctx, t.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		r := minio.ToErrorResponse(err)
		// A HEAD answer has no body: a key the server refuses comes back as
		// a bare 400. Report it absent; the PUT then says why.
		if r.Code == "NoSuchKey" || r.Code == "NotFound" || r.StatusCode == http.StatusBadRequest {
			return st, false, nil
		}
		return st, false, err
	}
	return st, true, nil
}

// sameBytes compares a stored object with f: the same size, and the same
// full-object CRC-32C or, for objects stored in one part, the same MD5
// (the ETag). An object neither can be compared with is not the same.
func sameBytes(st minio.ObjectInfo, f record.File) bool {
	if st.Size != f.Size {
		return false
	}
	if st.ChecksumCRC32C != "" && f.HasCRC32C && (st.ChecksumMode == "" || st.ChecksumMode == minio.ChecksumFullObjectMode.String()) {
		return st.ChecksumCRC32C == crcBase64(f.CRC32C)
	}
	etag := strings.Trim(st.ETag, `"`)
	return f.MD5 != nil && !strings.Contains(etag, "-") && strings.EqualFold(etag, hex.EncodeToString(f.MD5))
}

// sameMetadata compares the stored HTTP and custom metadata with f's;
// custom keys case-insensitively, as S3 folds them.
func sameMetadata(st minio.ObjectInfo, f record.File) bool {
	if f.ContentType != "" && st.ContentType != f.ContentType {
		return false
	}
	for h, want := range map[string]string{
		"Cache-Control": f.CacheControl, "Content-Disposition": f.ContentDisposition,
		"Content-Encoding": f.ContentEncoding, "Content-Language": f.ContentLanguage,
	} {
		if st.Metadata.Get(h) != want {
			return false
		}
	}
	if len(st.UserMetadata) != len(f.Metadata) {
		return false
	}
	stored := make(map[string]string, len(st.UserMetadata))
	for k, v := range st.UserMetadata {
		stored[strings.ToLower(k)] = decodeHeaderValue(v)
	}
	for k, v := range f.Metadata {
		if got, ok := stored[strings.ToLower(k)]; !ok || got != v {
			return false
		}
	}
	return true
}

func (t *s3Target) holds(ctx context.Context, key string, f record.File) (same, present bool, err error) {
	st, ok, err := t.stat(ctx, key)
	if err != nil || !ok {
		return false, false, err
	}
	return sameBytes(st, f) && sameMetadata(st, f), true, nil
}

// comparison: S3 keys are compared byte for byte (keys MinIO would merge
// are refused by keyProblem).
func (t *s3Target) comparison() KeyComparison { return Exact }

func (t *s3Target) put(ctx context.Context, key string, f record.File, v *verifier) (stored, error) {
	if f.Size == 0 {
		// No body is sent: verify the (empty) source before the PUT.
		if _, err := v.Read(make([]byte, 1)); err != io.EOF {
			return stored{}, err
		}
	}
	if f.Size > t.partSize {
		return t.putMultipart(ctx, key, f, v)
	}
	opts := t.putOptions(f)
	md5b64 := ""
	if f.MD5 != nil {
		md5b64 = b64(f.MD5)
	}
	if f.HasCRC32C {
		opts.UserMetadata["x-amz-checksum-crc32c"] = crcBase64(f.CRC32C)
	}
	info, err := t.core.PutObject(ctx, t.bucket, key, v, f.Size, md5b64, "", opts)
	if err != nil {
		return stored{}, err
	}
	return stored{known: true, size: f.Size, crc32c: info.ChecksumCRC32C, etag: info.ETag}, nil
}

// putMultipart uploads f in parts of partSize, each streamed with its
// CRC-32C in a trailer, and completes the upload claiming the source's
// full-object CRC-32C, which the server checks against what it stored. A
// failed upload is aborted.
func (t *s3Target) putMultipart(ctx context.Context, key string, f record.File, v *verifier) (_ stored, err error) {
	t.abortStale(ctx, key)
	opts := t.putOptions(f)
	opts.UserMetadata["x-amz-checksum-algorithm"] = "CRC32C"
	opts.UserMetadata["x-amz-checksum-type"] = "FULL_OBJECT"
	id, err := t.core.NewMultipartUpload(ctx, t.bucket, key, opts)
	if err != nil {
		return stored{}, fmt.Errorf("starting a multipart upload: %w", err)
	}
	defer func() {
		if err != nil {
			_ = t.core.AbortMultipartUpload(context.WithoutCancel(ctx), t.bucket, key, id)
		}
	}()
	var parts []minio.CompletePart
	for n, off := 1, int64(0); off < f.Size; n, off = n+1, off+t.partSize {
		size := min(t.partSize, f.Size-off)
		pr := newPartReader(io.LimitReader(v, size))
		p, err := t.core.PutObjectPart(ctx, t.bucket, key, id, n, pr, size, minio.PutObjectPartOptions{
			Trailer: pr.trailer, DisableContentSha256: true,
		})
		if err != nil {
			return stored{}, fmt.Errorf("uploading part %d: %w", n, err)
		}
		if pr.n != size {
			return stored{}, fmt.Errorf("uploading part %d: sent %d of its %d bytes", n, pr.n, size)
		}
		if want := crcBase64(pr.crc); p.ChecksumCRC32C != "" && p.ChecksumCRC32C != want {
			return stored{}, &MismatchError{What: fmt.Sprintf("part %d as stored at the target", n), Detail: fmt.Sprintf("crc32c %s, sent %s", p.ChecksumCRC32C, want)}
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag, ChecksumCRC32C: p.ChecksumCRC32C})
	}
	if !v.verified() {
		// Reading the last declared byte verifies; make sure it happened.
		if _, err := v.Read(make([]byte, 1)); err != io.EOF {
			return stored{}, err
		}
	}
	claim := v.crc32c()
	if f.HasCRC32C {
		claim = f.CRC32C
	}
	info, err := t.core.CompleteMultipartUpload(ctx, t.bucket, key, id, parts, minio.PutObjectOptions{
		UserMetadata: map[string]string{"x-amz-checksum-crc32c": crcBase64(claim), "x-amz-checksum-type": "FULL_OBJECT"},
	})
	if err != nil {
		return stored{}, fmt.Errorf("completing the multipart upload: %w", err)
	}
	return stored{known: true, size: f.Size, crc32c: info.ChecksumCRC32C, etag: info.ETag}, nil
}

// abortStale aborts the incomplete multipart uploads of key begun before
// this process started: a run killed mid-upload leaves them, and they can
// never complete (the job lock keeps other processes of the job away).
// Failing to list or abort them only leaves them for the store's lifecycle
// rules, so errors are ignored.
func (t *s3Target) abortStale(ctx context.Context, key string) {
	res, err := t.core.ListMultipartUploads(ctx, t.bucket, key, "", "", "", 1000)
	if err != nil {
		return
	}
	for _, u := range res.Uploads {
		if u.Key == key && u.Initiated.Before(t.started) {
			_ = t.core.AbortMultipartUpload(ctx, t.bucket, key, u.UploadID)
		}
	}
}

// partReader streams one part, computing its CRC-32C, which it puts in the
// request's trailer at the end of the body for the server to check.
type partReader struct {
	r       io.Reader
	n       int64
	crc     uint32
	trailer http.Header
}

func newPartReader(r io.Reader) *partReader {
	p := &partReader{r: r, trailer: http.Header{}}
	// A placeholder of the final length: the signer sizes the body with it.
	p.trailer.Set("X-Amz-Checksum-Crc32c", crcBase64(0))
	return p
}

func (p *partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.crc = crc32.Update(p.crc, castagnoli, b[:n])
	if err == io.EOF {
		p.trailer.Set("X-Amz-Checksum-Crc32c", crcBase64(p.crc))
	}
	return n, err
}

// check compares what the server reports it stored — from the upload's
// response, or else read back with a HEAD — with the source's size and
// CRC-32C (or MD5 for an object stored in one part without a CRC).
func (t *s3Target) check(ctx context.Context, key string, f record.File, st stored) error {
	info := minio.ObjectInfo{Size: st.size, ChecksumCRC32C: st.crc32c, ETag: st.etag}
	if !st.known || (st.crc32c == "" && (f.MD5 == nil || strings.Contains(st.etag, "-"))) {
		var ok bool
		var err error
		if info, ok, err = t.stat(ctx, key); err != nil {
			return fmt.Errorf("reading back the stored object: %w", err)
		} else if !ok {
			return fmt.Errorf("the object %q is not in bucket %q after its upload succeeded", key, t.bucket)
		}
	}
	if !sameBytes(info, f) {
		return &MismatchError{What: "the object stored at the target", Detail: fmt.Sprintf("size %d, crc32c %q, etag %q; the source declares size %d, crc32c %q, md5 %x",
			info.Size, info.ChecksumCRC32C, info.ETag, f.Size, crcBase64(f.CRC32C), f.MD5)}
	}
	return nil
}

// existing returns the keys of keys that exist (see listed).
func (t *s3Target) existing(ctx context.Context, keys []string) (map[string]bool, error) {
	infos, err := t.listed(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(infos))
	for k := range infos {
		out[k] = true
	}
	return out, nil
}

// listed lists the keys between the smallest and the largest of keys
// (with one HEAD for the smallest, which a listing starting after it
// cannot return) and returns what the listing says of those of keys that
// exist: their size and ETag (and, from the HEAD, the smallest one's
// checksum).
func (t *s3Target) listed(ctx context.Context, keys []string) (map[string]minio.ObjectInfo, error) {
	if len(keys) == 0 {
		return map[string]minio.ObjectInfo{}, nil
	}
	lo, hi := slices.Min(keys), slices.Max(keys)
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	out := map[string]minio.ObjectInfo{}
	if st, ok, err := t.stat(ctx, lo); err != nil {
		return nil, err
	} else if ok {
		out[lo] = st
	}
	prefix := lo
	for !strings.HasPrefix(hi, prefix) || !utf8.ValidString(prefix) {
		// Whole characters only: S3 servers refuse a prefix that is not
		// UTF-8.
		prefix = prefix[:len(prefix)-1]
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range t.core.Client.ListObjects(lctx, t.bucket, minio.ListObjectsOptions{Prefix: prefix, StartAfter: lo, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		if o.Key > hi {
			break
		}
		if want[o.Key] {
			out[o.Key] = o
		}
	}
	return out, nil
}

// refusal recognises S3 errors that reject one object for good.
func (t *s3Target) refusal(err error) (string, bool) {
	r := minio.ToErrorResponse(err)
	switch r.Code {
	case "XMinioInvalidObjectName", "XMinioInvalidResourceName", "InvalidObjectName", "KeyTooLongError",
		"MetadataTooLarge", "XMinioObjectExistsAsDirectory", "XMinioParentIsObject":
		return fmt.Sprintf("the server refuses it (%s: %s)", r.Code, r.Message), true
	}
	return "", false
}

// mismatch recognises S3 refusing bytes that do not match the checksums
// sent with them.
func (t *s3Target) mismatch(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest", "XAmzContentSHA256Mismatch":
		return true
	}
	return false
}
