package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/option"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/gcs"
	"github.com/baasmigrate/baasmigrate/extractors/gcs/gcstest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

const filesBucket = "demo-files.appspot.com"

var filesCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// filesObject is one object seeded into the source bucket.
type filesObject struct {
	name                                       string
	data                                       []byte
	contentType, cacheControl, contentEncoding string
	metadata                                   map[string]string
}

// filesSource is a private fake-gcs-server (memory backend, which keeps
// every name exactly) holding one bucket.
type filesSource struct {
	t       *testing.T
	host    string
	client  *storage.Client
	objects map[string]*filesObject
}

func newFilesSource(t *testing.T) *filesSource {
	t.Helper()
	host := gcstest.MemoryEmulator(t)
	client, err := storage.NewClient(context.Background(), option.WithEndpoint(host+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := client.Bucket(filesBucket).Create(context.Background(), "demo-files", nil); err != nil {
		t.Fatal(err)
	}
	return &filesSource{t: t, host: host, client: client, objects: map[string]*filesObject{}}
}

// filesRandom returns n pseudo-random bytes.
func filesRandom(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// seed uploads objs, 8 at a time.
func (s *filesSource) seed(objs []*filesObject) {
	s.t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for _, o := range objs {
		s.objects[o.name] = o
		g.Go(func() error {
			w := s.client.Bucket(filesBucket).Object(o.name).NewWriter(ctx)
			w.ContentType, w.CacheControl, w.ContentEncoding, w.Metadata = o.contentType, o.cacheControl, o.contentEncoding, o.metadata
			w.ChunkSize = 16 << 20
			if _, err := w.Write(o.data); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return fmt.Errorf("uploading %q: %w", o.name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		s.t.Fatal(err)
	}
}

// filesOddNames are object names Cloud Storage accepts that a target may
// not hold, or that naive code mangles.
var filesOddNames = []string{
	"a b", "ü/ß.txt", "x#y", "q?z", "p%20c", "100%", "../up", "a/../b", "/lead", "//double", "dot/./x",
	"trail/", "a", "a/b", "plus+sign", `back\slash`, "tab\tname", "emoji 😀.png", "..dots..",
	strings.Repeat("n", 1020),                     // one 1,020-byte segment
	strings.Repeat("long-name/", 101) + "end.bin", // 1,017 bytes in short segments
	"zero-byte", "users/zero/empty.txt",
}

// filesDemo is a bucket like a real app's: hundreds of small files, odd
// names, empty files, a gzip-encoded asset and a few large videos, all
// with Firebase download tokens.
func filesDemo(seed uint64, small int, large []int) []*filesObject {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	token := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff)
	}
	var objs []*filesObject
	add := func(name string, data []byte, ctype string) *filesObject {
		o := &filesObject{name: name, data: data, contentType: ctype, cacheControl: "public, max-age=3600",
			metadata: map[string]string{"firebaseStorageDownloadTokens": token() + "," + token(), "uploadedBy": "uid-" + fmt.Sprint(r.IntN(100))}}
		objs = append(objs, o)
		return o
	}
	for _, n := range filesOddNames {
		size := 100 + r.IntN(2000)
		if strings.Contains(n, "zero") || strings.Contains(n, "empty") {
			size = 0
		}
		add(n, filesRandom(r, size), "application/octet-stream")
	}
	for i := range small {
		size := r.IntN(48 << 10)
		if i%37 == 0 {
			size = 0
		}
		add(fmt.Sprintf("users/u%03d/photos/img-%04d.jpg", i%40, i), filesRandom(r, size), "image/jpeg")
	}
	for i, size := range large {
		o := add(fmt.Sprintf("videos/big-%d.mp4", i+1), filesRandom(r, size), "video/mp4")
		o.metadata["caption"] = "Grüße aus Köln" // non-ASCII values travel RFC 2047-encoded
	}
	// S3 metadata keys are HTTP header names: this one cannot be kept.
	add("meta/unicode-key.txt", []byte("x"), "text/plain").metadata["Ünïcode"] = "v"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("console.log('compressed at rest');\n"), 2000))
	zw.Close()
	o := add("assets/app.js", gz.Bytes(), "application/javascript")
	o.contentEncoding = "gzip"
	return objs
}

// filesTarget is where a test copies to: an S3 bucket in MinIO or a
// directory, with its own target database.
type filesTarget struct {
	t      *testing.T
	url    string
	dir    string        // set for a directory target
	s3     *minio.Client // set for an S3 target
	bucket string
	dsn    string
	pool   *pgxpool.Pool
	env    []string
	work   string
}

func newFilesTarget(t *testing.T, src *filesSource, s3 bool) *filesTarget {
	t.Helper()
	ft := &filesTarget{t: t, dsn: testenv.NewDatabase(t), work: t.TempDir()}
	pool, err := pgxpool.New(context.Background(), ft.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ft.pool = pool
	env := []string{"STORAGE_EMULATOR_HOST=" + src.host, "GCLOUD_PROJECT=demo-files", "DATABASE_URL=" + ft.dsn}
	if s3 {
		cfg := testenv.S3(t)
		host, secure := cfg.Host()
		ft.s3, err = minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: secure, Region: cfg.Region})
		if err != nil {
			t.Fatal(err)
		}
		ft.bucket = strings.ReplaceAll(testenv.UniqueName("files-"+t.Name(), 50), "_", "-")
		ft.url = fmt.Sprintf("s3://%s?endpoint=%s&region=%s", ft.bucket, cfg.Endpoint, cfg.Region)
		env = append(env, "AWS_ACCESS_KEY_ID="+cfg.AccessKey, "AWS_SECRET_ACCESS_KEY="+cfg.SecretKey)
		t.Cleanup(func() {
			ctx := context.Background()
			for o := range ft.s3.ListObjects(ctx, ft.bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
				_ = ft.s3.RemoveObject(ctx, ft.bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID})
			}
			_ = ft.s3.RemoveBucket(ctx, ft.bucket)
		})
	} else {
		ft.dir = filepath.Join(t.TempDir(), "files")
		ft.url = "file://" + ft.dir
	}
	ft.env = clitest.Env(env...)
	return ft
}

