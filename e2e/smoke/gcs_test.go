package smoke

import (
	"bytes"
	"context"
	"crypto/md5"
	"io"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestStorageEmulator uses cloud.google.com/go/storage, configured only by
// STORAGE_EMULATOR_HOST, against fake-gcs-server: create a bucket, upload an
// object with metadata, list it, read back its bytes and check its MD5.
func TestStorageEmulator(t *testing.T) {
	testenv.StorageEmulatorHost(t) // also exports STORAGE_EMULATOR_HOST for the client
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	bucket := strings.ReplaceAll(testenv.UniqueName("smoke", 40), "_", "-")
	bh := client.Bucket(bucket)
	if err := bh.Create(ctx, testenv.FreshProjectID(t), nil); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for it := bh.Objects(ctx, nil); ; {
			a, err := it.Next()
			if err != nil {
				break
			}
			_ = bh.Object(a.Name).Delete(ctx)
		}
		if err := bh.Delete(ctx); err != nil {
			t.Errorf("deleting bucket %s: %v", bucket, err)
		}
	})

	name := "users/ü 1/photo.bin" // non-ASCII and a space: names are kept exactly
	data := bytes.Repeat([]byte("baasmigrate\x00\xff"), 10000)
	sum := md5.Sum(data)
	w := bh.Object(name).NewWriter(ctx)
	w.ContentType = "application/octet-stream"
	w.Metadata = map[string]string{"firebaseStorageDownloadTokens": "tok-1"}
	w.ChunkSize = 64 << 10 // force a resumable, multi-chunk upload
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("uploading: %v", err)
	}

	var listed []*storage.ObjectAttrs
	for it := bh.Objects(ctx, &storage.Query{Prefix: "users/"}); ; {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		listed = append(listed, a)
	}
	if len(listed) != 1 || listed[0].Name != name {
		t.Fatalf("listed %d objects (%v), want exactly %q", len(listed), listed, name)
	}
	a := listed[0]
	if a.Size != int64(len(data)) || !bytes.Equal(a.MD5, sum[:]) {
		t.Errorf("listed size=%d md5=%x, want %d %x", a.Size, a.MD5, len(data), sum)
	}
	if a.Metadata["firebaseStorageDownloadTokens"] != "tok-1" {
		t.Errorf("metadata = %v, want the download token back", a.Metadata)
	}

	r, err := bh.Object(name).NewReader(ctx)
	if err != nil {
		t.Fatalf("opening for read: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if gotSum := md5.Sum(got); !bytes.Equal(got, data) || gotSum != sum {
		t.Errorf("read back %d bytes md5 %x, want %d bytes md5 %x", len(got), gotSum, len(data), sum)
	}
}
