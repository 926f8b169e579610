package diff

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

const filesTestBucket = "demo.appspot.com"

// filesTestRecord is the record of an object of filesTestBucket holding
// data, with every attribute set; times have nanoseconds, which neither
// side keeps.
func filesTestRecord(name string, data []byte, generation int64) record.Record {
	sum := md5.Sum(data)
	created := time.Date(2023, 1, 2, 3, 4, 5, 123456789, time.UTC)
	f := record.File{
		Bucket: filesTestBucket, Name: name, Size: int64(len(data)),
		ContentType: "image/png", CacheControl: "max-age=60", ContentDisposition: `inline; filename="ü.png"`,
		ContentEncoding: "identity", ContentLanguage: "fr", StorageClass: "STANDARD",
		MD5: sum[:], CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), HasCRC32C: true,
		Generation: generation, Metageneration: 3,
		Metadata:       map[string]string{"firebaseStorageDownloadTokens": "t-1, t-2", "z": "last", "a": "<&> \"quoted\"", "ü": "ß 😀"},
		DownloadTokens: []string{"t-1", "t-2"},
		Created:        created, Updated: created.Add(time.Duration(generation) * time.Hour),
	}
	return record.Record{
		Kind: record.KindFile, Key: name, CreateTime: f.Created, UpdateTime: f.Updated, Fields: f.Fields(), Cursor: name,
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// filesTestTarget is a database and a directory target.
type filesTestTarget struct {
	pool  *pgxpool.Pool
	dir   string
	store *objectstore.Store
	sink  *postgres.Files
}

func newFilesTestTarget(t *testing.T) *filesTestTarget {
	t.Helper()
	pool := testenv.NewPool(t)
	dir := filepath.Join(t.TempDir(), "objects")
	store, err := objectstore.Open("file://"+dir, objectstore.Options{Prefix: "media/"})
	if err != nil {
		t.Fatal(err)
	}
	return &filesTestTarget{pool: pool, dir: dir, store: store, sink: postgres.NewFiles(store, "", "")}
}

// migrate writes recs through the files sink, as migrate does.
func (ft *filesTestTarget) migrate(t *testing.T, recs []record.Record) {
	t.Helper()
	ctx := context.Background()
	if err := ft.sink.Prepare(ctx, ft.pool); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, ft.pool, func(tx pgx.Tx) error {
		out, err := ft.sink.Write(ctx, tx, recs)
		if err == nil && len(out.Rejects) > 0 {
			err = fmt.Errorf("rejects: %v", out.Rejects)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// compare compares recs, given in any order, with the target — reading
// the table in the adapter's chunks and again 3 rows at a time, which
// must make no difference.
func (ft *filesTestTarget) compare(t *testing.T, prefix string, recs []record.Record) (*TableReport, int64) {
	t.Helper()
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b record.Record) int { return strings.Compare(a.Key, b.Key) }) // the bucket's listing order
	var trs []*TableReport
	var sizes []int64
	for _, chunk := range []int{fileChunk, 3} {
		a := NewFiles(FilesConfig{Store: ft.store, Bucket: filesTestBucket, Prefix: prefix})
		a.chunk = chunk
		rep, err := Compare(context.Background(), &recordsExtractor{recs: recs}, ft.pool, a, Options{Samples: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Tables) != 1 || rep.Tables[0].Table != "public.files" {
			t.Fatalf("tables %+v, want public.files alone", rep.Tables)
		}
		tr, copyBytes := rep.Tables[0], a.BytesToCopy()
		if a.copy.missing != tr.MissingInTarget || a.copy.mismatched != tr.Mismatched {
			t.Errorf("the bytes tally counted %d missing and %d mismatched, the engine %d and %d", a.copy.missing, a.copy.mismatched, tr.MissingInTarget, tr.Mismatched)
		}
		trs, sizes = append(trs, tr), append(sizes, copyBytes)
	}
	if fmt.Sprint(*trs[0], trs[0].SampleLines()) != fmt.Sprint(*trs[1], trs[1].SampleLines()) || sizes[0] != sizes[1] {
		t.Errorf("chunks of %d rows and of 3 differ:\n%+v %d\n%+v %d", fileChunk, trs[0], sizes[0], trs[1], sizes[1])
	}
	return trs[0], sizes[0]
}

func (ft *filesTestTarget) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	tag, err := ft.pool.Exec(context.Background(), sql, args...)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("%s: %v (%d rows)", sql, err, tag.RowsAffected())
	}
}

// TestFilesCompare compares a bucket with a metadata table whose name
// column sorts linguistically ("a" < "B" there, not in the bucket's byte
// order) and a directory target: all inserts with every byte to copy on
// an empty target; identical after migrate; then exactly the changes made
// on either side, the fields named — a source object overwritten, its row
// tampered with (content type, custom metadata, tokens), an object
// removed, overwritten with other bytes of its size, truncated, a row
// removed, a row added, a row of another bucket (not compared), and an
// object the target cannot hold (rejected with the sink's reason); a
// prefix compares only its names.
func TestFilesCompare(t *testing.T) {
	ft := newFilesTestTarget(t)
	ctx := context.Background()
	names := []string{"a", "B", "é/1", "z", "😀", "ｚ", "dir/x", "dir/y", "empty", "kept"}
	var recs []record.Record
	var total int64
	for i, n := range names {
		data := bytes.Repeat([]byte(n), 10+i)
		if n == "empty" {
			data = nil
		}
		recs = append(recs, filesTestRecord(n, data, 1))
		total += int64(len(data))
	}

	tr, copyBytes := ft.compare(t, "", recs)
	if tr.Source != int64(len(names)) || tr.MissingInTarget != tr.Source || tr.Matching+tr.Mismatched+tr.ExtraInTarget+tr.Rejected != 0 || copyBytes != total {
		t.Fatalf("an empty target: %+v, %d bytes to copy; want %d inserts and %d bytes", tr, copyBytes, len(names), total)
	}

	ft.migrate(t, recs)
	if _, err := ft.pool.Exec(ctx, `ALTER TABLE public.files ALTER COLUMN name TYPE text COLLATE "en-x-icu"`); err != nil {
		t.Fatal(err)
	}
	tr, copyBytes = ft.compare(t, "", recs)
	if !tr.Identical() || tr.Matching != int64(len(names)) || copyBytes != 0 {
		t.Fatalf("after migrate: %+v %q, %d bytes to copy", tr, tr.SampleLines(), copyBytes)
	}

	// The changes.
	changed := filesTestRecord("a", []byte("new bytes of a"), 2)
	recs[0] = changed
	recs = append(recs, filesTestRecord("../escape", []byte("x"), 1))
	for _, q := range []string{
		`UPDATE public.files SET content_type = 'text/plain' WHERE name = 'é/1'`,
		`UPDATE public.files SET metadata = metadata || '{"added": "1"}' WHERE name = '😀'`,
		`UPDATE public.files SET download_tokens = '{t-1}' WHERE name = 'kept'`,
		`DELETE FROM public.files WHERE name = 'ｚ'`,
		`INSERT INTO public.files (bucket, name, size) VALUES ('demo.appspot.com', 'extra', 1)`,
		`INSERT INTO public.files (bucket, name, size) VALUES ('other.appspot.com', 'z', 1)`,
	} {
		ft.exec(t, q)
	}
	if err := os.Remove(filepath.Join(ft.dir, "media", "B")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ft.dir, "media", "dir", "x"), bytes.Repeat([]byte("X"), 80), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ft.dir, "media", "z"), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, copyBytes = ft.compare(t, "", recs)
	want := []string{
		"extra_in_target extra",
		"mismatched B object",
		"mismatched a crc32c,generation,md5,size,updated_at",
		"mismatched dir/x object_checksum",
		"mismatched kept download_tokens",
		"mismatched z object_size",
		"mismatched é/1 content_type",
		"mismatched 😀 metadata",
		"missing_in_target ｚ",
		`rejected ../escape: object "../escape" cannot be stored as "media/../escape" in file://` + filepath.ToSlash(ft.dir) + `: it has a ".." path segment`,
	}
	if got := tr.SampleLines(); !slices.Equal(got, want) {
		t.Errorf("after the changes:\n %q\nwant\n %q", got, want)
	}
	if tr.Source != int64(len(names)) || tr.Matching != 2 || tr.Mismatched != 7 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 1 || tr.Rejected != 1 {
		t.Errorf("after the changes: %+v", tr)
	}
	var wantBytes int64
	for _, r := range recs {
		if n := r.Key; n != "dir/y" && n != "empty" && n != "../escape" {
			wantBytes += r.Fields[record.FileFieldSize].IntValue()
		}
	}
	if copyBytes != wantBytes {
		t.Errorf("%d bytes to copy, want %d (the missing and mismatched objects)", copyBytes, wantBytes)
	}

	// A prefix compares only the rows under it.
	var under []record.Record
	for _, r := range recs {
		if strings.HasPrefix(r.Key, "dir/") {
			under = append(under, r)
		}
	}
	tr, copyBytes = ft.compare(t, "dir/", under)
	if got, want := tr.SampleLines(), []string{"mismatched dir/x object_checksum"}; !slices.Equal(got, want) || tr.Source != 2 || tr.Matching != 1 || copyBytes != 80 {
		t.Errorf("under dir/: %+v %q, %d bytes to copy; want %q", tr, got, copyBytes, want)
	}
}
