package testenv

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// NewS3Bucket creates a bucket on the test S3 store (see S3) and returns
// the store's configuration, a minio-go client on it and the bucket's
// name: UniqueName(prefix, 50) with '_' replaced by '-'. The bucket is
// emptied and removed in t.Cleanup. Skips like S3 when the store is not
// configured; fails when the client or the bucket cannot be made.
func NewS3Bucket(t testing.TB, prefix string) (S3Config, *minio.Client, string) {
	t.Helper()
	cfg := S3(t)
	host, secure := cfg.Host()
	client, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: secure, Region: cfg.Region})
	if err != nil {
		t.Fatalf("testenv: S3 client for %s: %v", cfg.Endpoint, err)
	}
	name := strings.ReplaceAll(UniqueName(prefix, 50), "_", "-")
	ctx := context.Background()
	if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
		t.Fatalf("testenv: making bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		for o := range client.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			_ = client.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
		}
		_ = client.RemoveBucket(ctx, name)
	})
	return cfg, client, name
}

// PutS3Object uploads data to bucket/key with opts (without a SHA-256 of
// the payload), whole or, when multipart, in 5 MiB parts sent one at a
// time, and fails t unless the eTag says which it was ("<md5>-<parts>"
// for parts). It returns what the store answered.
func PutS3Object(t testing.TB, client *minio.Client, bucket, key string, data []byte, multipart bool, opts minio.PutObjectOptions) minio.UploadInfo {
	t.Helper()
	opts.DisableContentSha256 = true
	if multipart {
		opts.PartSize = 5 << 20
		opts.ConcurrentStreamParts, opts.NumThreads = false, 1
	} else {
		opts.DisableMultipart = true
	}
	info, err := client.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("testenv: uploading %q to %s: %v", key, bucket, err)
	}
	if multipart != strings.Contains(info.ETag, "-") {
		t.Fatalf("testenv: %q uploaded with eTag %q (multipart %v)", key, info.ETag, multipart)
	}
	return info
}
