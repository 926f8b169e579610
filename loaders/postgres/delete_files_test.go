package postgres_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
	"github.com/baasmigrate/baasmigrate/loaders/postgres"
)

// Two buckets copied into one directory under two prefixes, with their
// rows in one table: Delete of a name both have is refused until the sink
// knows its bucket, then removes that bucket's row only, and Purge that
// bucket's bytes only.
func TestFilesDeleteOfANameTwoBucketsHave(t *testing.T) {
	ctx := context.Background()
	pool := testenv.NewPool(t)
	dir := t.TempDir()
	sink := func(prefix string) *postgres.Files {
		store, err := objectstore.Open("file://"+dir, objectstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		f := postgres.NewFiles(store, "", "")
		f.SetOwner("src-"+prefix, true)
		if err := f.Prepare(ctx, pool); err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := sink("a/"), sink("b/")
	file := func(bucket string) record.Record {
		r := conformanceFile("x.txt", bytes.Repeat([]byte(bucket), 10), false, nil)
		r.Fields["bucket"] = record.String(bucket)
		return r
	}
	for _, w := range []struct {
		s   *postgres.Files
		rec record.Record
	}{{a, file("A")}, {b, file("B")}} {
		out := inTx(t, pool, func(tx pgx.Tx) (loaders.Outcome, error) { return w.s.Write(ctx, tx, []record.Record{w.rec}) })
		if len(out.Rejects) > 0 {
			t.Fatalf("writing: %v", out.Rejects)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM public.files WHERE name = 'x.txt'`); n != 2 {
		t.Fatalf("%d rows; the test needs x.txt in both buckets", n)
	}
	del := func() loaders.Outcome {
		return inTx(t, pool, func(tx pgx.Tx) (loaders.Outcome, error) {
			return a.Delete(ctx, tx, []string{"x.txt"}, time.Now(), false)
		})
	}
	if out := del(); len(out.Rejects) != 1 || !strings.Contains(out.Rejects[0], "SetBucket") {
		t.Fatalf("Delete of a name two buckets have, without the bucket: %+v; want it rejected", out)
	}
	a.SetBucket("A")
	if out := del(); len(out.Rejects) != 0 || out.Changed["files"] != 1 {
		t.Fatalf("Delete in bucket A: %+v", out)
	}
	if n := count(t, pool, `SELECT count(*) FROM public.files WHERE name = 'x.txt' AND bucket = 'B'`); n != 1 {
		t.Fatalf("bucket B's row went too")
	}
	if err := a.Purge(ctx, []string{"x.txt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "x.txt")); !os.IsNotExist(err) {
		t.Errorf("purged, a/x.txt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("the directory a/ the purge left empty is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b", "x.txt")); err != nil {
		t.Errorf("bucket B's bytes: %v", err)
	}
}
