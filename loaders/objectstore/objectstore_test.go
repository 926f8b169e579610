package objectstore_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// source is an in-memory set of objects handed over as file records, with
// counters of how they are read.
type source struct {
	data    map[string][]byte
	opens   atomic.Int64
	open    atomic.Int64 // readers open now
	maxOpen atomic.Int64
	inBytes atomic.Int64 // bytes of the objects open now
	maxIn   atomic.Int64
}

func newSource() *source { return &source{data: map[string][]byte{}} }

// file returns the record of name holding data, declaring f's metadata and
// the true checksums unless f already sets them.
func (s *source) file(name string, data []byte, f record.File) record.Record {
	s.data[name] = data
	f.Name, f.Bucket, f.Size = name, "src", int64(len(data))
	if f.MD5 == nil {
		sum := md5.Sum(data)
		f.MD5 = sum[:]
	}
	if !f.HasCRC32C {
		f.CRC32C, f.HasCRC32C = crc32.Checksum(data, castagnoli), true
	}
	f.Updated = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	return record.Record{
		Kind: record.KindFile, Key: name, Fields: f.Fields(), Cursor: name, UpdateTime: f.Updated,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			b, ok := s.data[name]
			if !ok {
				return nil, fmt.Errorf("%q: %w", name, fs.ErrNotExist)
			}
			n := s.open.Add(1)
			in := s.inBytes.Add(int64(len(b)))
			for m := s.maxOpen.Load(); n > m && !s.maxOpen.CompareAndSwap(m, n); m = s.maxOpen.Load() {
			}
			for m := s.maxIn.Load(); in > m && !s.maxIn.CompareAndSwap(m, in); m = s.maxIn.Load() {
			}
			s.opens.Add(1)
			return &trackedReader{Reader: bytes.NewReader(b), s: s, n: int64(len(b))}, nil
		},
	}
}

type trackedReader struct {
	io.Reader
	s    *source
	n    int64
	once sync.Once
}