// makeVersionedBucket creates the target bucket with versioning on, so a
// test can count the uploads of each object.
func (ft *filesTarget) makeVersionedBucket() {
	ft.t.Helper()
	ctx := context.Background()
	if err := ft.s3.MakeBucket(ctx, ft.bucket, minio.MakeBucketOptions{}); err != nil {
		ft.t.Fatal(err)
	}
	if err := ft.s3.EnableVersioning(ctx, ft.bucket); err != nil {
		ft.t.Fatal(err)
	}
}

func (ft *filesTarget) args(extra ...string) []string {
	return append([]string{"migrate", "--only", "files", "--storage-bucket", filesBucket, "--objects", ft.url}, extra...)
}

// migrate runs the binary to completion, checks its exit status, and
// returns its summary.
func (ft *filesTarget) migrate(wantCode int, extra ...string) (summaryJSON, clitest.Result) {
	ft.t.Helper()
	path := filepath.Join(ft.work, fmt.Sprintf("summary-%d.json", time.Now().UnixNano()))
	res := clitest.Run(ft.t, ft.env, ft.args(append(extra, "--summary", path)...)...)
	if res.Code != wantCode {
		ft.t.Fatalf("migrate exited %d, want %d\nstdout:\n%s\nstderr:\n%s", res.Code, wantCode, res.Stdout, res.Stderr)
	}
	s := readSummary[summaryJSON](ft.t, path)
	checkBalance(ft.t, s)
	return s, res
}

// filesRow is a row of the files table.
type filesRow struct {
	size                  int64
	md5, crc32c, key      string
	contentType, encoding string
	metadata              map[string]string
	tokens                []string
	generation            int64
	created, updated      time.Time
}

func (ft *filesTarget) rows() map[string]filesRow {
	ft.t.Helper()
	rows, err := ft.pool.Query(context.Background(), `SELECT name, size, coalesce(md5, ''), crc32c, target_key, coalesce(content_type, ''),
		coalesce(content_encoding, ''), metadata, download_tokens, generation, created_at, updated_at FROM public.files WHERE bucket = $1`, filesBucket)
	if err != nil {
		ft.t.Fatal(err)
	}
	out := map[string]filesRow{}
	for rows.Next() {
		var name string
		var r filesRow
		if err := rows.Scan(&name, &r.size, &r.md5, &r.crc32c, &r.key, &r.contentType, &r.encoding, &r.metadata, &r.tokens, &r.generation, &r.created, &r.updated); err != nil {
			ft.t.Fatal(err)
		}
		out[name] = r
	}
	if err := rows.Err(); err != nil {
		ft.t.Fatal(err)
	}
	return out
}

// rejects returns the stored rejects: source key → reason.
func (ft *filesTarget) rejects() map[string]string {
	ft.t.Helper()
	rows, err := ft.pool.Query(context.Background(), `SELECT record->>'key', reason FROM baasmigrate.rejects WHERE kind = 'file'`)
	if err != nil {
		ft.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, reason string
		if err := rows.Scan(&k, &reason); err != nil {
			ft.t.Fatal(err)
		}
		out[k] = reason
	}
	return out
}

// committed counts the rows of the files table (0 before it exists).
func (ft *filesTarget) committed() int {
	var n int
	_ = ft.pool.QueryRow(context.Background(), `SELECT count(*) FROM public.files`).Scan(&n)
	return n
}

