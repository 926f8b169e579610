package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/diff"
)

// filesCompareTable is the report of the files table.
const filesCompareTable = "public.files"

// filesCompareObjects is a small bucket: names with spaces, unicode, #, ?
// and %, names whose byte order differs from a linguistic one, an empty
// object, and one large enough to be uploaded in parts.
func filesCompareObjects() []*filesObject {
	r := rand.New(rand.NewPCG(11, 12))
	var objs []*filesObject
	add := func(name string, size int) {
		objs = append(objs, &filesObject{name: name, data: filesRandom(r, size), contentType: "image/jpeg", cacheControl: "public, max-age=60",
			metadata: map[string]string{"firebaseStorageDownloadTokens": fmt.Sprintf("tok-%d-a,tok-%d-b", len(objs), len(objs)), "owner": "uid-" + fmt.Sprint(len(objs))}})
	}
	for _, n := range []string{"a b", "ü/ß.txt", "x#y", "q?z", "100%", "B", "a", "emoji 😀.png", "ｚ-fullwidth", "empty"} {
		size := 100 + r.IntN(4000)
		if n == "empty" {
			size = 0
		}
		add(n, size)
	}
	for i := range 24 {
		add(fmt.Sprintf("users/u%02d/avatar.jpg", i), 1+r.IntN(20000))
	}
	add("videos/big.mp4", 6<<20+123)
	return objs
}

// filesCompareRun runs plan or verify against ft with JSON output and
// returns the files table's report, the kind's report and the output.
func filesCompareRun(t *testing.T, ft *filesTarget, want int, command string, extra ...string) (*diff.TableReport, diff.KindReport, clitest.Result) {
	t.Helper()
	args := append([]string{command, "--only", "files", "--storage-bucket", filesBucket, "--objects", ft.url, "--format", "json", "--samples", "20"}, extra...)
	res := clitest.Run(t, ft.env, args...)
	if res.Code != want {
		t.Fatalf("%s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", command, res.Code, want, res.Stdout, res.Stderr)
	}
	doc := compareDoc(t, res.Stdout)
	tr := tableReports(t, doc, "file")[filesCompareTable]
	if tr == nil {
		t.Fatalf("no %s in the report:\n%s", filesCompareTable, res.Stdout)
	}
	return tr, doc.Kinds[0], res
}

// filesCompareBytes is the total size of the named objects.
func filesCompareBytes(src *filesSource, names ...string) int64 {
	var n int64
	for _, name := range names {
		n += int64(len(src.objects[name].data))
	}
	return n
}

// filesCompareNothingAt fails when plan created the S3 bucket or the
// directory.
func filesCompareNothingAt(t *testing.T, ft *filesTarget) {
	t.Helper()
	if ft.s3 != nil {
		if ok, err := ft.s3.BucketExists(context.Background(), ft.bucket); err != nil || ok {
			t.Errorf("plan created bucket %s (%v)", ft.bucket, err)
		}
		return
	}
	if _, err := os.Stat(ft.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plan created directory %s (%v)", ft.dir, err)
	}
}

// TestPlanAndVerifyFiles follows a files migration from fake-gcs-server to
// MinIO and to a directory with plan and verify: on an empty target every
// object is an insert and the whole bucket is to copy, and plan creates
// nothing; after migrate verify finds them identical. Then one source
// object is overwritten, one target object removed (its row kept), one
// overwritten with other bytes of the same size, one row tampered with,
// one removed and one added: verify names exactly those, with the
// fields; plan counts the bytes migrate would copy, and a migrate after it
// leaves only the added row. Plan never changes the database.
func TestPlanAndVerifyFiles(t *testing.T) {
	for _, s3 := range []bool{true, false} {
		t.Run(map[bool]string{true: "S3", false: "Directory"}[s3], func(t *testing.T) {
			t.Parallel()
			filesCompareFollow(t, s3)
		})
	}
}

