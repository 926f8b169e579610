package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
)

// Remove deletes the objects at keys (keys as Key returns them), at most
// Options.Concurrency at a time. A key with no object is no error, so
// removing twice is removing once. In a directory, directories the
// removal leaves empty are removed too, up to the target's top. The error
// names every key that could not be removed.
func (s *Store) Remove(ctx context.Context, keys []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	errs := make([]error, len(keys))
	for i, key := range keys {
		g.Go(func() error {
			if err := s.t.remove(ctx, key); err != nil {
				errs[i] = fmt.Errorf("removing %q from %s: %w", key, s.t, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// remove deletes the file at key, then the directories above it that it
// leaves empty. An absent file is no error.
func (t *dirTarget) remove(_ context.Context, key string) error {
	if t.keyProblem(key) != "" {
		return nil // no file can be there
	}
	root, err := t.ready()
	if err != nil {
		return err
	}
	st, err := root.Lstat(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return nil // a directory of other objects, not an object
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for dir := path.Dir(key); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if root.Remove(dir) != nil {
			break // not empty (or already gone): stop climbing
		}
	}
	return nil
}

// remove deletes the object at key; S3 answers a delete of an absent key
// with success.
func (t *s3Target) remove(ctx context.Context, key string) error {
	err := t.core.RemoveObject(ctx, t.bucket, key, minio.RemoveObjectOptions{})
	if r := minio.ToErrorResponse(err); err != nil && (r.Code == "NoSuchKey" || r.Code == "NotFound") {
		return nil
	}
	return err
}
