package postgres

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// fileRecord is a file record whose bytes are data (nil content: the
// object is gone at the source).
func fileRecord(name string, data []byte, gone bool, f record.File) record.Record {
	sum := md5.Sum(data)
	f.Bucket, f.Name, f.Size = "demo.appspot.com", name, int64(len(data))
	f.MD5, f.CRC32C, f.HasCRC32C = sum[:], crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), true
	f.Generation, f.Metageneration = 17, 2
	f.Created = time.Date(2023, 1, 2, 3, 4, 5, 678000, time.UTC)
	f.Updated = f.Created.Add(time.Hour)
	return record.Record{
		Kind: record.KindFile, Key: name, CreateTime: f.Created, UpdateTime: f.Updated, Fields: f.Fields(), Cursor: name,
		Open: func(context.Context) (io.ReadCloser, error) {
			if gone {
				return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	}
}

// newDirectoryFiles is a files sink into public.files of a fresh database
// and a fresh directory opened with opts, prepared.
func newDirectoryFiles(t *testing.T, opts objectstore.Options) (*pgxpool.Pool, string, *Files) {
	t.Helper()
	pool, dir := testenv.NewPool(t), t.TempDir()
	sink, err := filesSink(t, pool, dir, opts, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return pool, dir, sink
}

// TestFilesWriteRowsAfterCopies writes batches through the files sink into
// a directory target and checks the rows, the changed counts of a first
// run, a re-run, a run after an object vanished from the target, and a run
// after a crash between upload and commit (objects present, no rows).
func TestFilesWriteRowsAfterCopies(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	dir := t.TempDir()
	store, err := objectstore.Open("file://"+dir, objectstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sink := NewFiles(store, "media", "")
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := sink.Prepare(ctx, pool); err != nil {
		t.Fatalf("Prepare is not idempotent: %v", err)
	}
	recs := []record.Record{
		fileRecord("users/ü 1/avatar.png", []byte("png bytes"), false, record.File{
			ContentType: "image/png", CacheControl: "max-age=60", ContentDisposition: "inline", ContentEncoding: "identity",
			ContentLanguage: "en", StorageClass: "STANDARD",
			Metadata:       map[string]string{"firebaseStorageDownloadTokens": "t1,t2", "Custom Key": "v"},
			DownloadTokens: []string{"t1", "t2"},
		}),
		fileRecord("empty", nil, false, record.File{}),
		fileRecord("../escape", []byte("no"), false, record.File{}),
		fileRecord("gone", []byte("x"), true, record.File{}),
	}
	write := func(recs []record.Record) (changed int64, rejects map[int]string) {
		t.Helper()
		var out loadersOutcome
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			o, err := sink.Write(ctx, tx, recs)
			out = loadersOutcome{o.Changed[sink.Table()], o.Rejects, o.Tables}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, tbl := range out.tables {
			if tbl != "files" {
				t.Errorf("record %d went to table %q, want files", i, tbl)
			}
		}
		return out.changed, out.rejects
	}
	changed, rejects := write(recs)
	if changed != 2 || len(rejects) != 2 || !strings.Contains(rejects[2], `".." path segment`) || !strings.Contains(rejects[3], "could not be read") {
		t.Fatalf("first write: changed %d, rejects %v", changed, rejects)
	}
	var (
		bucket, name, md5Hex, crcHex, ctype, cc, cd, ce, cl, sc, target, key string
		size, gen, metagen                                                   int64
		meta                                                                 map[string]string
		tokens                                                               []string
		created, updated                                                     time.Time
	)
	err = pool.QueryRow(ctx, `SELECT bucket, name, size, md5, crc32c, generation, metageneration, content_type, cache_control,
		content_disposition, content_encoding, content_language, storage_class, metadata, download_tokens, created_at, updated_at,
		target, target_key FROM media.files WHERE name = $1`, "users/ü 1/avatar.png").Scan(
		&bucket, &name, &size, &md5Hex, &crcHex, &gen, &metagen, &ctype, &cc, &cd, &ce, &cl, &sc, &meta, &tokens, &created, &updated, &target, &key)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("png bytes")
	sum := md5.Sum(data)
	got := fmt.Sprint(bucket, size, md5Hex, crcHex, gen, metagen, ctype, cc, cd, ce, cl, sc, meta, tokens, created.UTC(), updated.UTC(), target, key)
	want := fmt.Sprint("demo.appspot.com", len(data), fmt.Sprintf("%x", sum), fmt.Sprintf("%08x", crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))),
		17, 2, "image/png", "max-age=60", "inline", "identity", "en", "STANDARD",
		map[string]string{"firebaseStorageDownloadTokens": "t1,t2", "Custom Key": "v"}, []string{"t1", "t2"},
		time.Date(2023, 1, 2, 3, 4, 5, 678000, time.UTC), time.Date(2023, 1, 2, 4, 4, 5, 678000, time.UTC), "file://"+dir, "users/ü 1/avatar.png")
	if got != want {
		t.Errorf("row\n got %s\nwant %s", got, want)
	}
	var rows int
	pool.QueryRow(ctx, `SELECT count(*) FROM media.files`).Scan(&rows)
	if rows != 2 {
		t.Errorf("%d rows, want 2 (rejected objects have none)", rows)
	}

	if changed, rejects = write(recs[:2]); changed != 0 || len(rejects) != 0 {
		t.Errorf("re-run: changed %d, rejects %v; want nothing changed", changed, rejects)
	}
	if err := os.Remove(filepath.Join(dir, "empty")); err != nil {
		t.Fatal(err)
	}
	if changed, _ = write(recs[:2]); changed != 1 {
		t.Errorf("after an object vanished from the target: changed %d, want the one copy", changed)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM media.files`); err != nil {
		t.Fatal(err)
	}
	if changed, _ = write(recs[:2]); changed != 2 {
		t.Errorf("objects present without rows: changed %d, want the 2 rows inserted", changed)
	}
}

// gsURL names objects as the Cloud Storage extractor does.
func gsURL(bucket, name string) string { return "gs://" + bucket + "/" + name }

// TestFilesObjectName: objects are named "bucket/name" in messages unless
// the source's naming is set.
func TestFilesObjectName(t *testing.T) {
	f := NewFiles(nil, "", "")
	if got := f.objectName("b", "a/n"); got != "b/a/n" {
		t.Errorf("default name %q, want b/a/n", got)
	}
	f.SetObjectURL(gsURL)
	if got := f.objectName("b", "a/n"); got != "gs://b/a/n" {
		t.Errorf("name %q, want gs://b/a/n", got)
	}
}

type loadersOutcome struct {
	changed int64
	rejects map[int]string
	tables  []string
}

// TestFilesRefuseAKeyAnotherBucketHolds migrates two buckets into one
// directory without a prefix: the second bucket's object with the same name
// is rejected with the reason instead of overwriting the first one's.
func TestFilesRefuseAKeyAnotherBucketHolds(t *testing.T) {
	ctx := context.Background()
	pool, dir, sink := newDirectoryFiles(t, objectstore.Options{})
	sink.SetObjectURL(gsURL)
	write := func(recs ...record.Record) map[int]string {
		t.Helper()
		var rejects map[int]string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			out, err := sink.Write(ctx, tx, recs)
			rejects = out.Rejects
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return rejects
	}
	first := fileRecord("avatar.png", []byte("from bucket A"), false, record.File{})
	if rejects := write(first); len(rejects) != 0 {
		t.Fatalf("first bucket: %v", rejects)
	}
	second := fileRecord("avatar.png", []byte("from bucket B, other bytes"), false, record.File{})
	f, _ := record.FileFrom(second)
	f.Bucket = "other.appspot.com"
	second.Fields = f.Fields()
	rejects := write(second, fileRecord("new.png", []byte("n"), false, record.File{}))
	if len(rejects) != 1 || !strings.Contains(rejects[0], "gs://demo.appspot.com/avatar.png") {
		t.Fatalf("second bucket: rejects %v; want avatar.png refused, naming the first bucket's object", rejects)
	}
	data, err := os.ReadFile(filepath.Join(dir, "avatar.png"))
	if err != nil || string(data) != "from bucket A" {
		t.Fatalf("the first bucket's object was overwritten: %q, %v", data, err)
	}
}

// TestFilesRejectNamesTextCannotHold: an object name with a NUL byte or
// invalid UTF-8 cannot be a key of the files table; the object is rejected
// with the name quoted, before its bytes are copied, and the rest of the
// batch loads.
func TestFilesRejectNamesTextCannotHold(t *testing.T) {
	ctx := context.Background()
	pool, dir, sink := newDirectoryFiles(t, objectstore.Options{})
	recs := []record.Record{
		fileRecord("a\x00b.png", []byte("nul"), false, record.File{}),
		fileRecord("ok.png", []byte("ok"), false, record.File{}),
		fileRecord("bad\xff.png", []byte("latin-1"), false, record.File{}),
		fileRecord("meta.png", []byte("m"), false, record.File{Metadata: map[string]string{"k": "v\x00"}}),
	}
	var out loaders.Outcome
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) (err error) {
		out, err = sink.Write(ctx, tx, recs)
		return err
	})
	if err != nil {
		t.Fatalf("a batch with unstorable names failed as a whole: %v", err)
	}
	for i, want := range map[int]string{0: `"a\x00b.png"`, 2: `"bad\xff.png"`, 3: `"v\x00"`} {
		if !strings.Contains(out.Rejects[i], want) {
			t.Errorf("record %d: reject %q does not name %s", i, out.Rejects[i], want)
		}
	}
	if len(out.Rejects) != 3 {
		t.Fatalf("rejects %v; want 3", out.Rejects)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad\xff.png")); err == nil {
		t.Error("a rejected object was copied")
	}
	var names []string
	rows, _ := pool.Query(ctx, `SELECT name FROM files`)
	if names, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(names) != 1 || names[0] != "ok.png" {
		t.Fatalf("files rows %v, %v; want ok.png", names, err)
	}
	if _, reason := sink.Layout(recs[0]); !strings.Contains(reason, `"a\x00b.png"`) {
		t.Fatalf("Layout does not refuse the NUL name: %q", reason)
	}
}
