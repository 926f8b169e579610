package postgres

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// filesSink opens a files sink on the directory dir and prepares it.
func filesSink(t *testing.T, pool *pgxpool.Pool, dir string, opts objectstore.Options, owner string, share bool) (*Files, error) {
	t.Helper()
	store, err := objectstore.Open("file://"+dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	sink := NewFiles(store, "", "")
	sink.SetOwner(owner, share)
	return sink, sink.Prepare(context.Background(), pool)
}

// writeFiles writes recs through sink in one committed transaction and
// returns the rejects.
func writeFiles(t *testing.T, pool *pgxpool.Pool, sink *Files, recs ...record.Record) map[int]string {
	t.Helper()
	var rejects map[int]string
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		out, err := sink.Write(context.Background(), tx, recs)
		rejects = out.Rejects
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rejects
}

// TestFilesKeyCollisionsCaseInsensitive writes to a directory compared
// without case (as on macOS or Windows): two objects of one batch whose
// keys differ only in case or normalization are both rejected, each naming
// the other, and neither is written; an object landing on the key of one
// stored by an earlier batch is rejected naming it, leaves it alone, and
// the run's warnings name both.
func TestFilesKeyCollisionsCaseInsensitive(t *testing.T) {
	ctx := context.Background()
	pool, dir, sink := newDirectoryFiles(t, objectstore.Options{CaseInsensitive: true})
	sink.SetObjectURL(gsURL)
	rejects := writeFiles(t, pool, sink,
		fileRecord("Case.txt", []byte("upper"), false, record.File{}),
		fileRecord("case.txt", []byte("lower"), false, record.File{}),
		fileRecord("caf\u00e9", []byte("nfc"), false, record.File{}),
		fileRecord("cafe\u0301", []byte("nfd"), false, record.File{}),
		fileRecord("other.txt", []byte("alone"), false, record.File{}),
	)
	for i, other := range map[int]string{0: `"case.txt"`, 1: `"Case.txt"`, 2: "\"cafe\u0301\"", 3: "\"caf\u00e9\""} {
		if !strings.Contains(rejects[i], "target key collision") || !strings.Contains(rejects[i], other) {
			t.Errorf("record %d: reject %q, want a key collision naming %s", i, rejects[i], other)
		}
	}
	if len(rejects) != 4 {
		t.Errorf("rejects %v, want the four colliding objects", rejects)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != ".baasmigrate-tmp,other.txt" {
		t.Errorf("the directory holds %v, want only other.txt", names)
	}

	// Across batches: the first one stored keeps its key.
	if rejects := writeFiles(t, pool, sink, fileRecord("Photo.JPG", []byte("first"), false, record.File{})); len(rejects) != 0 {
		t.Fatalf("Photo.JPG: %v", rejects)
	}
	rejects = writeFiles(t, pool, sink, fileRecord("photo.jpg", []byte("second"), false, record.File{}))
	if !strings.Contains(rejects[0], "target key collision") || !strings.Contains(rejects[0], "gs://demo.appspot.com/Photo.JPG") {
		t.Errorf("photo.jpg: %v, want rejected naming Photo.JPG", rejects)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "Photo.JPG")); err != nil || string(got) != "first" {
		t.Errorf("Photo.JPG holds %q (%v), want the first object's bytes", got, err)
	}
	warnings, err := sink.Warnings(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "Photo.JPG") || !strings.Contains(warnings[0], "photo.jpg") {
		t.Errorf("warnings %q, want one naming both Photo.JPG and photo.jpg", warnings)
	}
	// A re-run keeps it so, and a rejected object's key is free again.
	if rejects := writeFiles(t, pool, sink, fileRecord("Photo.JPG", []byte("first"), false, record.File{}),
		fileRecord("CASE.TXT", []byte("now alone"), false, record.File{})); len(rejects) != 0 {
		t.Errorf("re-run: %v", rejects)
	}
}

// TestFilesKeyClaimWaitsForConcurrentBatch: two batches in concurrent
// transactions (two workers) with objects of one folded key: the second
// waits for the first's transaction, then is rejected; the first's bytes
// stay.
func TestFilesKeyClaimWaitsForConcurrentBatch(t *testing.T) {
	ctx := context.Background()
	pool, dir, sink := newDirectoryFiles(t, objectstore.Options{CaseInsensitive: true})
	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	out1, err := sink.Write(ctx, tx1, []record.Record{fileRecord("Report.PDF", []byte("worker one"), false, record.File{})})
	if err != nil || len(out1.Rejects) != 0 {
		t.Fatalf("worker one: %v %v", out1.Rejects, err)
	}
	var pid int
	done := make(chan map[int]string, 1)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	go func() {
		var rejects map[int]string
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			out, err := sink.Write(ctx, tx, []record.Record{fileRecord("report.pdf", []byte("worker two"), false, record.File{})})
			rejects = out.Rejects
			return err
		})
		if err != nil {
			rejects = map[int]string{-1: err.Error()}
		}
		done <- rejects
	}()
	// Worker two waits on worker one's claim.
	for waiting := false; !waiting; {
		if err := pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("worker two finished while worker one's claim was uncommitted: %v", r)
		default:
		}
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rejects := <-done
	if !strings.Contains(rejects[0], "target key collision") || !strings.Contains(rejects[0], "Report.PDF") {
		t.Errorf("worker two: %v, want rejected naming Report.PDF", rejects)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "Report.PDF")); string(got) != "worker one" {
		t.Errorf("Report.PDF holds %q, want worker one's bytes", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.pdf")); err == nil {
		t.Errorf("report.pdf was written")
	}
}

