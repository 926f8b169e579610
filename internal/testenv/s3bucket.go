package testenv

import (
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
