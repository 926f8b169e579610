package gcs_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/gcs"
	"github.com/baasmigrate/baasmigrate/extractors/gcs/gcstest"
	"github.com/baasmigrate/baasmigrate/internal/faultnet"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// oddNames are names Cloud Storage accepts that trip up naive code.
var oddNames = []string{
	"a b", "ü/ß", "x#y", "q?z", "p%20c", "../up", "a/../b", "/lead", "//double", "dot/./x",
	"trail/", "a", "a/b", "plus+sign", `back\slash`, "tab\tname", "emoji 😀", "zero",
	strings.Repeat("n", 1020),
	strings.Repeat("d123456789/", 93), // 1,023 bytes in short components
}

type fixture struct {
	ctx    context.Context
	client *storage.Client
	bucket string
	host   string
	proc   *os.Process // the private fake-gcs-server
	data   map[string][]byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	host, proc := gcstest.MemoryEmulatorProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	client, err := storage.NewClient(ctx, option.WithEndpoint(host+"/storage/v1/"), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	f := &fixture{ctx: ctx, client: client, bucket: "bkt", host: host, proc: proc, data: map[string][]byte{}}
	if err := client.Bucket(f.bucket).Create(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) put(t *testing.T, name string, data []byte, attrs func(w *storage.Writer)) *storage.ObjectAttrs {
	t.Helper()
	w := f.client.Bucket(f.bucket).Object(name).NewWriter(f.ctx)
	if attrs != nil {
		attrs(w)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("uploading %q: %v", name, err)
	}
	f.data[name] = data
	return w.Attrs()
}

func (f *fixture) extractor(t *testing.T, extra plugin.Config) *gcs.Extractor {
	t.Helper()
	cfg := plugin.Config{"storage-bucket": f.bucket, "storage-emulator-host": f.host, "storage-page-size": "7"}
	for k, v := range extra {
		cfg[k] = v
	}
	ex, err := gcs.New(f.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func readAll(t *testing.T, ctx context.Context, ex extractors.Extractor, p extractors.Partition, after string) []record.Record {
	t.Helper()
	var out []record.Record
	if err := ex.Read(ctx, p, time.Time{}, after, func(r record.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("reading partition %s after %q: %v", p.ID, after, err)
	}
	return out
}

// TestPartitionsCoverBucketOnce plans a bucket of odd names and varied sizes
// into partitions and checks that they hold every object exactly once, in
// name order, and that reading a partition again after any cursor yields
// exactly the rest.
func TestPartitionsCoverBucketOnce(t *testing.T) {
	f := newFixture(t)
	for _, n := range oddNames {
		f.put(t, n, []byte("content of "+n), nil)
	}
	for i := range 150 {
		f.put(t, fmt.Sprintf("users/u%03d/photo.jpg", i), bytes.Repeat([]byte{byte(i)}, i*97), nil)
	}
	ex := f.extractor(t, nil)
	streams, err := ex.Plan(f.ctx, 5, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || len(streams[0].Partitions) < 3 {
		t.Fatalf("planned %+v, want one stream of several partitions", streams)
	}
	ps := streams[0].Partitions
	if ps[0].Start != "" || ps[len(ps)-1].End != "" {
		t.Errorf("partitions %+v do not cover the whole name space", ps)
	}
	var names []string
	for i, p := range ps {
		if i > 0 && p.Start != ps[i-1].End {
			t.Errorf("partition %s starts at %q, previous ends at %q", p.ID, p.Start, ps[i-1].End)
		}
		recs := readAll(t, f.ctx, ex, p, "")
		for j, r := range recs {
			names = append(names, r.Key)
			rest := readAll(t, f.ctx, ex, p, r.Cursor)
			if len(rest) != len(recs)-j-1 || (len(rest) > 0 && rest[0].Key != recs[j+1].Key) {
				t.Fatalf("partition %s after %q: %d records, want %d", p.ID, r.Cursor, len(rest), len(recs)-j-1)
			}
		}
	}
	want := make([]string, 0, len(f.data))
	for n := range f.data {
		want = append(want, n)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("partitions yielded %d names, want the %d objects exactly once in order", len(names), len(want))
	}
}

// TestConformance runs the shared extractor suite over a bucket of odd
// names and varied sizes.
func TestConformance(t *testing.T) {
	f := newFixture(t)
	for _, n := range oddNames {
		f.put(t, n, []byte("content of "+n), nil)
	}
	for i := range 60 {
		f.put(t, fmt.Sprintf("users/u%03d/photo.jpg", i), bytes.Repeat([]byte{byte(i)}, i*211), nil)
	}
	want := map[string]record.Record{}
	probe := f.extractor(t, nil)
	for _, r := range readAll(t, f.ctx, probe, extractors.Partition{Stream: "s", ID: "p"}, "") {
		want[r.Key] = r
	}
	if len(want) != len(f.data) {
		t.Fatalf("listed %d objects, uploaded %d", len(want), len(f.data))
	}
	extractortest.Run(t, extractortest.Harness{
		New:   func(t *testing.T) extractors.Extractor { return f.extractor(t, nil) },
		Want:  want,
		Times: true,
		Unreachable: func(t *testing.T) extractors.Extractor {
			closed := "http://" + faultnet.ClosedAddr(t)
			ex, err := gcs.New(f.ctx, plugin.Config{"storage-bucket": "b", "storage-emulator-host": closed, "retry-attempts": "2", "retry-backoff": "1ms"})
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
	})
}

// TestRecordAttributesAndBytes checks every attribute of a record and that
// Open returns the stored bytes, gzip-encoded ones undecompressed.
func TestRecordAttributesAndBytes(t *testing.T) {
	f := newFixture(t)
	data := []byte("hello, files")
	attrs := f.put(t, "photos/ü 1.jpg", data, func(w *storage.Writer) {
		w.ContentType = "image/jpeg"
		w.CacheControl = "public, max-age=60"
		w.ContentDisposition = `inline; filename="a.jpg"`
		w.ContentLanguage = "de"
		w.Metadata = map[string]string{"firebaseStorageDownloadTokens": "tok-1,tok-2", "Mixed Key": "Wert ü"}
	})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("compress me "), 100))
	zw.Close()
	f.put(t, "text.gz", gz.Bytes(), func(w *storage.Writer) {
		w.ContentType = "text/plain"
		w.ContentEncoding = "gzip"
	})
	f.put(t, "empty", nil, nil)

	ex := f.extractor(t, nil)
	recs := readAll(t, f.ctx, ex, extractors.Partition{Stream: "s", ID: "p"}, "")
	if len(recs) != 3 {
		t.Fatalf("read %d records, want 3", len(recs))
	}
	byKey := map[string]record.Record{}
	for _, r := range recs {
		byKey[r.Key] = r
		if r.Kind != record.KindFile || r.Cursor != r.Key || r.Open == nil {
			t.Errorf("record %q: kind %s cursor %q open %v", r.Key, r.Kind, r.Cursor, r.Open != nil)
		}
	}
	r := byKey["photos/ü 1.jpg"]
	got, err := record.FileFrom(r)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	want := record.File{
		Bucket: f.bucket, Name: "photos/ü 1.jpg", Size: int64(len(data)),
		ContentType: "image/jpeg", CacheControl: "public, max-age=60", ContentDisposition: `inline; filename="a.jpg"`, ContentLanguage: "de",
		MD5: sum[:], CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), HasCRC32C: true,
		Generation: attrs.Generation, Metageneration: attrs.Metageneration, StorageClass: attrs.StorageClass,
		Metadata:       map[string]string{"firebaseStorageDownloadTokens": "tok-1,tok-2", "Mixed Key": "Wert ü"},
		DownloadTokens: []string{"tok-1", "tok-2"},
		Created:        r.CreateTime, Updated: r.UpdateTime,
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("file\n got %+v\nwant %+v", got, want)
	}
	if r.CreateTime.IsZero() || r.UpdateTime.Before(r.CreateTime) || r.CreateTime.Sub(attrs.Created).Abs() > time.Millisecond {
		t.Errorf("times %v / %v, want the object's (%v)", r.CreateTime, r.UpdateTime, attrs.Created)
	}
	if toks := got.DownloadTokens; !slices.Equal(toks, []string{"tok-1", "tok-2"}) {
		t.Errorf("download tokens %v", toks)
	}
	for key, body := range map[string][]byte{"photos/ü 1.jpg": data, "text.gz": gz.Bytes(), "empty": nil} {
		rc, err := byKey[key].Open(f.ctx)
		if err != nil {
			t.Fatalf("opening %q: %v", key, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, body) {
			t.Errorf("%q: read %d bytes (err %v), want the %d stored bytes", key, len(b), err, len(body))
		}
	}
}

// TestOpenAfterDeleteOrOverwrite checks that an object deleted or replaced
// between listing and reading is reported as gone, matching fs.ErrNotExist.
func TestOpenAfterDeleteOrOverwrite(t *testing.T) {
	f := newFixture(t)
	f.put(t, "deleted", []byte("one"), nil)
	f.put(t, "replaced", []byte("two"), nil)
	ex := f.extractor(t, nil)
	recs := readAll(t, f.ctx, ex, extractors.Partition{Stream: "s", ID: "p"}, "")
	if err := f.client.Bucket(f.bucket).Object("deleted").Delete(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.put(t, "replaced", []byte("two, again"), nil)
	for _, r := range recs {
		_, err := r.Open(f.ctx)
		var gone *gcs.GoneError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &gone) {
			t.Fatalf("opening %q: %v, want a GoneError", r.Key, err)
		}
		if (gone.Now != 0) != (r.Key == "replaced") {
			t.Errorf("%q: %v", r.Key, err)
		}
	}
}

// TestDefaultBucketAndMissingBucket checks the Firebase default bucket name
// and the error for a bucket that does not exist.
func TestDefaultBucketAndMissingBucket(t *testing.T) {
	f := newFixture(t)
	ex, err := gcs.New(f.ctx, plugin.Config{"firebase-project": "demo-x", "storage-emulator-host": f.host})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if ex.Bucket() != "demo-x.appspot.com" {
		t.Errorf("bucket %q, want demo-x.appspot.com", ex.Bucket())
	}
	_, err = ex.Plan(f.ctx, 4, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("planning a missing bucket: %v", err)
	}
}

// TestReadResumesAfterTheSourceFreezes stops the Cloud Storage server
// (SIGSTOP) in the middle of an object's bytes for longer than
// --source-timeout: the silent read is cut, the cut is logged as a retry,
// and once the server continues (SIGCONT) the read resumes at the byte
// where it stopped and delivers the object exactly.
func TestReadResumesAfterTheSourceFreezes(t *testing.T) {
	f := newFixture(t)
	data := make([]byte, 48<<20)
	rand.NewChaCha8([32]byte{4, 2}).Read(data)
	f.put(t, "big.bin", data, func(w *storage.Writer) { w.ChunkSize = 16 << 20 })
	ex := f.extractor(t, plugin.Config{"source-timeout": "1s", "retry-backoff": "1ms"})
	recs := readAll(t, f.ctx, ex, extractors.Partition{Stream: "s", ID: "p"}, "")

	retries := make(chan string, 16)
	ctx := retry.WithLogger(f.ctx, faultnet.OnLog("retrying", func(a map[string]string) {
		select {
		case retries <- a["err"]:
		default:
		}
	}))
	rc, err := recs[0].Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if err := f.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := make(chan string, 1)
	go func() {
		line := <-retries // the first retry: the read was cut
		f.proc.Signal(syscall.SIGCONT)
		continued <- line
	}()
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading after the freeze: %v", err)
	}
	select {
	case line := <-continued:
		if !strings.Contains(line, "no answer for 1s (--source-timeout)") {
			t.Errorf("the retry does not say the source was silent: %s", line)
		}
	default:
		t.Fatal("the object was read through a frozen server without a retry: the freeze came too late to test anything")
	}
	if got := append(head, rest...); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes after resuming, want the %d stored (equal: false)", len(got), len(data))
	}
}

// TestDownloadTokens: the tokens are the metadata value split at commas,
// in order, trimmed, without empty entries; nil without any.
func TestDownloadTokens(t *testing.T) {
	for in, want := range map[string][]string{
		"":                 nil,
		" , ,":             nil,
		"a":                {"a"},
		"tok-2, tok-1,,x ": {"tok-2", "tok-1", "x"},
	} {
		if got := gcs.DownloadTokens(map[string]string{gcs.DownloadTokensKey: in, "other": "y,z"}); !slices.Equal(got, want) {
			t.Errorf("DownloadTokens(%q) = %q, want %q", in, got, want)
		}
	}
	if got := gcs.DownloadTokens(nil); got != nil {
		t.Errorf("DownloadTokens(nil) = %q", got)
	}
}

// TestBucketAbilities: the extractor names its bucket and prefix for plan
// and verify, and objects as gs:// URLs.
func TestBucketAbilities(t *testing.T) {
	ex, err := gcs.New(context.Background(), plugin.Config{"storage-bucket": "b", "storage-prefix": "p/", "storage-emulator-host": "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	var e extractors.Extractor = ex
	b, ok := e.(extractors.Bucketed)
	if !ok || b.Bucket() != "b" || b.Prefix() != "p/" {
		t.Errorf("Bucketed: %v, bucket %q prefix %q", ok, ex.Bucket(), ex.Prefix())
	}
	if got := extractors.ObjectURL(e, "other", "a/b c"); got != "gs://other/a/b c" {
		t.Errorf("ObjectURL = %q", got)
	}
}