// TestFilesLeaveForeignFiles: a file already in the directory that
// baasmigrate did not write, with other bytes, is left alone and its
// object rejected; an identical one counts as copied.
func TestFilesLeaveForeignFiles(t *testing.T) {
	pool := testenv.NewPool(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("the admin's notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "same.txt"), []byte("same"), 0o644); err != nil {
		t.Fatal(err)
	}
	sink, err := filesSink(t, pool, dir, objectstore.Options{}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	rejects := writeFiles(t, pool, sink, fileRecord("README.txt", []byte("from the bucket"), false, record.File{}),
		fileRecord("same.txt", []byte("same"), false, record.File{}))
	if len(rejects) != 1 || !strings.Contains(rejects[0], "did not write") {
		t.Errorf("rejects %v, want README.txt rejected as a file baasmigrate did not write", rejects)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "README.txt")); string(got) != "the admin's notes" {
		t.Errorf("README.txt was overwritten: %q", got)
	}
	// An object this tool wrote is updated when the source changes.
	if rejects := writeFiles(t, pool, sink, fileRecord("same.txt", []byte("changed at the source"), false, record.File{})); len(rejects) != 0 {
		t.Errorf("update of an object written earlier: %v", rejects)
	}
}

// TestFilesTargetOwnedByAnotherJob: a directory one job writes into is
// refused to another job unless it shares the target explicitly.
func TestFilesTargetOwnedByAnotherJob(t *testing.T) {
	pool := testenv.NewPool(t)
	dir := t.TempDir()
	if _, err := filesSink(t, pool, dir, objectstore.Options{}, "gcs:gs://a/", false); err != nil {
		t.Fatal(err)
	}
	if _, err := filesSink(t, pool, dir, objectstore.Options{}, "gcs:gs://a/", false); err != nil {
		t.Fatalf("the same job again: %v", err)
	}
	_, err := filesSink(t, pool, dir, objectstore.Options{}, "gcs:gs://b/", false)
	if err == nil || !strings.Contains(err.Error(), "--share-target") || !strings.Contains(err.Error(), "gcs:gs://a/") {
		t.Fatalf("another job: %v, want a refusal naming the owner and --share-target", err)
	}
	if _, err := filesSink(t, pool, dir, objectstore.Options{}, "gcs:gs://b/", true); err != nil {
		t.Fatalf("another job with --share-target: %v", err)
	}
	_, err = filesSink(t, pool, dir, objectstore.Options{CaseInsensitive: true}, "gcs:gs://a/", false)
	if err == nil || !strings.Contains(err.Error(), "compared object keys") {
		t.Fatalf("the key comparison changed: %v, want a refusal", err)
	}
}

// TestFilesLongKeys: a key longer than a PostgreSQL index entry can be
// (3,300 bytes in short segments, which a directory holds) does not fail
// the batch: its claim is taken like any other's. (The files table's own
// key, the name, then refuses the row: the object is rejected with
// PostgreSQL's reason.)
func TestFilesLongKeys(t *testing.T) {
	pool, _, sink := newDirectoryFiles(t, objectstore.Options{CaseInsensitive: true})
	// Random segments: PostgreSQL compresses repetitive index entries.
	var segs []string
	for i := range 300 {
		sum := md5.Sum([]byte{byte(i), byte(i >> 8)})
		segs = append(segs, hex.EncodeToString(sum[:5]))
	}
	name := strings.Join(segs, "/")
	rejects := writeFiles(t, pool, sink, fileRecord(name, []byte("deep"), false, record.File{}),
		fileRecord("short", []byte("short"), false, record.File{}))
	if len(rejects) > 1 || (len(rejects) == 1 && !strings.Contains(rejects[0], "index row size")) {
		t.Errorf("rejects %v, want at most the long name's row refused", rejects)
	}
}

// TestFilesRowProblemClaimsNoKey: an object whose row the files table
// cannot hold (a NUL in its metadata) is rejected for that, and claims no
// key: an object whose key folds onto its own still loads, in the same
// batch as in the next one, and no collision is reported.
func TestFilesRowProblemClaimsNoKey(t *testing.T) {
	ctx := context.Background()
	pool, dir, sink := newDirectoryFiles(t, objectstore.Options{CaseInsensitive: true})
	sink.SetObjectURL(gsURL)
	rejects := writeFiles(t, pool, sink,
		fileRecord("Report.pdf", []byte("bad"), false, record.File{ContentType: "text/plain\x00"}),
		fileRecord("report.pdf", []byte("good"), false, record.File{}),
	)
	if len(rejects) != 1 || !strings.Contains(rejects[0], "NUL") {
		t.Fatalf("rejects %v, want only Report.pdf, for its NUL byte", rejects)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "report.pdf")); err != nil || string(got) != "good" {
		t.Errorf("report.pdf holds %q (%v), want the good object's bytes", got, err)
	}
	rejects = writeFiles(t, pool, sink, fileRecord("REPORT.PDF", []byte("bad"), false, record.File{ContentType: "x\x00"}))
	if len(rejects) != 1 || !strings.Contains(rejects[0], "NUL") {
		t.Fatalf("next batch: rejects %v, want REPORT.PDF rejected for its NUL byte", rejects)
	}
	if warnings, err := sink.Warnings(ctx, pool); err != nil || len(warnings) != 0 {
		t.Errorf("warnings %q (%v), want no key collision", warnings, err)
	}
}
