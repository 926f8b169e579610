package demoapp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// ClearBucket deletes every object of bucket, if it exists.
func ClearBucket(ctx context.Context, c *storage.Client, bucket string) error {
	it := c.Bucket(bucket).Objects(ctx, nil)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) || errors.Is(err, storage.ErrBucketNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing bucket %s: %w", bucket, err)
		}
		if err := c.Bucket(bucket).Object(a.Name).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			return fmt.Errorf("deleting %s: %w", a.Name, err)
		}
	}
}

// SeedFiles creates bucket in the Cloud Storage emulator behind c (when
// missing) and uploads n files like an app's: user avatars and post images
// with Firebase download tokens and custom metadata, and a few larger
// attachments. It returns the bytes uploaded.
func SeedFiles(ctx context.Context, c *storage.Client, bucket string, n int) (int64, error) {
	b := c.Bucket(bucket)
	if _, err := b.Attrs(ctx); errors.Is(err, storage.ErrBucketNotExist) {
		if err := b.Create(ctx, "demo", nil); err != nil {
			return 0, fmt.Errorf("creating bucket %s: %w", bucket, err)
		}
	} else if err != nil {
		return 0, fmt.Errorf("looking up bucket %s: %w", bucket, err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	var total int64
	for i := range n {
		name, size, typ := fmt.Sprintf("avatars/user%04d.png", i), 2048+r.IntN(30000), "image/png"
		switch {
		case i%3 == 1:
			name, typ = fmt.Sprintf("posts/post%05d/photo %d.jpg", i, i), "image/jpeg"
		case i%10 == 9:
			name, size, typ = fmt.Sprintf("attachments/report-%d.pdf", i), 1<<20+r.IntN(1<<20), "application/pdf"
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		w := b.Object(name).NewWriter(ctx)
		w.ContentType = typ
		w.CacheControl = "public, max-age=3600"
		w.Metadata = map[string]string{
			"firebaseStorageDownloadTokens": fmt.Sprintf("%08x-demo-token-%04d", r.Uint32(), i),
			"uploadedBy":                    fmt.Sprintf("user%04d", i%200),
		}
		if _, err := w.Write(data); err != nil {
			w.Close()
			return total, fmt.Errorf("uploading %s: %w", name, err)
		}
		if err := w.Close(); err != nil {
			return total, fmt.Errorf("uploading %s: %w", name, err)
		}
		total += int64(size)
	}
	return total, nil
}
