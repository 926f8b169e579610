package syncwriter

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"

	"cloud.google.com/go/storage"
)

// FilesWriter adds, overwrites (a new generation), changes the metadata of
// (a new metageneration) and deletes objects of one Cloud Storage bucket
// (against fake-gcs-server), seeded.
type FilesWriter struct {
	bucket *storage.BucketHandle
	prefix string

	mu          sync.Mutex
	rng         *rand.Rand
	live        map[string]bool
	counter     int
	Added       int
	Overwritten int
	Retagged    int
	Deleted     int
}

// NewFiles returns a FilesWriter over bucket (which must exist); the
// objects it adds have names starting with prefix.
func NewFiles(client *storage.Client, bucket string, seed uint64, prefix string) *FilesWriter {
	return &FilesWriter{bucket: client.Bucket(bucket), prefix: prefix, rng: rand.New(rand.NewPCG(seed, 0xf11e)), live: map[string]bool{}}
}

// upload writes name with fresh random bytes and metadata.
func (f *FilesWriter) upload(ctx context.Context, name string) error {
	f.mu.Lock()
	data := make([]byte, f.rng.IntN(20_000))
	for i := range data {
		data[i] = byte(f.rng.Uint32())
	}
	token := fmt.Sprintf("%08x-%04x-sync", f.rng.Uint32(), f.rng.IntN(1<<16))
	f.mu.Unlock()
	w := f.bucket.Object(name).NewWriter(ctx)
	w.ContentType = "application/octet-stream"
	w.Metadata = map[string]string{"firebaseStorageDownloadTokens": token, "writer": "syncwriter"}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("uploading %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("uploading %s: %w", name, err)
	}
	return nil
}

// Add uploads n new objects.
func (f *FilesWriter) Add(ctx context.Context, n int) error {
	for range n {
		f.mu.Lock()
		f.counter++
		name := fmt.Sprintf("%s/f%05d.bin", f.prefix, f.counter)
		f.mu.Unlock()
		if err := f.upload(ctx, name); err != nil {
			return err
		}
		f.mu.Lock()
		f.live[name] = true
		f.Added++
		f.mu.Unlock()
	}
	return nil
}

// Step makes one random change: add an object, overwrite one, change one's
// metadata, or delete one.
func (f *FilesWriter) Step(ctx context.Context) error {
	f.mu.Lock()
	r := f.rng.IntN(10)
	names := slices.Sorted(maps.Keys(f.live))
	var name string
	if len(names) > 0 {
		name = names[f.rng.IntN(len(names))]
	}
	tag := fmt.Sprintf("v%d", f.rng.IntN(1_000_000))
	f.mu.Unlock()
	switch {
	case r < 3 || name == "":
		return f.Add(ctx, 1)
	case r < 5:
		if err := f.upload(ctx, name); err != nil {
			return err
		}
		f.mu.Lock()
		f.Overwritten++
		f.mu.Unlock()
	case r < 7:
		_, err := f.bucket.Object(name).Update(ctx, storage.ObjectAttrsToUpdate{Metadata: map[string]string{"writer": "syncwriter", "tag": tag}})
		if err != nil {
			return fmt.Errorf("updating the metadata of %s: %w", name, err)
		}
		f.mu.Lock()
		f.Retagged++
		f.mu.Unlock()
	default:
		if err := f.bucket.Object(name).Delete(ctx); err != nil {
			return fmt.Errorf("deleting %s: %w", name, err)
		}
		f.mu.Lock()
		delete(f.live, name)
		f.Deleted++
		f.mu.Unlock()
	}
	return nil
}

// Live returns the names of the objects the writer added and did not
// delete.
func (f *FilesWriter) Live() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.live))
}
