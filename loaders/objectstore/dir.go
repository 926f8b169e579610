package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

// tempDirName is the directory, at the top of a directory target, where
// files are written before they are renamed into place. Object keys under
// it are rejected.
const tempDirName = ".baasmigrate-tmp"

// maxNameBytes is the longest file name (one path segment) common
// filesystems accept.
const maxNameBytes = 255

// copyBufferSize is the buffer of one file copy.
const copyBufferSize = 256 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// dirTarget is a local directory. Every file operation goes through an
// os.Root, so no name and no symbolic link can reach outside it.
type dirTarget struct {
	path string

	mu   sync.Mutex
	root *os.Root
	// cmp is how the directory's file system compares names, probed by
	// prepare.
	cmp KeyComparison
}

func newDir(u *url.URL) (*dirTarget, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("object store URL %q: a file URL has no host (file:///absolute/path)", redactURL(u.String()))
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("object store URL %q: file URLs take no parameters", redactURL(u.String()))
	}
	p := filepath.Clean(filepath.FromSlash(u.Path))
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("object store URL %q: want an absolute path (file:///absolute/path)", redactURL(u.String()))
	}
	return &dirTarget{path: p}, nil
}

func (t *dirTarget) String() string { return "file://" + filepath.ToSlash(t.path) }

// prepare creates the directory and the temporary directory, and removes
// temporary files left by processes that died while writing them: a file
// being written is locked (flock) by its writer, and the kernel releases
// the lock when the writer dies, however it dies.
func (t *dirTarget) prepare(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root != nil {
		return nil
	}
	if err := os.MkdirAll(t.path, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(t.path)
	if err != nil {
		return err
	}
	if err := root.MkdirAll(tempDirName, 0o755); err != nil {
		root.Close()
		return err
	}
	entries, err := fs.ReadDir(root.FS(), tempDirName)
	if err != nil {
		root.Close()
		return err
	}
	for _, e := range entries {
		name := path.Join(tempDirName, e.Name())
		fh, err := root.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			continue // gone meanwhile, or not a file of ours
		}
		stale := tryLock(fh)
		if stale {
			err = root.Remove(name)
		}
		fh.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			root.Close()
			return fmt.Errorf("removing the temporary file of an interrupted run: %w", err)
		}
	}
	if t.cmp, err = probeComparison(root, tempDirName); err != nil {
		root.Close()
		return fmt.Errorf("probing how the directory compares file names: %w", err)
	}
	t.root = root
	return nil
}

