package objectstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// TestInspect copies objects — small, empty, multipart, with names whose
// shared prefix ends inside a UTF-8 character — to MinIO and to a
// directory, then removes one, overwrites one with other bytes of the
// same size and one with another size, and checks what Inspect says of
// each, of a name never copied and of a name the target cannot hold. A
// bucket or directory that does not exist holds nothing and is not
// created.
func TestInspect(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"S3", "Directory"} {
		t.Run(kind, func(t *testing.T) {
			var url string
			var e *s3Env
			dir := filepath.Join(t.TempDir(), "target")
			if kind == "S3" {
				e = newS3(t)
				url = e.url
			} else {
				url = "file://" + dir
			}
			// Nothing there yet: every object is absent, and inspecting
			// creates nothing.
			fresh, err := objectstore.Open(url, objectstore.Options{Prefix: "p/"})
			if err != nil {
				t.Fatal(err)
			}
			src := newSource()
			none := []record.File{mustFile(t, src.file("x", []byte("x"), record.File{}))}
			if v, err := fresh.Inspect(ctx, none); err != nil || v[0] != objectstore.Absent {
				t.Fatalf("inspecting a target that does not exist: %v, %v", v, err)
			}
			if e != nil {
				if ok, err := e.client.BucketExists(ctx, e.bucket); err != nil || ok {
					t.Fatalf("Inspect created the bucket (%v)", err)
				}
			} else if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Inspect created the directory (%v)", err)
			}

			store := open(t, url, objectstore.Options{Prefix: "p/", PartSize: 5 << 20})
			recs := []record.Record{
				src.file("kept", []byte("kept bytes"), record.File{}),
				src.file("empty", nil, record.File{}),
				src.file("ü/one", []byte("one"), record.File{}),
				src.file("ö/two", []byte("two"), record.File{}),
				src.file("big", randomBytes(6<<20, 1), record.File{}),
				src.file("removed", []byte("removed"), record.File{}),
				src.file("same-size", []byte("original"), record.File{}),
				src.file("resized", []byte("original"), record.File{}),
			}
			res, err := store.Copy(ctx, recs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Outcome != objectstore.Copied {
					t.Fatalf("%q: %v %s", r.File.Name, r.Outcome, r.Reason)
				}
			}
			put := func(key string, data []byte) {
				t.Helper()
				if e != nil {
					if _, err := e.client.PutObject(ctx, e.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err := os.WriteFile(filepath.Join(dir, key), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if e != nil {
				if err := e.client.RemoveObject(ctx, e.bucket, "p/removed", minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(filepath.Join(dir, "p", "removed")); err != nil {
				t.Fatal(err)
			}
			put("p/same-size", []byte("ORIGINAL"))
			put("p/resized", []byte("longer than the original"))

			files := make([]record.File, 0, len(recs)+2)
			for _, r := range recs {
				files = append(files, mustFile(t, r))
			}
			files = append(files, mustFile(t, src.file("never-copied", []byte("n"), record.File{})))
			bad := "a//b" // an empty segment: no file can have it
			if e != nil {
				bad = string([]byte{0xff}) // not UTF-8: no S3 key
			}
			files = append(files, mustFile(t, src.file(bad, []byte("b"), record.File{})))
			want := map[string]objectstore.Verdict{
				"kept": objectstore.Holds, "empty": objectstore.Holds, "ü/one": objectstore.Holds, "ö/two": objectstore.Holds,
				"big": objectstore.Holds, "removed": objectstore.Absent, "same-size": objectstore.OtherChecksum,
				"resized": objectstore.OtherSize, "never-copied": objectstore.Absent, bad: objectstore.Absent,
			}
			got, err := store.Inspect(ctx, files)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range files {
				if got[i] != want[f.Name] {
					t.Errorf("%q: %v, want %v", f.Name, got[i], want[f.Name])
				}
			}
			// One object at a time gives the same answers (the listing's
			// range is then the one key).
			for i, f := range files {
				v, err := store.Inspect(ctx, []record.File{f})
				if err != nil || v[0] != got[i] {
					t.Errorf("%q alone: %v (%v), want %v", f.Name, v, err, got[i])
				}
			}
			if e == nil {
				return
			}
			// The cost: one listing over the range, a HEAD for its first
			// key (which the listing starts after; here the multipart
			// object, which its answer settles), and a HEAD only for what
			// the listing cannot settle (the object overwritten without a
			// CRC-32C) — also when the keys' shared prefix ends inside a
			// character.
			counted, requests, heads := countingStore(t, e, "p/")
			for _, c := range []struct {
				names []string
				heads int
			}{
				{[]string{"kept", "empty", "ü/one", "ö/two", "big", "removed", "same-size", "resized", "never-copied"}, 2},
				{[]string{"ü/one", "ö/two"}, 1},
			} {
				var sub []record.File
				for _, f := range files {
					for _, n := range c.names {
						if f.Name == n {
							sub = append(sub, f)
						}
					}
				}
				requests.Store(0)
				heads.Store(0)
				v, err := counted.Inspect(ctx, sub)
				if err != nil {
					t.Fatal(err)
				}
				for i, f := range sub {
					if v[i] != want[f.Name] {
						t.Errorf("%q through the proxy: %v, want %v", f.Name, v[i], want[f.Name])
					}
				}
				if h, n := heads.Load(), requests.Load(); h != int64(c.heads) || n != h+1 {
					t.Errorf("inspecting %d objects made %d requests, %d of them HEADs; want a listing and %d HEADs", len(sub), n, h, c.heads)
				}
			}
		})
	}
}

// countingStore opens e's bucket through a proxy that counts the requests
// made to it (and, in heads, the HEADs among them). The proxy keeps the
// Host header, so that the requests' signatures stay valid.
func countingStore(t *testing.T, e *s3Env, prefix string) (_ *objectstore.Store, requests, heads *atomic.Int64) {
	t.Helper()
	cfg := testenv.S3(t)
	upstream, err := url.Parse(cfg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	requests, heads = new(atomic.Int64), new(atomic.Int64)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s, err := objectstore.Open(fmt.Sprintf("s3://%s?endpoint=%s&region=%s", e.bucket, srv.URL, cfg.Region), objectstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s, requests, heads
}

func mustFile(t *testing.T, r record.Record) record.File {
	t.Helper()
	f, err := record.FileFrom(r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
