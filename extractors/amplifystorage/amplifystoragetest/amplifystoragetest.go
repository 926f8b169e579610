// Package amplifystoragetest makes S3 buckets that play an Amplify app's
// storage bucket for tests: a bucket with a unique name on the test MinIO
// (removed when the test ends), holding objects under Amplify's access
// prefixes with the metadata Amplify's clients set, and names to design
// for.
package amplifystoragetest

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// Object is an object to put in the bucket.
type Object struct {
	Key  string
	Data []byte
	// Multipart uploads it in 5 MiB parts (its eTag is then "<md5>-<parts>").
	Multipart                                  bool
	ContentType, CacheControl, ContentEncoding string
	ContentDisposition, ContentLanguage        string
	Metadata                                   map[string]string // user metadata, lowercase keys without x-amz-meta-
}

// LongKey is a key of 1,024 bytes, S3's longest, in segments MinIO can
// store (at most 255 bytes each).
func LongKey() string {
	var b strings.Builder
	b.WriteString("public/long")
	for b.Len() < 1022 { // room for "/" and at least one byte
		n := min(200, 1024-b.Len()-1)
		b.WriteString("/")
		b.WriteString(strings.Repeat("x", n))
	}
	if b.Len() != 1024 {
		panic(fmt.Sprintf("amplifystoragetest: LongKey is %d bytes", b.Len()))
	}
	return b.String()
}

// Objects returns objects to design for: Amplify's public/, protected/ and
// private/ prefixes with identity ids, names with non-ASCII characters,
// "%", spaces and "+", a 1,024-byte key, HTTP metadata of every kind and
// user metadata (a non-ASCII value, which S3 sends RFC 2047-encoded), an empty object, a multipart upload, and n small ones.
func Objects(n int) []Object {
	r := rand.New(rand.NewPCG(3, 4))
	data := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	}
	objs := []Object{
		{Key: "public/photos/cat.jpg", Data: data(3000), ContentType: "image/jpeg", CacheControl: "public, max-age=86400",
			Metadata: map[string]string{"owner": "us-east-1:7d3f0000-aaaa-4bbb-8ccc-000000000001", "camera-model": "X100", "caption": "Zoë's cat, ü"}},
		{Key: "protected/us-east-1:7d3f0000-aaaa-4bbb-8ccc-000000000001/docs/100% done + more.txt", Data: []byte("all of it\n"),
			ContentType: "text/plain; charset=utf-8", ContentDisposition: `attachment; filename="100% done.txt"`, ContentLanguage: "en"},
		{Key: "private/us-east-1:7d3f0000-aaaa-4bbb-8ccc-000000000002/ünïcödé résumé/ファイル.txt", Data: []byte("こんにちは"), ContentType: "text/plain"},
		{Key: "public/report.csv.gz", Data: data(500), ContentType: "text/csv", ContentEncoding: "gzip"},
		{Key: "public/empty", Data: []byte{}, ContentType: "application/octet-stream"},
		{Key: "public/videos/big.mp4", Data: data(6<<20 + 321), Multipart: true, ContentType: "video/mp4"},
		{Key: LongKey(), Data: []byte("long"), ContentType: "text/plain"},
	}
	for i := range n {
		objs = append(objs, Object{Key: fmt.Sprintf("public/bulk/%04d.dat", i), Data: data(100 + r.IntN(1500)), ContentType: "application/octet-stream"})
	}
	return objs
}

// Bucket is a bucket on the test MinIO.
type Bucket struct {
	Name                 string
	Endpoint, Region     string
	AccessKey, SecretKey string
	Client               *minio.Client
}

// NewBucket creates a bucket with a unique name, removed with its objects
// when the test ends, and puts objs in it.
func NewBucket(t testing.TB, objs []Object) *Bucket {
	t.Helper()
	cfg, client, name := testenv.NewS3Bucket(t, "amp-"+t.Name())
	b := &Bucket{Name: name, Endpoint: cfg.Endpoint, Region: cfg.Region, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Client: client}
	for _, o := range objs {
		b.Put(t, o)
	}
	return b
}

// Put uploads o.
func (b *Bucket) Put(t testing.TB, o Object) {
	t.Helper()
	testenv.PutS3Object(t, b.Client, b.Name, o.Key, o.Data, o.Multipart, minio.PutObjectOptions{ContentType: o.ContentType,
		CacheControl: o.CacheControl, ContentEncoding: o.ContentEncoding, ContentDisposition: o.ContentDisposition,
		ContentLanguage: o.ContentLanguage, UserMetadata: o.Metadata})
}

// Want is the file record the extractor should give for o, read from the
// bucket (computed: whether a multipart upload's MD5 is computed). The
// update time and storage class are the server's, read with a HEAD.
func (b *Bucket) Want(t testing.TB, o Object, computed bool) record.Record {
	t.Helper()
	info, err := b.Client.StatObject(context.Background(), b.Name, o.Key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(o.Data)
	f := record.File{Bucket: b.Name, Name: o.Key, Size: int64(len(o.Data)), ContentType: o.ContentType, CacheControl: o.CacheControl,
		ContentEncoding: o.ContentEncoding, ContentDisposition: o.ContentDisposition, ContentLanguage: o.ContentLanguage,
		StorageClass: info.StorageClass, MD5: sum[:], Updated: info.LastModified.UTC()}
	if o.Multipart && !computed {
		f.MD5 = nil
	}
	if len(o.Metadata) > 0 {
		f.Metadata = o.Metadata
	}
	return record.Record{Kind: record.KindFile, Key: o.Key, Fields: f.Fields(), UpdateTime: f.Updated}
}