func (t *dirTarget) comparison() KeyComparison {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cmp
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// keyProblem refuses keys that are not a plain relative path of file
// names: empty, "." or ".." segments (so no leading, trailing or doubled
// "/"), segments too long for a file name, NUL, and the temporary
// directory.
func (t *dirTarget) keyProblem(key string) string {
	if strings.ContainsRune(key, 0) {
		return "it contains a NUL byte"
	}
	if p := segmentProblem(key); p != "" {
		return p
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		if len(s) > maxNameBytes {
			return fmt.Sprintf("its path segment %d is %d bytes long; file names are at most %d", i+1, len(s), maxNameBytes)
		}
	}
	// Without case too: on a case-insensitive file system it is the same
	// directory.
	if strings.EqualFold(norm.NFC.String(segs[0]), tempDirName) {
		return fmt.Sprintf("%s/ is where baasmigrate keeps temporary files", tempDirName)
	}
	return ""
}

// metadataProblem accepts everything: a directory keeps no metadata (the
// metadata table in PostgreSQL does).
func (t *dirTarget) metadataProblem(record.File) string { return "" }

func (t *dirTarget) ready() (*os.Root, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root == nil {
		return nil, errors.New("the directory target was not prepared")
	}
	return t.root, nil
}

// holds reports whether key is a regular file with f's size and CRC-32C
// (or MD5 when that is all the source declares), read back from disk.
// Without a checksum to compare it is never the same.
func (t *dirTarget) holds(_ context.Context, key string, f record.File) (same, present bool, err error) {
	root, err := t.ready()
	if err != nil {
		return false, false, err
	}
	return sameFile(root, key, f)
}

// sameFile reports whether key is a regular file in root with f's size
// and checksum (see holds), and whether anything is at key at all.
func sameFile(root *os.Root, key string, f record.File) (same, present bool, err error) {
	st, err := root.Lstat(key)
	if err != nil {
		return false, false, nil
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size || (!f.HasCRC32C && f.MD5 == nil) {
		return false, true, nil
	}
	fh, err := root.Open(key)
	if err != nil {
		return false, true, nil
	}
	defer fh.Close()
	useMD5 := f.MD5 != nil && !f.HasCRC32C
	h := md5.New()
	var crc uint32
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	for {
		n, err := fh.Read(*bp)
		crc = crc32.Update(crc, castagnoli, (*bp)[:n])
		if useMD5 {
			h.Write((*bp)[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, false, fmt.Errorf("reading %s: %w", key, err)
		}
	}
	if f.HasCRC32C && crc != f.CRC32C {
		return false, true, nil
	}
	return !useMD5 || bytes.Equal(h.Sum(nil), f.MD5), true, nil
}

// put writes the bytes to a new temporary file (in tempDirName, locked
// while it is written), fsyncs it, and only when
// they were read to the end and verified renames it to key (replacing
// what was there) and fsyncs the directory. The file's modification time
// is the object's update time.
func (t *dirTarget) put(_ context.Context, key string, f record.File, v *verifier) (_ stored, err error) {
	root, err := t.ready()
	if err != nil {
		return stored{}, err
	}
	dir := path.Dir(key)
	if dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return stored{}, &refusedError{fmt.Sprintf("a file is where its directory %q would be (another object's name is a prefix of this one)", dir)}
			}
			return stored{}, fmt.Errorf("creating directory %q: %w", dir, err)
		}
	}
	tmp := path.Join(tempDirName, randomName())
	fh, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return stored{}, fmt.Errorf("creating a temporary file: %w", err)
	}
	tryLock(fh) // marks the file as being written until it is closed
	defer func() {
		if fh != nil {
			fh.Close()
		}
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	bp := copyBuffers.Get().(*[]byte)
	_, err = io.CopyBuffer(fh, v, *bp)
	copyBuffers.Put(bp)
	if err != nil {
		return stored{}, err
	}
	if !v.verified() {
		return stored{}, errors.New("the source's bytes were not verified to their end")
	}
	if err := fh.Sync(); err != nil {
		return stored{}, fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if !f.Updated.IsZero() {
		if err := root.Chtimes(tmp, time.Now(), f.Updated); err != nil {
			return stored{}, fmt.Errorf("setting the modification time: %w", err)
		}
	}
	// Renamed while still open, so its lock holds until it is in place.
	if err := root.Rename(tmp, key); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) {
			return stored{}, &refusedError{"a directory of the same name exists (another object's name starts with this one followed by \"/\")"}
		}
		return stored{}, fmt.Errorf("renaming the temporary file into place: %w", err)
	}
	err = fh.Close()
	fh = nil
	if err != nil {
		return stored{}, fmt.Errorf("closing %s: %w", key, err)
	}
	if d, err := root.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return stored{}, fmt.Errorf("syncing directory %q: %w", dir, err)
		}
	}
	return stored{}, nil
}

// check confirms the file in place has the object's size; its bytes were
// verified on their way to the disk.
func (t *dirTarget) check(_ context.Context, key string, f record.File, _ stored) error {
	root, err := t.ready()
	if err != nil {
		return err
	}
	st, err := root.Lstat(key)
	if err != nil {
		return fmt.Errorf("reading back %q: %w", key, err)
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size {
		return &MismatchError{What: "the file written", Detail: fmt.Sprintf("%s of %d bytes; the source declares %d", st.Mode().Type(), st.Size(), f.Size)}
	}
	return nil
}

// refusedError is a directory target refusing one object for good.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return e.reason }

func (t *dirTarget) refusal(err error) (string, bool) {
	var r *refusedError
	if errors.As(err, &r) {
		return r.reason, true
	}
	var pe *os.PathError
	if errors.As(err, &pe) && (errors.Is(err, syscall.ENAMETOOLONG) || strings.Contains(pe.Err.Error(), "escapes from parent") ||
		strings.Contains(pe.Err.Error(), "path escapes")) {
		return "the file system refuses the name: " + pe.Err.Error(), true
	}
	return "", false
}

func (t *dirTarget) mismatch(error) bool { return false }