// targetBytes reads the object stored under key.
func (ft *filesTarget) targetBytes(key string) ([]byte, error) {
	if ft.dir != "" {
		return os.ReadFile(filepath.Join(ft.dir, filepath.FromSlash(key)))
	}
	obj, err := ft.s3.GetObject(context.Background(), ft.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

// compare checks, object by object, that every source object is either at
// the target — same bytes, metadata and a matching row — or rejected with
// a reason; and that the rejected ones are exactly wantRejected (a name
// listed as "x|y" means exactly one of x and y).
func (ft *filesTarget) compare(src *filesSource, wantRejected []string) {
	ft.t.Helper()
	rows, rejects := ft.rows(), ft.rejects()
	for _, spec := range wantRejected {
		alts := strings.Split(spec, "|")
		n := 0
		for _, a := range alts {
			if _, ok := rejects[a]; ok {
				n++
			}
		}
		if n != 1 {
			ft.t.Errorf("want exactly one of %q rejected; rejects: %v", alts, filesKeys(rejects))
		}
	}
	if len(rejects) != len(wantRejected) {
		ft.t.Errorf("%d rejects, want %d: %v", len(rejects), len(wantRejected), filesKeys(rejects))
	}
	for name, o := range src.objects {
		if reason, ok := rejects[name]; ok {
			if _, row := rows[name]; row || reason == "" {
				ft.t.Errorf("rejected %q has a row or no reason (%q)", name, reason)
			}
			continue
		}
		r, ok := rows[name]
		if !ok {
			ft.t.Errorf("%q: neither copied nor rejected", name)
			continue
		}
		sum := md5.Sum(o.data)
		if r.size != int64(len(o.data)) || r.md5 != hex.EncodeToString(sum[:]) || r.crc32c != fmt.Sprintf("%08x", crc32.Checksum(o.data, filesCastagnoli)) ||
			r.key != name || r.contentType != o.contentType || r.encoding != o.contentEncoding || r.generation == 0 || r.created.IsZero() ||
			fmt.Sprint(r.metadata) != fmt.Sprint(o.metadata) || !slices.Equal(r.tokens, gcs.DownloadTokens(o.metadata)) {
			ft.t.Errorf("%q: row %+v does not describe the object", name, r)
		}
		got, err := ft.targetBytes(name)
		if err != nil || !bytes.Equal(got, o.data) {
			ft.t.Errorf("%q: target holds %d bytes (%v), want the %d of the source", name, len(got), err, len(o.data))
		}
		if ft.s3 != nil {
			st, err := ft.s3.StatObject(context.Background(), ft.bucket, name, minio.StatObjectOptions{Checksum: true})
			if err != nil {
				ft.t.Errorf("%q: %v", name, err)
				continue
			}
			crc := crc32.Checksum(o.data, filesCastagnoli)
			wantCRC := record.File{CRC32C: crc, HasCRC32C: true}.CRC32CBytes()
			if st.ContentType != o.contentType || st.Metadata.Get("Cache-Control") != o.cacheControl || st.Metadata.Get("Content-Encoding") != o.contentEncoding ||
				st.ChecksumCRC32C != base64.StdEncoding.EncodeToString(wantCRC) || len(st.UserMetadata) != len(o.metadata) {
				ft.t.Errorf("%q: stored %s %v %v crc %s, want %s %s crc %s and %d custom keys", name, st.ContentType, st.Metadata, st.UserMetadata, st.ChecksumCRC32C, o.contentType, o.cacheControl, base64.StdEncoding.EncodeToString(wantCRC), len(o.metadata))
			}
			for k, v := range o.metadata {
				if got := st.UserMetadata[http.CanonicalHeaderKey(k)]; got != v {
					ft.t.Errorf("%q: custom metadata %q = %q, want %q", name, k, got, v)
				}
			}
		}
	}
}

func filesKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// filesS3Rejects are the objects of filesDemo that MinIO cannot hold: it
// refuses "." and ".." segments and segments over 255 bytes, drops a
// leading "/" and merges "//" (so "/lead" would be the object "lead"), and
// S3 keeps only header-token metadata keys.
var filesS3Rejects = []string{"../up", "a/../b", "dot/./x", "/lead", "//double", "trail/", strings.Repeat("n", 1020), "meta/unicode-key.txt"}

// TestFilesToS3AndDirectory copies a bucket of small, empty, large,
// compressed and oddly named objects to MinIO and to a directory, compares
// them object by object, and checks that a re-run copies nothing.
func TestFilesToS3AndDirectory(t *testing.T) {
	src := newFilesSource(t)
	objs := filesDemo(1, 300, []int{105 << 20, 33 << 20, 31 << 20})
	src.seed(objs)
	t.Logf("seeded %d objects", len(objs))

	t.Run("S3", func(t *testing.T) {
		ft := newFilesTarget(t, src, true)
		s, res := ft.migrate(1, "--workers", "4", "--batch-size", "40", "--objects-part-size", "16MiB")
		if !strings.Contains(res.Stderr, "rejected") {
			t.Errorf("stderr does not report the rejects:\n%s", res.Stderr)
		}
		ft.compare(src, filesS3Rejects)
		if s.Totals.Read != int64(len(objs)) || s.Totals.Changed != s.Totals.Loaded {
			t.Errorf("first run: %+v, want %d read, all loaded ones changed", s.Totals, len(objs))
		}
		before := ft.s3Versions()
		s, _ = ft.migrate(0, "--restart", "--allow-rejects", "--workers", "4")
		if s.Totals.Read != int64(len(objs)) || s.Totals.Changed != 0 {
			t.Errorf("re-run: %+v, want every object read and nothing changed", s.Totals)
		}
		if after := ft.s3Versions(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the re-run rewrote objects")
		}
	})
	t.Run("Directory", func(t *testing.T) {
		ft := newFilesTarget(t, src, false)
		ft.migrate(0, "--allow-rejects", "--workers", "3", "--batch-size", "25")
		ft.compare(src, []string{"../up", "a/../b", "dot/./x", "/lead", "//double", "trail/", strings.Repeat("n", 1020), "a|a/b"})
		for _, name := range []string{"ü/ß.txt", "videos/big-1.mp4"} {
			st, err := os.Stat(filepath.Join(ft.dir, name))
			if err != nil || !st.ModTime().Equal(ft.rows()[name].updated) {
				t.Errorf("%q: modification time %v (%v), want the object's update time", name, st.ModTime(), err)
			}
		}
		if entries, _ := os.ReadDir(filepath.Join(ft.dir, ".baasmigrate-tmp")); len(entries) != 0 {
			t.Errorf("temporary files left: %v", entries)
		}
	})
}

// s3Versions lists every version of every object: key → version IDs and
// last-modified times.
func (ft *filesTarget) s3Versions() map[string][]string {
	ft.t.Helper()
	out := map[string][]string{}
	for o := range ft.s3.ListObjects(context.Background(), ft.bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			ft.t.Fatal(o.Err)
		}
		out[o.Key] = append(out[o.Key], fmt.Sprintf("%s@%s", o.VersionID, o.LastModified.Format(time.RFC3339Nano)))
	}
	return out
}

// TestFilesKillAndResume kills the binary (kill -9) several times in the
// middle of copies to a versioned MinIO bucket and to a directory, then
// lets it finish: nothing is missing, every object was uploaded exactly
// once (one version each; the same inode in the directory), and no kill
// left a partial file under an object's name.
func TestFilesKillAndResume(t *testing.T) {
	src := newFilesSource(t)
	large := []int{7 << 20, 9 << 20, 6 << 20, 11 << 20, 8 << 20, 6 << 20}
	objs := filesDemo(7, 700, large)
	src.seed(objs)
	var bigObjects []*filesObject
	for _, o := range objs {
		if len(o.data) > 5<<20 {
			bigObjects = append(bigObjects, o)
		}
	}
	for _, s3 := range []bool{true, false} {
		name := map[bool]string{true: "S3", false: "Directory"}[s3]
		t.Run(name, func(t *testing.T) {
			ft := newFilesTarget(t, src, s3)
			if s3 {
				ft.makeVersionedBucket()
			}
			args := ft.args("--workers", "3", "--batch-size", "15", "--objects-concurrency", "6", "--objects-part-size", "5MiB", "--allow-rejects")
			inodes := map[string]uint64{}
			r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
			killed := 0
			for attempt := 0; attempt < 4; attempt++ {
				target := ft.committed() + 20 + r.IntN(len(objs)/6)
				if clitest.KillAt(t, ft.env, args, int64(target), func() int64 { return int64(ft.committed()) }, time.Minute) {
					killed++
				}
				cut := 0
				if s3 {
					cut = ft.incompleteUploads(bigObjects)
				} else {
					ft.checkNoPartialFiles(src, inodes)
				}
				t.Logf("attempt %d: %d objects committed, %d multipart uploads cut", attempt, ft.committed(), cut)
			}
			if killed < 3 {
				t.Fatalf("only %d of 4 attempts were killed mid-run", killed)
			}
			s, _ := ft.migrate(0, "--workers", "3", "--batch-size", "15", "--objects-concurrency", "6", "--objects-part-size", "5MiB", "--allow-rejects")
			if s.Totals.Read != int64(len(objs)) || len(s.Jobs) != 1 || !s.Jobs[0].Resumed {
				t.Errorf("final run: %+v resumed=%v, want all %d objects read by the resumed run", s.Totals, s.Jobs[0].Resumed, len(objs))
			}
			if s3 {
				ft.compare(src, filesS3Rejects)
				for key, versions := range ft.s3Versions() {
					if len(versions) != 1 {
						t.Errorf("%q was uploaded %d times: %v", key, len(versions), versions)
					}
				}
				// Multipart uploads cut by a kill were aborted when their
				// object was uploaded again.
				if n := ft.incompleteUploads(bigObjects); n != 0 {
					t.Errorf("%d incomplete multipart uploads remain", n)
				}
				return
			}
			ft.compare(src, []string{"../up", "a/../b", "dot/./x", "/lead", "//double", "trail/", strings.Repeat("n", 1020), "a|a/b"})
			recopied := 0
			for rel, ino := range inodes {
				if filesInode(t, filepath.Join(ft.dir, rel)) != ino {
					recopied++
					t.Errorf("%q was complete after a kill and was copied again", rel)
				}
			}
			t.Logf("%d files were complete at some kill; %d copied again", len(inodes), recopied)
		})
	}
}

// TestFilesKillMidMultipart kills the binary while it streams a multipart
// upload (copying only --storage-prefix videos/), then lets it finish:
// each object is complete, uploaded once, and the cut upload is aborted.
func TestFilesKillMidMultipart(t *testing.T) {
	src := newFilesSource(t)
	var objs []*filesObject
	for _, o := range filesDemo(5, 0, []int{23 << 20, 17 << 20, 29 << 20}) {
		if strings.HasPrefix(o.name, "videos/") {
			objs = append(objs, o)
		}
	}
	src.seed(objs)
	ft := newFilesTarget(t, src, true)
	ft.makeVersionedBucket()
	args := []string{"--storage-prefix", "videos/", "--workers", "1", "--objects-concurrency", "1", "--objects-part-size", "5MiB"}
	p := clitest.Start(t, ft.env, ft.args(args...)...)
	cut := 0
	for cut == 0 {
		select {
		case <-p.Done():
			t.Fatalf("the copy ended (exit %d) before a multipart upload in progress was seen:\n%s", p.Result().Code, p.Result().Stderr)
		default:
		}
		cut = ft.incompleteUploads(objs)
	}
	p.Kill()
	s, _ := ft.migrate(0, args...)
	if s.Totals.Read != int64(len(objs)) || !s.Jobs[0].Resumed {
		t.Errorf("final run: %+v, want the %d videos read by the resumed run", s.Totals, len(objs))
	}
	ft.compare(src, nil)
	for key, versions := range ft.s3Versions() {
		if len(versions) != 1 {
			t.Errorf("%q was uploaded %d times", key, len(versions))
		}
	}
	if n := ft.incompleteUploads(objs); n != 0 {
		t.Errorf("%d multipart uploads cut by the kill remain", n)
	}
}

// incompleteUploads counts the incomplete multipart uploads of objs'
// keys. MinIO lists them only per exact object name.
func (ft *filesTarget) incompleteUploads(objs []*filesObject) int {
	n := 0
	for _, o := range objs {
		for u := range ft.s3.ListIncompleteUploads(context.Background(), ft.bucket, o.name, false) {
			if u.Err == nil && u.Key == o.name {
				n++
			}
		}
	}
	return n
}

// checkNoPartialFiles walks the directory target: every file under an
// object's name must be complete (the source's exact bytes), and temporary
// files stay in .baasmigrate-tmp. It records the inode of each file.
func (ft *filesTarget) checkNoPartialFiles(src *filesSource, inodes map[string]uint64) {
	ft.t.Helper()
	if _, err := os.Stat(ft.dir); err != nil {
		return
	}
	err := filepath.WalkDir(ft.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ft.dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".baasmigrate-tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		o, ok := src.objects[rel]
		if !ok {
			ft.t.Errorf("a kill left %q, which is no object's name", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, o.data) {
			ft.t.Errorf("a kill left %q with %d bytes (%v), not the object's %d", rel, len(data), err, len(o.data))
		}
		if _, seen := inodes[rel]; !seen {
			inodes[rel] = filesInode(ft.t, p)
		}
		return nil
	})
	if err != nil {
		ft.t.Fatal(err)
	}
}

func filesInode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Errorf("%v", err)
		return 0
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// filesCorruptingProxy stands between baasmigrate and the storage
// emulator like a faulty network: it flips a byte in downloads of objects
// whose names contain "corrupt-" (only the first download for
// "corrupt-once"), dropping Cloud Storage's checksum header for
// "corrupt-nohash" so that only baasmigrate's own check can notice.
// The returned function resets its memory and returns the number of
// corrupted-object downloads since the last reset.
func filesCorruptingProxy(t *testing.T, upstream string) (string, func() int64) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	var downloads atomic.Int64
	var mu sync.Mutex
	onceDone := map[string]bool{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) {
		direct(r)
		r.Host = u.Host // the emulator tells buckets apart by host name
	}
	proxy.ModifyResponse = func(resp *http.Response) error {
		path := resp.Request.URL.Path
		name := path[strings.LastIndex(path, "/")+1:]
		if !strings.Contains(name, "corrupt-") || resp.Request.Method != http.MethodGet || strings.Contains(path, "/storage/v1/") || resp.StatusCode != http.StatusOK {
			return nil
		}
		downloads.Add(1)
		if strings.Contains(name, "corrupt-once") {
			mu.Lock()
			first := !onceDone[name]
			onceDone[name] = true
			mu.Unlock()
			if !first {
				return nil
			}
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if len(body) > 0 {
			body[len(body)/2] ^= 0x40
		}
		if strings.Contains(name, "nohash") {
			resp.Header.Del("X-Goog-Hash")
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL, func() int64 {
		mu.Lock()
		defer mu.Unlock()
		clear(onceDone)
		return downloads.Swap(0)
	}
}

// TestFilesChecksumMismatch copies through a proxy that corrupts some
// downloads: an object corrupted once is copied on the retry; objects
// corrupted every time are rejected after three copies with the reason,
// and the target never holds their corrupted bytes.
func TestFilesChecksumMismatch(t *testing.T) {
	src := newFilesSource(t)
	r := rand.New(rand.NewPCG(11, 12))
	src.seed([]*filesObject{
		{name: "ok.bin", data: filesRandom(r, 5000), contentType: "application/octet-stream"},
		{name: "corrupt-once.bin", data: filesRandom(r, 70000), contentType: "application/octet-stream"},
		{name: "corrupt-always.bin", data: filesRandom(r, 70000), contentType: "application/octet-stream"},
		{name: "corrupt-nohash-always.bin", data: filesRandom(r, 6<<20+5), contentType: "application/octet-stream"},
	})
	proxyURL, downloads := filesCorruptingProxy(t, src.host)
	for _, s3 := range []bool{true, false} {
		ft := newFilesTarget(t, src, s3)
		ft.env = clitest.Env(append(filesWithout(ft.env, "STORAGE_EMULATOR_HOST"), "STORAGE_EMULATOR_HOST="+proxyURL)...)
		downloads()
		s, _ := ft.migrate(1, "--objects-part-size", "5MiB", "--retry-backoff", "1ms")
		if s.Totals.Rejected != 2 || s.Totals.Loaded != 2 {
			t.Errorf("%s: %+v, want 2 loaded and 2 rejected", ft.url, s.Totals)
		}
		rejects := ft.rejects()
		for _, name := range []string{"corrupt-always.bin", "corrupt-nohash-always.bin"} {
			if !strings.Contains(rejects[name], "checksum mismatch in each of 3 copies") {
				t.Errorf("%s: %q rejected with %q, want a checksum mismatch after 3 copies", ft.url, name, rejects[name])
			}
			if data, err := ft.targetBytes(name); err == nil {
				t.Errorf("%s: the target holds %d bytes of %q", ft.url, len(data), name)
			}
		}
		if !strings.Contains(rejects["corrupt-nohash-always.bin"], "crc32c") {
			t.Errorf("%s: the reason %q does not say which checksum differed", ft.url, rejects["corrupt-nohash-always.bin"])
		}
		if got := downloads(); got != 2+3+3 {
			t.Errorf("%s: %d downloads of corrupted objects, want 2 + 3 + 3", ft.url, got)
		}
		copied := &filesSource{objects: map[string]*filesObject{}}
		for name, o := range src.objects {
			if !strings.Contains(name, "always") {
				copied.objects[name] = o
			}
		}
		ft.compare(copied, []string{"corrupt-always.bin", "corrupt-nohash-always.bin"})
	}
}

func filesWithout(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestFilesDeletedBetweenListAndRead lists a bucket with the real
// extractor, deletes and overwrites objects, then writes the batch through
// the files sink: the two are rejected with a reason saying what happened,
// the rest is copied, and nothing fails.
func TestFilesDeletedBetweenListAndRead(t *testing.T) {
	src := newFilesSource(t)
	src.seed(filesDemo(3, 20, nil))
	ctx := context.Background()
	ex, err := gcs.New(ctx, plugin.Config{"storage-bucket": filesBucket, "storage-emulator-host": src.host})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	var recs []record.Record
	if err := ex.Read(ctx, extractors.Partition{Stream: "s", ID: "p"}, time.Time{}, "", func(r record.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deleted, replaced := "users/u001/photos/img-0001.jpg", "users/u002/photos/img-0002.jpg"
	if err := src.client.Bucket(filesBucket).Object(deleted).Delete(ctx); err != nil {
		t.Fatal(err)
	}
	w := src.client.Bucket(filesBucket).Object(replaced).NewWriter(ctx)
	w.Write([]byte("a new version"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ft := newFilesTarget(t, src, true)
	store, err := objectstore.Open(ft.url, objectstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sink := postgres.NewFiles(store, "", "")
	if err := sink.Prepare(ctx, ft.pool); err != nil {
		t.Fatal(err)
	}
	var rejects map[int]string
	if err := pgx.BeginFunc(ctx, ft.pool, func(tx pgx.Tx) error {
		out, err := sink.Write(ctx, tx, recs)
		rejects = out.Rejects
		return err
	}); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for i, reason := range rejects {
		reasons[recs[i].Key] = reason
	}
	if len(reasons) != len(filesS3Rejects)+2 ||
		!strings.Contains(reasons[deleted], "deleted at the source after it was listed") ||
		!strings.Contains(reasons[replaced], "overwritten at the source after it was listed") {
		t.Errorf("rejects: %v", reasons)
	}
	if got, want := len(ft.rows()), len(recs)-len(filesS3Rejects)-2; got != want {
		t.Errorf("%d rows, want %d", got, want)
	}
}

// TestFilesKeyCollisions migrates objects whose names one target holds as
// one object: "abs" and "/abs" on MinIO (which drops the leading "/"), and
// "Case.txt" and "case.txt" on a directory compared without case (as on
// macOS or Windows, forced here with --objects-case-insensitive). No
// object overwrites another: a key the target would merge is rejected, and
// objects of one key are rejected naming each other — within a batch both,
// across batches the later one, and the summary names both.
func TestFilesKeyCollisions(t *testing.T) {
	src := newFilesSource(t)
	src.seed([]*filesObject{
		{name: "abs", data: []byte("plain name"), contentType: "text/plain"},
		{name: "/abs", data: []byte("leading slash"), contentType: "text/plain"},
		{name: "Case.txt", data: []byte("upper case"), contentType: "text/plain"},
		{name: "case.txt", data: []byte("lower case"), contentType: "text/plain"},
		{name: "keep.txt", data: []byte("unrelated"), contentType: "text/plain"},
	})
	t.Run("S3", func(t *testing.T) {
		ft := newFilesTarget(t, src, true)
		ft.migrate(1)
		ft.compare(src, []string{"/abs"})
		if reason := ft.rejects()["/abs"]; !strings.Contains(reason, `starts with "/"`) || !strings.Contains(reason, `it would be the object "abs"`) {
			t.Errorf("/abs: reason %q", reason)
		}
	})
	t.Run("CaseInsensitiveDirectory", func(t *testing.T) {
		ft := newFilesTarget(t, src, false)
		// One partition, one batch: both are in it.
		ft.migrate(1, "--objects-case-insensitive", "--workers", "1")
		ft.compare(src, []string{"/abs", "Case.txt", "case.txt"})
		rejects := ft.rejects()
		if !strings.Contains(rejects["Case.txt"], `"case.txt"`) || !strings.Contains(rejects["case.txt"], `"Case.txt"`) {
			t.Errorf("the colliding objects do not name each other: %q", rejects)
		}
		for _, name := range []string{"Case.txt", "case.txt"} {
			if _, err := os.Stat(filepath.Join(ft.dir, name)); err == nil {
				t.Errorf("%s was written", name)
			}
		}
	})
	t.Run("CaseInsensitiveDirectoryAcrossBatches", func(t *testing.T) {
		ft := newFilesTarget(t, src, false)
		_, res := ft.migrate(1, "--objects-case-insensitive", "--batch-size", "1", "--workers", "2")
		ft.compare(src, []string{"/abs", "Case.txt|case.txt"})
		rows, rejects := ft.rows(), ft.rejects()
		stored, rejected := "Case.txt", "case.txt"
		if _, ok := rows[stored]; !ok {
			stored, rejected = rejected, stored
		}
		if !strings.Contains(rejects[rejected], "gs://"+filesBucket+"/"+stored) {
			t.Errorf("%s: reason %q does not name %s", rejected, rejects[rejected], stored)
		}
		if !strings.Contains(res.Stdout+res.Stderr, "target key collision") || !strings.Contains(res.Stdout+res.Stderr, "gs://"+filesBucket+"/"+rejected) {
			t.Errorf("the summary does not report the collision:\n%s\n%s", res.Stdout, res.Stderr)
		}
		// Re-runs keep it so.
		ft.migrate(1, "--objects-case-insensitive", "--restart")
		ft.compare(src, []string{"/abs", rejected})
	})
}

// TestFilesTargetOwnership: a directory written by one bucket's job is
// refused to another bucket's job unless it passes --share-target; a file
// already in the directory that baasmigrate did not write is left alone
// (its object rejected) unless --objects-overwrite.
func TestFilesTargetOwnership(t *testing.T) {
	src := newFilesSource(t)
	src.seed([]*filesObject{{name: "a.txt", data: []byte("bucket one"), contentType: "text/plain"},
		{name: "README.txt", data: []byte("from the bucket"), contentType: "text/plain"}})
	const other = "other-files.appspot.com"
	ctx := context.Background()
	if err := src.client.Bucket(other).Create(ctx, "demo-files", nil); err != nil {
		t.Fatal(err)
	}
	w := src.client.Bucket(other).Object("b.txt").NewWriter(ctx)
	w.Write([]byte("bucket two"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ft := newFilesTarget(t, src, false)
	if err := os.MkdirAll(ft.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ft.dir, "README.txt"), []byte("the admin's notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	ft.migrate(1)
	if reason := ft.rejects()["README.txt"]; !strings.Contains(reason, "did not write") || !strings.Contains(reason, "--objects-overwrite") {
		t.Errorf("README.txt: reason %q, want a file baasmigrate did not write", reason)
	}
	if got, _ := os.ReadFile(filepath.Join(ft.dir, "README.txt")); string(got) != "the admin's notes" {
		t.Errorf("README.txt was overwritten: %q", got)
	}
	ft.migrate(0, "--restart", "--objects-overwrite")
	if got, _ := os.ReadFile(filepath.Join(ft.dir, "README.txt")); string(got) != "from the bucket" {
		t.Errorf("--objects-overwrite did not replace README.txt: %q", got)
	}

	args := []string{"migrate", "--only", "files", "--storage-bucket", other, "--objects", ft.url}
	res := clitest.Run(t, ft.env, args...)
	if res.Code != 2 || !strings.Contains(res.Stderr, "--share-target") || !strings.Contains(res.Stderr, filesBucket) {
		t.Fatalf("another bucket's job into the same directory: exit %d, want 2 naming the owner and --share-target\n%s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(ft.dir, "b.txt")); err == nil {
		t.Errorf("the refused job wrote b.txt")
	}
	res = clitest.Run(t, ft.env, append(args, "--share-target")...)
	if res.Code != 0 {
		t.Fatalf("with --share-target: exit %d\n%s", res.Code, res.Stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(ft.dir, "b.txt")); string(got) != "bucket two" {
		t.Errorf("b.txt holds %q", got)
	}
}

// TestFilesCredentialsInURL: credentials in the --objects URL are refused
// with where credentials come from, and the secret is not repeated.
func TestFilesCredentialsInURL(t *testing.T) {
	src := newFilesSource(t)
	src.seed([]*filesObject{{name: "a.txt", data: []byte("a")}})
	ft := newFilesTarget(t, src, true)
	u := strings.Replace(ft.url, "s3://", "s3://someone:Hunter2Secret@", 1)
	res := clitest.Run(t, ft.env, "migrate", "--only", "files", "--storage-bucket", filesBucket, "--objects", u)
	if res.Code != 2 || !strings.Contains(res.Stderr, "AWS_ACCESS_KEY_ID") {
		t.Errorf("exit %d, want 2 saying where credentials come from\n%s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr, "Hunter2Secret") {
		t.Errorf("the secret is repeated:\n%s\n%s", res.Stdout, res.Stderr)
	}
}

// TestFilesKeyCollisionsKillAndResume migrates 150 pairs of names equal but
// for case into a directory compared without case, in small batches over
// three workers, killing the binary (kill -9) mid-run several times, then
// lets it finish: no pair ends with both objects stored; every stored
// object holds its own bytes; every rejected one names the other of its
// pair; and the counts balance.
func TestFilesKeyCollisionsKillAndResume(t *testing.T) {
	src := newFilesSource(t)
	// Pairs of the first kind sort next to each other (mostly one batch);
	// those of the second far apart (other partitions, other workers).
	pairs := make([][2]string, 150)
	var objs []*filesObject
	for i := range pairs {
		pairs[i] = [2]string{fmt.Sprintf("img/%03d.JPG", i), fmt.Sprintf("img/%03d.jpg", i)}
		if i%2 == 1 {
			pairs[i] = [2]string{fmt.Sprintf("Docs/%03d.pdf", i), fmt.Sprintf("docs/%03d.pdf", i)}
		}
		for _, name := range pairs[i] {
			objs = append(objs, &filesObject{name: name, data: []byte("bytes of " + name), contentType: "image/jpeg"})
		}
	}
	src.seed(objs)
	ft := newFilesTarget(t, src, false)
	args := ft.args("--objects-case-insensitive", "--workers", "3", "--batch-size", "3", "--allow-rejects")
	// Objects settled: stored (a row) or rejected.
	settled := func() int64 {
		var n int64
		_ = ft.pool.QueryRow(context.Background(), `SELECT count(*) FROM baasmigrate.rejects`).Scan(&n)
		return n + int64(ft.committed())
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	killed := 0
	for attempt := 0; attempt < 3; attempt++ {
		target := settled() + 20 + int64(r.IntN(50))
		if clitest.KillAt(t, ft.env, args, target, settled, time.Minute) {
			killed++
		}
	}
	if killed < 2 {
		t.Fatalf("only %d of 3 attempts were killed mid-run", killed)
	}
	s, _ := ft.migrate(0, "--objects-case-insensitive", "--workers", "3", "--batch-size", "3", "--allow-rejects")
	if s.Totals.Read != int64(len(objs)) {
		t.Errorf("final run read %d, want %d", s.Totals.Read, len(objs))
	}
	rows, rejects := ft.rows(), ft.rejects()
	var wantRejected []string
	for _, pair := range pairs {
		upper, lower := pair[0], pair[1]
		_, rowU := rows[upper]
		_, rowL := rows[lower]
		switch {
		case rowU && rowL:
			t.Errorf("%s and %s are both stored", upper, lower)
		case rowU:
			wantRejected = append(wantRejected, lower)
		case rowL:
			wantRejected = append(wantRejected, upper)
		default:
			wantRejected = append(wantRejected, upper, lower)
		}
		for name, other := range map[string]string{upper: lower, lower: upper} {
			if reason, ok := rejects[name]; ok && !strings.Contains(reason, other) {
				t.Errorf("%s: reason %q does not name %s", name, reason, other)
			}
		}
	}
	// compare reads each stored object back by its name: on this
	// case-sensitive disk, a file under the other name of its pair would
	// not be found.
	ft.compare(src, wantRejected)
}
