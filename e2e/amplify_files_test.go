package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/extractors/amplifystorage/amplifystoragetest"
	"github.com/baasmigrate/baasmigrate/internal/clitest"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// TestAmplifyFiles migrates the objects of a bucket playing an Amplify
// app's storage bucket (a second bucket on the test MinIO, credentials
// from the AWS default chain's environment variables) into another bucket
// and the files table: plan counts everything to copy; migrate --source
// amplify is killed with SIGKILL mid-way and a second run finishes it;
// verify finds the target identical; every object's bytes and every row's
// metadata (HTTP headers, user metadata, size, MD5) are the source's,
// hostile names (Amplify's access prefixes with identity ids, non-ASCII,
// "%", spaces, a 1,024-byte key) kept exactly; a changed and a deleted
// source object make verify exit 1.
func TestAmplifyFiles(t *testing.T) {
	ctx := context.Background()
	objs := amplifystoragetest.Objects(150)
	src := amplifystoragetest.NewBucket(t, objs)
	dsn, pool := targetDatabase(t)
	_, _, target := testenv.NewS3Bucket(t, "ampt-"+t.Name())
	env := clitest.Env("DATABASE_URL="+dsn, "AWS_ACCESS_KEY_ID="+src.AccessKey, "AWS_SECRET_ACCESS_KEY="+src.SecretKey,
		"AWS_REGION="+src.Region, "AWS_EC2_METADATA_DISABLED=true")
	common := []string{"--source", "amplify", "--only", "files", "--amplify-s3-endpoint", src.Endpoint, "--amplify-s3-bucket", src.Name,
		"--objects", fmt.Sprintf("s3://%s?endpoint=%s&region=%s", target, src.Endpoint, src.Region)}

	res := clitest.Run(t, env, append([]string{"plan"}, append(common, "--format", "json")...)...)
	if res.Code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	outputs := []string{res.Stdout, res.Stderr}
	for table, tr := range tableReports(t, compareDoc(t, res.Stdout), "file") {
		if tr.Source != int64(len(objs)) || tr.MissingInTarget != int64(len(objs)) {
			t.Errorf("plan %s: %+v; want %d to copy", table, tr, len(objs))
		}
	}

	migrate := append([]string{"migrate"}, append(common, "--workers", "3", "--batch-size", "5")...)
	if !clitest.KillAt(t, env, migrate, 40, testenv.Committed(pool), 2*time.Minute) {
		t.Fatal("the run finished before it could be killed at 40 objects")
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	res = clitest.Run(t, env, append(migrate, "--summary", summary)...)
	if res.Code != 0 {
		t.Fatalf("migrate after the kill: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	outputs = append(outputs, res.Stdout, res.Stderr)
	s := readSummary[summaryJSON](t, summary)
	checkBalance(t, s)
	if len(s.Jobs) != 1 || !s.Jobs[0].Resumed {
		t.Errorf("the second run's jobs: %+v; want the files job resumed", s.Jobs)
	}

	verify := append([]string{"verify"}, append(common, "--format", "json")...)
	res = clitest.Run(t, env, verify...)
	if res.Code != 0 {
		t.Fatalf("verify after migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	outputs = append(outputs, res.Stdout, res.Stderr)
	for table, tr := range tableReports(t, compareDoc(t, res.Stdout), "file") {
		if tr.Source != int64(len(objs)) || tr.Matching != int64(len(objs)) || tr.Mismatched+tr.MissingInTarget+tr.ExtraInTarget+tr.Rejected != 0 {
			t.Errorf("verify %s: %+v; want %d identical", table, tr, len(objs))
		}
	}

	// Rows and bytes, object by object.
	type row struct {
		size                          int64
		md5, ct, cc, ce, cd, cl, meta string
	}
	rows := map[string]row{}
	q, err := pool.Query(ctx, `SELECT name, size, coalesce(md5, ''), coalesce(content_type, ''), coalesce(cache_control, ''),
		coalesce(content_encoding, ''), coalesce(content_disposition, ''), coalesce(content_language, ''), coalesce(metadata::text, '{}')
		FROM public.files WHERE bucket = $1`, src.Name)
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var name string
		var r row
		if err := q.Scan(&name, &r.size, &r.md5, &r.ct, &r.cc, &r.ce, &r.cd, &r.cl, &r.meta); err != nil {
			t.Fatal(err)
		}
		rows[name] = r
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(objs) {
		t.Errorf("%d rows, want %d", len(rows), len(objs))
	}
	for _, o := range objs {
		r, ok := rows[o.Key]
		if !ok {
			t.Errorf("%q (%d bytes): no row", o.Key[:min(len(o.Key), 80)], len(o.Key))
			continue
		}
		sum := md5.Sum(o.Data)
		var meta map[string]string
		if err := json.Unmarshal([]byte(r.meta), &meta); err != nil {
			t.Fatal(err)
		}
		wantMeta := o.Metadata
		if wantMeta == nil {
			wantMeta = map[string]string{}
		}
		if r.size != int64(len(o.Data)) || r.md5 != hex.EncodeToString(sum[:]) || r.ct != o.ContentType || r.cc != o.CacheControl ||
			r.ce != o.ContentEncoding || r.cd != o.ContentDisposition || r.cl != o.ContentLanguage || !maps.Equal(meta, wantMeta) {
			t.Errorf("%q: row %+v; want size %d, md5 %x, %q %q %q %q %q, metadata %v", o.Key, r, len(o.Data), sum,
				o.ContentType, o.CacheControl, o.ContentEncoding, o.ContentDisposition, o.ContentLanguage, wantMeta)
		}
		obj, err := src.Client.GetObject(ctx, target, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || md5.Sum(b) != sum {
			t.Errorf("%q in the target: %d bytes, %v; want the %d of the source", o.Key, len(b), err, len(o.Data))
		}
	}
	if _, ok := rows[amplifystoragetest.LongKey()]; !ok || len(amplifystoragetest.LongKey()) != 1024 {
		t.Errorf("the 1,024-byte key has no row")
	}

	// No secret in any output.
	for _, out := range outputs {
		if strings.Contains(out, src.SecretKey) {
			t.Errorf("the S3 secret key appears in the output:\n%.2000s", out)
		}
	}

	// Changes at the source: verify names them.
	src.Put(t, amplifystoragetest.Object{Key: objs[0].Key, Data: []byte("changed"), ContentType: objs[0].ContentType})
	if err := src.Client.RemoveObject(ctx, src.Name, objs[1].Key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	res = clitest.Run(t, env, verify...)
	if res.Code != 1 {
		t.Fatalf("verify after source changes: exit %d, want 1\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for table, tr := range tableReports(t, compareDoc(t, res.Stdout), "file") {
		if tr.Mismatched != 1 || tr.ExtraInTarget != 1 {
			t.Errorf("verify %s after a change and a delete: %+v", table, tr)
		}
	}
}

// TestAmplifyFilesSync: after a copy, objects added, overwritten (with new
// metadata) and deleted in the Amplify bucket are applied by `sync
// --source amplify --only files` polling the bucket; cutover exits 0 and
// the target holds exactly the source's objects.
func TestAmplifyFilesSync(t *testing.T) {
	ctx := context.Background()
	objs := amplifystoragetest.Objects(10)
	src := amplifystoragetest.NewBucket(t, objs)
	dsn, pool := targetDatabase(t)
	dir := filepath.Join(t.TempDir(), "objects")
	env := clitest.Env("DATABASE_URL="+dsn, "AWS_ACCESS_KEY_ID="+src.AccessKey, "AWS_SECRET_ACCESS_KEY="+src.SecretKey,
		"AWS_REGION="+src.Region, "AWS_EC2_METADATA_DISABLED=true")
	kinds := []string{"--source", "amplify", "--only", "files", "--amplify-s3-endpoint", src.Endpoint, "--amplify-s3-bucket", src.Name,
		"--objects", "file://" + dir}
	if res := clitest.Run(t, env, append([]string{"migrate"}, kinds...)...); res.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	p := clitest.Start(t, env, append(append([]string{"sync", "-v"}, kinds...), "--poll-interval", "1s")...)
	added := amplifystoragetest.Object{Key: "protected/us-east-1:0000/new 100%.txt", Data: []byte("new"), ContentType: "text/plain",
		Metadata: map[string]string{"origin": "sync"}}
	src.Put(t, added)
	changed := amplifystoragetest.Object{Key: objs[0].Key, Data: []byte("changed bytes"), ContentType: "image/webp", CacheControl: "no-cache"}
	src.Put(t, changed)
	gone := "public/bulk/0003.dat"
	if err := src.Client.RemoveObject(ctx, src.Name, gone, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	verify := append([]string{"verify"}, kinds...)
	verifyUntilSynced(t, env, verify, p)
	res := clitest.Run(t, env, append([]string{"cutover"}, kinds...)...)
	if res.Code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\nsync's log:\n%s", res.Code, res.Stdout, res.Stderr, syncTail(p.Stderr(), 40))
	}
	stopSync(t, p)
	var n int
	var ct, meta string
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.files WHERE bucket = $1),
		(SELECT content_type || '|' || cache_control FROM public.files WHERE bucket = $1 AND name = $2),
		(SELECT metadata->>'origin' FROM public.files WHERE bucket = $1 AND name = $3)`, src.Name, changed.Key, added.Key).Scan(&n, &ct, &meta); err != nil {
		t.Fatal(err)
	}
	if n != len(objs) || ct != "image/webp|no-cache" || meta != "sync" {
		t.Errorf("%d rows (want %d), changed object %q, added object's metadata %q", n, len(objs), ct, meta)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(gone))); !os.IsNotExist(err) {
		t.Errorf("%q deleted at the source, its bytes still in the target (%v)", gone, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(added.Key))); err != nil || string(b) != "new" {
		t.Errorf("%q in the target: %q, %v", added.Key, b, err)
	}
}
