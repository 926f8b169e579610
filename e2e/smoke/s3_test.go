package smoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestS3 puts an object into MinIO with minio-go and gets the same bytes and
// user metadata back.
func TestS3(t *testing.T) {
	cfg := testenv.S3(t)
	host, secure := cfg.Host()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: secure,
		Region: cfg.Region,
	})
	if err != nil {
		t.Fatal(err)
	}

	bucket := strings.ReplaceAll(testenv.UniqueName("smoke", 40), "_", "-")
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
		t.Fatalf("making bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for o := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			_ = client.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
		if err := client.RemoveBucket(ctx, bucket); err != nil {
			t.Errorf("removing bucket %s: %v", bucket, err)
		}
	})

	data := make([]byte, 1<<20+17)
	_, _ = rand.Read(data)
	key := "files/ü 1/blob.bin"
	if _, err := client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		UserMetadata: map[string]string{"Source-Key": "gs://b/o"},
	}); err != nil {
		t.Fatalf("put: %v", err)
	}
	obj, err := client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes that differ from the %d put", len(got), len(data))
	}
	st, err := obj.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.UserMetadata["Source-Key"] != "gs://b/o" {
		t.Errorf("user metadata = %v, want Source-Key back", st.UserMetadata)
	}
}