func filesCompareFollow(t *testing.T, s3 bool) {
	ctx := context.Background()
	src := newFilesSource(t)
	objs := filesCompareObjects()
	src.seed(objs)
	total := int64(len(objs))
	var size int64
	for _, o := range objs {
		size += int64(len(o.data))
	}
	ft := newFilesTarget(t, src, s3)
	part := []string{"--objects-part-size", "5MiB"}

	// An empty target: every object an insert, the whole bucket to copy,
	// the table to create; nothing written anywhere.
	before := databaseFingerprint(t, ft.pool)
	tr, k, _ := filesCompareRun(t, ft, 0, "plan")
	if after := databaseFingerprint(t, ft.pool); after != before {
		t.Fatalf("plan changed the database:\nbefore %s\nafter  %s", before, after)
	}
	filesCompareNothingAt(t, ft)
	if tr.Source != total || tr.MissingInTarget != total || tr.Matching+tr.Mismatched+tr.ExtraInTarget+tr.Rejected != 0 {
		t.Fatalf("plan on an empty target: %+v; want %d inserts", tr, total)
	}
	if k.Bytes == nil || *k.Bytes != size {
		t.Errorf("plan on an empty target: bytes to copy %v, want the bucket's %d", k.Bytes, size)
	}
	if len(k.DDL) == 0 || !strings.Contains(k.DDL[len(k.DDL)-1].SQL, `CREATE TABLE IF NOT EXISTS "public"."files"`) {
		t.Errorf("plan's DDL does not create the files table: %+v", k.DDL)
	}

	ft.migrate(0, part...)
	tr, _, _ = filesCompareRun(t, ft, 0, "verify")
	if !tr.Identical() || tr.Matching != total {
		t.Fatalf("verify after migrate: %+v %q", tr, tr.SampleLines())
	}

	// One change at the source; five in the target.
	changed := &filesObject{name: "users/u03/avatar.jpg", data: []byte("a new, shorter avatar"), contentType: "image/png",
		cacheControl: "public, max-age=60", metadata: map[string]string{"firebaseStorageDownloadTokens": "tok-new", "owner": "uid-3"}}
	src.seed([]*filesObject{changed})
	removed, overwritten, tampered, deleted := "ü/ß.txt", "videos/big.mp4", "x#y", "users/u07/avatar.jpg"
	other := filesRandom(rand.New(rand.NewPCG(1, 2)), len(src.objects[overwritten].data))
	if s3 {
		if err := ft.s3.RemoveObject(ctx, ft.bucket, removed, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ft.s3.PutObject(ctx, ft.bucket, overwritten, strings.NewReader(string(other)), int64(len(other)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := os.Remove(filepath.Join(ft.dir, removed)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ft.dir, overwritten), other, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE public.files SET cache_control = 'no-store' WHERE name = '` + tampered + `'`,
		`DELETE FROM public.files WHERE name = '` + deleted + `'`,
		`INSERT INTO public.files (bucket, name, size, target_key) VALUES ('` + filesBucket + `', 'intruder.txt', 3, 'intruder.txt')`,
	} {
		if tag, err := ft.pool.Exec(ctx, q); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v (%d rows)", q, err, tag.RowsAffected())
		}
	}
	want := []string{
		"extra_in_target intruder.txt",
		"mismatched users/u03/avatar.jpg content_type,crc32c,created_at,download_tokens,generation,md5,metadata,size,updated_at",
		"mismatched videos/big.mp4 object_checksum",
		"mismatched x#y cache_control",
		"mismatched ü/ß.txt object",
		"missing_in_target users/u07/avatar.jpg",
	}
	tr, _, _ = filesCompareRun(t, ft, 1, "verify")
	if got := tr.SampleLines(); !slices.Equal(got, want) {
		t.Errorf("verify after the changes reports\n %q\nwant\n %q", got, want)
	}
	if tr.Source != total || tr.Matching != total-5 || tr.Mismatched != 4 || tr.MissingInTarget != 1 || tr.ExtraInTarget != 1 || tr.Rejected != 0 {
		t.Errorf("verify after the changes: %+v", tr)
	}
	res := clitest.Run(t, ft.env, "verify", "--only", "files", "--storage-bucket", filesBucket, "--objects", ft.url)
	for _, w := range []string{"DIFFERENT", `"ü/ß.txt" fields: "object"`, `"videos/big.mp4" fields: "object_checksum"`, `"x#y" fields: "cache_control"`} {
		if res.Code != 1 || !strings.Contains(res.Stdout, w) {
			t.Errorf("the text report (exit %d) lacks %q:\n%s", res.Code, w, res.Stdout)
		}
	}

	// Plan: the same differences as updates and inserts, the bytes of the
	// objects migrate would copy, nothing written.
	before = databaseFingerprint(t, ft.pool)
	tr, k, _ = filesCompareRun(t, ft, 0, "plan")
	if after := databaseFingerprint(t, ft.pool); after != before {
		t.Fatal("plan changed a migrated database")
	}
	wantBytes := filesCompareBytes(src, changed.name, removed, overwritten, tampered, deleted)
	if tr.MissingInTarget != 1 || tr.Mismatched != 4 || tr.ExtraInTarget != 1 || k.Bytes == nil || *k.Bytes != wantBytes || len(k.DDL) != 0 {
		t.Errorf("plan after the changes: %+v, bytes to copy %v, DDL %+v; want 1 insert, 4 updates and %d bytes", tr, k.Bytes, k.DDL, wantBytes)
	}

	// Migrating again (a finished run starts over with --restart) does
	// what plan said; only the added row remains.
	ft.migrate(0, append(part, "--restart")...)
	tr, _, _ = filesCompareRun(t, ft, 1, "verify")
	if got := tr.SampleLines(); !slices.Equal(got, []string{"extra_in_target intruder.txt"}) || tr.Matching != total {
		t.Errorf("verify after migrating again: %+v %q; want only the added row extra", tr, got)
	}
}
