package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// Verdict is how the object a target holds under a key compares with a
// file.
type Verdict int

// Verdicts of Inspect.
const (
	// Holds means an object of the file's size and checksum is there.
	Holds Verdict = iota + 1
	// Absent means no object is there (for a directory: no regular file).
	Absent
	// OtherSize means the object there has another size.
	OtherSize
	// OtherChecksum means the object there has the file's size but another
	// checksum, or none that can be compared with the file's.
	OtherChecksum
)

func (v Verdict) String() string {
	switch v {
	case Holds:
		return "holds"
	case Absent:
		return "absent"
	case OtherSize:
		return "other size"
	case OtherChecksum:
		return "other checksum"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Inspect compares the objects the target holds under the keys of files
// (Key(f.Name)) with them, by size and checksum — the check Copy makes
// before skipping an object, but for many objects at once and without
// writing anything: a bucket or directory that does not exist holds
// nothing. It returns one verdict per file.
//
// An S3 target is listed once over the range of the keys (a request per
// 1,000 keys in that range, plus one HEAD); the listing's ETag settles
// objects stored in one part, whose ETag is their MD5. Only the others
// (multipart uploads, sources without an MD5) are asked with a HEAD for
// their full-object CRC-32C, at most Options.Concurrency at a time. A
// directory target reads its files back, Options.Concurrency at a time.
// Only the bytes are compared, not the HTTP or custom metadata an S3
// object carries.
func (s *Store) Inspect(ctx context.Context, files []record.File) ([]Verdict, error) {
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = s.Key(f.Name)
	}
	out, err := s.t.inspect(ctx, keys, files, s.opts.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("inspecting the objects in %s: %w", s.t, err)
	}
	return out, nil
}

// inspect is Inspect for an S3 bucket.
func (t *s3Target) inspect(ctx context.Context, keys []string, files []record.File, concurrency int) ([]Verdict, error) {
	out := make([]Verdict, len(keys))
	var valid []string
	for i, k := range keys {
		if t.keyProblem(k) != "" {
			out[i] = Absent // nothing can be stored under it
			continue
		}
		valid = append(valid, k)
	}
	listed, err := t.listed(ctx, valid)
	if minio.ToErrorResponse(err).Code == "NoSuchBucket" {
		for i := range out {
			out[i] = Absent
		}
		return out, nil
	}
	if err != nil {
		listed = nil // ask for each object instead
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	for i, key := range keys {
		if out[i] != 0 {
			continue
		}
		f := files[i]
		if listed != nil {
			info, ok := listed[key]
			switch {
			case !ok:
				out[i] = Absent
				continue
			case info.Size != f.Size:
				out[i] = OtherSize
				continue
			case sameBytes(info, f):
				out[i] = Holds
				continue
			}
		}
		g.Go(func() error {
			st, ok, err := t.stat(gctx, key)
			switch {
			case err != nil:
				return fmt.Errorf("reading %q: %w", key, err)
			case !ok:
				out[i] = Absent
			case st.Size != f.Size:
				out[i] = OtherSize
			case sameBytes(st, f):
				out[i] = Holds
			default:
				out[i] = OtherChecksum
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// inspect is Inspect for a directory: each file is looked at and, when
// its size is right, read back and checksummed.
func (t *dirTarget) inspect(ctx context.Context, keys []string, files []record.File, concurrency int) ([]Verdict, error) {
	out := make([]Verdict, len(keys))
	root, err := os.OpenRoot(t.path) // never created here: inspecting writes nothing
	if errors.Is(err, fs.ErrNotExist) {
		for i := range out {
			out[i] = Absent
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	for i, key := range keys {
		if t.keyProblem(key) != "" {
			out[i] = Absent
			continue
		}
		f := files[i]
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			st, err := root.Lstat(key)
			switch {
			case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
				out[i] = Absent
				return nil
			case err != nil:
				if _, refused := t.refusal(err); refused {
					out[i] = Absent // a name no file can have here
					return nil
				}
				return err
			case !st.Mode().IsRegular():
				out[i] = Absent
				return nil
			case st.Size() != f.Size:
				out[i] = OtherSize
				return nil
			}
			same, _, err := sameFile(root, key, f)
			if err != nil {
				return err
			}
			out[i] = OtherChecksum
			if same {
				out[i] = Holds
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
