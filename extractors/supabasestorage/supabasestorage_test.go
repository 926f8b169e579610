package supabasestorage

import (
	"context"
	"crypto/md5"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/supabase/supabasetest"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
)

func config(p *supabasetest.Project, s *supabasetest.Storage) plugin.Config {
	return plugin.Config{
		"supabase-db": p.DSN, "supabase-s3-endpoint": s.Endpoint, "supabase-s3-region": s.Region,
		"supabase-s3-access-key-id": s.AccessKey, "supabase-s3-secret-access-key": s.SecretKey, "supabase-page-size": "3",
	}
}

func newExtractor(t *testing.T, cfg plugin.Config) *Extractor {
	t.Helper()
	ex, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// wantFiles is what the seeded objects should give: storage.objects'
// columns and metadata mapped as docs/sources.md (Supabase) says, the MD5
// of the bytes (from the eTag, or computed for the multipart upload).
func wantFiles(t *testing.T, p *supabasetest.Project, s *supabasetest.Storage, objs []supabasetest.Object, computed bool) map[string]record.Record {
	t.Helper()
	ids := p.Pairs(t, `SELECT name, id::text FROM storage.objects`)
	created, _ := time.Parse(time.RFC3339Nano, "2024-07-01T12:00:00.25Z")
	updated, _ := time.Parse(time.RFC3339Nano, "2024-07-02T12:00:00.75Z")
	out := map[string]record.Record{}
	for _, o := range objs {
		sum := md5.Sum(o.Data)
		f := record.File{Bucket: s.Bucket, Name: o.Name, Size: int64(len(o.Data)), ContentType: o.ContentType, CacheControl: "max-age=3600",
			MD5: sum[:], Created: created, Updated: updated, Metadata: map[string]string{MetaObjectID: ids[o.Name]}}
		if o.Multipart && !computed {
			f.MD5 = nil
		}
		if o.Owner != "" {
			f.Metadata[MetaOwner], f.Metadata[MetaOwnerID] = o.Owner, o.Owner
		}
		if o.UserMetadata != "" {
			f.Metadata["source"], f.Metadata["width"] = "camera", "640"
		}
		out[o.Name] = record.Record{Kind: record.KindFile, Key: o.Name, Fields: f.Fields(), CreateTime: created, UpdateTime: updated}
	}
	return out
}

func TestConformance(t *testing.T) {
	p := supabasetest.NewProject(t)
	objs := supabasetest.Objects(20)
	s := p.SeedStorage(t, objs)
	extractortest.Run(t, extractortest.Harness{
		New:   func(t *testing.T) extractors.Extractor { return newExtractor(t, config(p, s)) },
		Want:  wantFiles(t, p, s, objs, true),
		Times: true,
		Unreachable: func(t *testing.T) extractors.Extractor {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			cfg := config(p, s)
			cfg["supabase-db"] = "postgres://u:p@" + addr + "/db?sslmode=disable"
			cfg["supabase-bucket"], cfg["retry-attempts"], cfg["source-timeout"] = s.Bucket, "1", "2s"
			return newExtractor(t, cfg)
		},
	})
}

// TestBytesAndChecksums: Open streams exactly the stored bytes of every
// object, names the Storage API refuses included; without
// --supabase-compute-md5 the multipart object has no MD5.
func TestBytesAndChecksums(t *testing.T) {
	p := supabasetest.NewProject(t)
	objs := supabasetest.Objects(2)
	s := p.SeedStorage(t, objs)
	for _, computed := range []bool{true, false} {
		cfg := config(p, s)
		if !computed {
			cfg[ComputeMD5Option.Name] = "false"
		}
		ex := newExtractor(t, cfg)
		want := wantFiles(t, p, s, objs, computed)
		data := map[string][]byte{}
		for _, o := range objs {
			data[o.Name] = o.Data
		}
		files := extractortest.ReadFiles(t, ex, 2)
		for _, r := range files {
			if !record.Equal(record.Map(r.Fields), record.Map(want[r.Key].Fields)) {
				t.Errorf("computed=%v %q: %v, want %v", computed, r.Key, record.Map(r.Fields), record.Map(want[r.Key].Fields))
			}
			if string(r.Data) != string(data[r.Key]) {
				t.Errorf("%q: %d bytes read, want the %d stored", r.Key, len(r.Data), len(data[r.Key]))
			}
		}
		if n := len(files); n != len(objs) {
			t.Errorf("%d objects read, want %d", n, len(objs))
		}
	}
}

// TestOnlyBucket: without --supabase-bucket the only bucket is read; with
// two, New names them.
func TestOnlyBucket(t *testing.T) {
	p := supabasetest.NewProject(t)
	s := p.SeedStorage(t, supabasetest.Objects(0)[:1])
	cfg := config(p, s)
	if ex := newExtractor(t, cfg); ex.Bucket() != s.Bucket {
		t.Errorf("bucket %q, want %q", ex.Bucket(), s.Bucket)
	}
	p.Exec(t, `INSERT INTO storage.buckets (id, name) VALUES ('second', 'second')`)
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "second") || !strings.Contains(err.Error(), "--supabase-bucket") {
		t.Errorf("two buckets: %v", err)
	}
}