func (r *trackedReader) Close() error {
	r.once.Do(func() {
		r.s.open.Add(-1)
		r.s.inBytes.Add(-r.n)
	})
	return nil
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type s3Env struct {
	ctx    context.Context
	client *minio.Client
	bucket string
	url    string
}

func newS3(t *testing.T) *s3Env {
	t.Helper()
	cfg := testenv.S3(t)
	host, secure := cfg.Host()
	client, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: secure, Region: cfg.Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
	bucket := strings.ReplaceAll(testenv.UniqueName("os-"+t.Name(), 40), "_", "-")
	e := &s3Env{ctx: context.Background(), client: client, bucket: bucket,
		url: fmt.Sprintf("s3://%s?endpoint=%s&region=%s", bucket, cfg.Endpoint, cfg.Region)}
	t.Cleanup(func() {
		for o := range client.ListObjects(e.ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			_ = client.RemoveObject(e.ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
		_ = client.RemoveBucket(e.ctx, bucket)
	})
	return e
}

func open(t *testing.T, url string, opts objectstore.Options) *objectstore.Store {
	t.Helper()
	opts.Retry = retry.Policy{Attempts: 3, Initial: time.Millisecond, Max: 10 * time.Millisecond}
	s, err := objectstore.Open(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func outcomes(rs []objectstore.Result) map[string]objectstore.Outcome {
	m := map[string]objectstore.Outcome{}
	for _, r := range rs {
		m[r.File.Name] = r.Outcome
	}
	return m
}

// TestS3CopyVerifySkip copies small, empty and multipart objects with
// metadata to MinIO, checks bytes, checksums and metadata as stored, and
// that a second copy writes nothing.
func TestS3CopyVerifySkip(t *testing.T) {
	e := newS3(t)
	src := newSource()
	meta := record.File{
		ContentType: "image/png", CacheControl: "public, max-age=3600", ContentDisposition: `attachment; filename="ü.png"`,
		ContentEncoding: "identity", ContentLanguage: "fr",
		Metadata: map[string]string{"firebaseStorageDownloadTokens": "tok-a,tok-b", "Owner": "Zoë ", "plain": "x"},
	}
	recs := []record.Record{
		src.file("small/ü 1#?.png", randomBytes(1000, 1), meta),
		src.file("empty", nil, record.File{}),
		src.file("big/multi.bin", randomBytes(12<<20+12345, 2), meta),
		src.file("exact-part", randomBytes(5<<20, 3), record.File{}),
	}
	store := open(t, e.url, objectstore.Options{PartSize: 5 << 20, Prefix: "pre/"})
	res, err := store.Copy(e.ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Outcome != objectstore.Copied {
			t.Fatalf("%q: %v %s", r.File.Name, r.Outcome, r.Reason)
		}
	}
	lastModified := map[string]time.Time{}
	for name, data := range src.data {
		key := "pre/" + name
		obj, err := e.client.GetObject(e.ctx, e.bucket, key, minio.GetObjectOptions{Checksum: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%q: read %d bytes (%v), want the %d copied", key, len(got), err, len(data))
		}
		st, err := e.client.StatObject(e.ctx, e.bucket, key, minio.StatObjectOptions{Checksum: true})
		if err != nil {
			t.Fatal(err)
		}
		lastModified[key] = st.LastModified
		wantCRC := crc32.Checksum(data, castagnoli)
		if st.ChecksumCRC32C != fmt.Sprint(b64crc(wantCRC)) {
			t.Errorf("%q: stored crc32c %q, want %q", key, st.ChecksumCRC32C, b64crc(wantCRC))
		}
		if name != "empty" && name != "exact-part" {
			if st.ContentType != meta.ContentType || st.Metadata.Get("Cache-Control") != meta.CacheControl ||
				st.Metadata.Get("Content-Disposition") != meta.ContentDisposition || st.Metadata.Get("Content-Language") != meta.ContentLanguage {
				t.Errorf("%q: HTTP metadata %v", key, st.Metadata)
			}
			if st.UserMetadata["Firebasestoragedownloadtokens"] != "tok-a,tok-b" || st.UserMetadata["Plain"] != "x" ||
				st.UserMetadata["Owner"] != "Zoë " {
				t.Errorf("%q: custom metadata %v", key, st.UserMetadata)
			}
		}
	}
	opened := src.opens.Load()
	res, err = store.Copy(e.ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range outcomes(res) {
		if o != objectstore.Skipped {
			t.Errorf("second copy of %q: %v, want skipped", name, o)
		}
	}
	if src.opens.Load() != opened {
		t.Errorf("the second copy read the source %d times, want 0", src.opens.Load()-opened)
	}
	for key, lm := range lastModified {
		st, _ := e.client.StatObject(e.ctx, e.bucket, key, minio.StatObjectOptions{})
		if !st.LastModified.Equal(lm) {
			t.Errorf("%q rewritten by the second copy", key)
		}
	}
	// Changed metadata at the source means a new copy.
	changed := meta
	changed.CacheControl = "no-store"
	res, err = store.Copy(e.ctx, []record.Record{src.file("small/ü 1#?.png", src.data["small/ü 1#?.png"], changed)})
	if err != nil || res[0].Outcome != objectstore.Copied {
		t.Fatalf("copy after a metadata change: %v %+v", err, res)
	}
}

func b64crc(c uint32) string {
	f := record.File{CRC32C: c, HasCRC32C: true}
	return base64Std(f.CRC32CBytes())
}

// TestChecksumMismatchAndGone checks that bytes not matching the declared
// checksum are retried, then rejected without a trace at the target, and
// that an object gone from the source is rejected with a reason.
func TestChecksumMismatchAndGone(t *testing.T) {
	e := newS3(t)
	dir := t.TempDir()
	for _, target := range []string{e.url, "file://" + dir} {
		src := newSource()
		bad := src.file("bad-single", randomBytes(2000, 4), record.File{CRC32C: 1234, HasCRC32C: true})
		badMulti := src.file("bad-multi", randomBytes(6<<20, 5), record.File{CRC32C: 99, HasCRC32C: true})
		// An MD5 is checked here when it is the only checksum declared.
		badMD5 := src.file("bad-md5", randomBytes(10, 6), record.File{MD5: make([]byte, 16)})
		delete(badMD5.Fields, record.FileFieldCRC32C)
		gone := src.file("gone", []byte("x"), record.File{})
		delete(src.data, "gone")
		store := open(t, target, objectstore.Options{PartSize: 5 << 20})
		res, err := store.Copy(e.ctx, []record.Record{bad, badMulti, badMD5, gone})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			want := "checksum mismatch in each of 3 copies"
			if r.File.Name == "gone" {
				want = "could not be read"
			}
			if r.Outcome != objectstore.Rejected || !strings.Contains(r.Reason, want) {
				t.Errorf("%s %q: %v %q, want rejected: %s", target, r.File.Name, r.Outcome, r.Reason, want)
			}
		}
		if got := src.opens.Load(); got != 9 {
			t.Errorf("%s: the source was read %d times, want 3 attempts of 3 objects", target, got)
		}
	}
	for o := range e.client.ListObjects(e.ctx, e.bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("rejected object %q is in the bucket", o.Key)
	}
	// MinIO lists multipart uploads only per exact object name.
	for u := range e.client.ListIncompleteUploads(e.ctx, e.bucket, "bad-multi", false) {
		t.Errorf("an aborted multipart upload of %q remains", u.Key)
	}
	assertOnly(t, dir, nil)
}

// assertOnly checks that dir holds exactly the files in want (relative
// paths): no temporary files are left.
func assertOnly(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		data, ok := want[rel]
		if !ok {
			t.Errorf("unexpected file %q in the target", rel)
			return nil
		}
		got, _ := os.ReadFile(p)
		if !bytes.Equal(got, data) {
			t.Errorf("%q holds %d bytes that differ from the %d copied", rel, len(got), len(data))
		}
		seen[rel] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%q missing from the target", k)
		}
	}
}

// TestDirectoryNamesCannotEscape copies odd names into a directory that
// holds a symbolic link to the outside: safe names land exactly, unsafe
// ones are rejected with a reason, nothing is written outside.
func TestDirectoryNamesCannotEscape(t *testing.T) {
	base := t.TempDir()
	dir, outside := filepath.Join(base, "target"), filepath.Join(base, "outside")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a killed run is removed by Prepare.
	if err := os.MkdirAll(filepath.Join(dir, ".baasmigrate-tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".baasmigrate-tmp", "0123abcd"), []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := newSource()
	ok := []string{"a b", "ü/ß", "x#y", "q?z", "p%20c", "plus+sign", `back\slash`, "tab\tname", "emoji 😀", "..dots..", "a",
		strings.Repeat("d123456789/", 93)[:1022]}
	bad := map[string]string{
		"../up": `".." path segment`, "a/../b": `".." path segment`, "dot/./x": `"." path segment`, "/lead": `starts with "/"`,
		"//double": `starts with "/"`, "mid//dle": `empty path segment`, "trail/": `ends with "/"`,
		strings.Repeat("n", 1020): "1020 bytes long", "link/escape": "refuses", ".baasmigrate-tmp/x": "temporary files", ".BaasMigrate-TMP/y": "temporary files",
		"a/b": "a file is where its directory",
	}
	var recs []record.Record
	want := map[string][]byte{}
	for _, n := range ok {
		recs = append(recs, src.file(n, []byte("content of "+n), record.File{}))
		want[n] = []byte("content of " + n)
	}
	for n := range bad {
		recs = append(recs, src.file(n, []byte("content of "+n), record.File{}))
	}
	store := open(t, "file://"+dir, objectstore.Options{})
	// "a" first, so that "a/b" meets the file.
	first, err := store.Copy(context.Background(), recs[:len(ok)])
	if err != nil {
		t.Fatal(err)
	}
	rest, err := store.Copy(context.Background(), recs[len(ok):])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(first, rest...) {
		reason, isBad := bad[r.File.Name]
		switch {
		case isBad && (r.Outcome != objectstore.Rejected || !strings.Contains(r.Reason, reason)):
			t.Errorf("%q: %v %q, want rejected: %s", r.File.Name, r.Outcome, r.Reason, reason)
		case !isBad && r.Outcome != objectstore.Copied:
			t.Errorf("%q: %v %q, want copied", r.File.Name, r.Outcome, r.Reason)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("files written outside the target: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(base, "up")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("../up escaped the target")
	}
	os.Remove(filepath.Join(dir, "link"))
	assertOnly(t, dir, want)
	st, err := os.Stat(filepath.Join(dir, "a b"))
	if err != nil || !st.ModTime().Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("modification time %v (%v), want the object's update time", st.ModTime(), err)
	}
}

// TestLimitsInFlight copies many objects and checks that at most
// Concurrency objects and MaxInflight bytes (or one larger object) were
// being read at once.
func TestLimitsInFlight(t *testing.T) {
	src := newSource()
	var recs []record.Record
	for i := range 60 {
		size := 100 << 10
		if i%10 == 0 {
			size = 3 << 20 // larger than MaxInflight: copied alone
		}
		recs = append(recs, src.file(fmt.Sprintf("o%02d", i), randomBytes(size, uint64(i)), record.File{}))
	}
	store := open(t, "file://"+t.TempDir(), objectstore.Options{Concurrency: 4, MaxInflight: 1 << 20})
	if _, err := store.Copy(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if got := src.maxOpen.Load(); got > 4 || got < 2 {
		t.Errorf("%d objects were read at once, want 2..4", got)
	}
	if got := src.maxIn.Load(); got > 3<<20 {
		t.Errorf("%d bytes of objects were in flight, want at most one large object's", got)
	}
}

// TestOpenRejectsBadURLs checks that URL mistakes are reported before any
// work.
func TestOpenRejectsBadURLs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for url, want := range map[string]string{
		"ftp://x":                        "want s3://",
		"s3://":                          "names no bucket",
		"s3://b/prefix":                  "--objects-prefix",
		"s3://b?endpoint=127.0.0.1:9000": "not an http://",
		"s3://b?colour=blue":             "unknown parameter",
		"s3://b?endpoint=http://k:s@h:1": "not in the endpoint",
		"file://relative/path":           "no host",
	} {
		_, err := objectstore.Open(url, objectstore.Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q): %v, want an error saying %q", url, err, want)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("HOME", t.TempDir())
	if _, err := objectstore.Open("s3://b", objectstore.Options{}); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("Open without credentials: %v", err)
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestS3ServerChecksMD5 declares a wrong MD5 beside the right CRC-32C: the
// copy's own check passes (it checks the CRC), but S3 refuses the PUT
// whose Content-MD5 does not match, so the object is rejected.
func TestS3ServerChecksMD5(t *testing.T) {
	e := newS3(t)
	src := newSource()
	rec := src.file("md5-only-wrong", randomBytes(3000, 9), record.File{MD5: make([]byte, 16)})
	res, err := open(t, e.url, objectstore.Options{}).Copy(e.ctx, []record.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != objectstore.Rejected || !strings.Contains(res[0].Reason, "checksum mismatch") {
		t.Errorf("%v %q, want rejected for a checksum mismatch", res[0].Outcome, res[0].Reason)
	}
}
