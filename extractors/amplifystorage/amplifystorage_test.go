package amplifystorage

import (
	"context"
	"crypto/md5"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/amplifystorage/amplifystoragetest"
	"github.com/baasmigrate/baasmigrate/extractors/extractortest"
	"github.com/baasmigrate/baasmigrate/extractors/s3objects"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// config points at b with credentials from the AWS default chain's
// environment variables.
func config(t *testing.T, b *amplifystoragetest.Bucket) plugin.Config {
	t.Setenv("AWS_ACCESS_KEY_ID", b.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", b.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return plugin.Config{"amplify-s3-endpoint": b.Endpoint, "aws-region": b.Region, "amplify-s3-bucket": b.Name}
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

func want(t *testing.T, b *amplifystoragetest.Bucket, objs []amplifystoragetest.Object, computed bool) map[string]record.Record {
	out := map[string]record.Record{}
	for _, o := range objs {
		out[o.Key] = b.Want(t, o, computed)
	}
	return out
}

func TestConformance(t *testing.T) {
	objs := amplifystoragetest.Objects(25)
	b := amplifystoragetest.NewBucket(t, objs)
	cfg := config(t, b)
	extractortest.Run(t, extractortest.Harness{
		New:   func(t *testing.T) extractors.Extractor { return newExtractor(t, cfg) },
		Want:  want(t, b, objs, true),
		Times: true,
		Unreachable: func(t *testing.T) extractors.Extractor {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			c := plugin.Config{"amplify-s3-endpoint": "http://" + addr, "aws-region": b.Region, "amplify-s3-bucket": b.Name,
				"retry-attempts": "1", "source-timeout": "2s"}
			return newExtractor(t, c)
		},
	})
}

// TestBytesAndChecksums: Open streams exactly the stored bytes of every
// object; with --amplify-compute-md5=false the multipart upload has no
// MD5 (and size only is checked), otherwise the MD5 of its bytes.
func TestBytesAndChecksums(t *testing.T) {
	objs := amplifystoragetest.Objects(2)
	b := amplifystoragetest.NewBucket(t, objs)
	for _, computed := range []bool{true, false} {
		cfg := config(t, b)
		if !computed {
			cfg[ComputeMD5Option.Name] = "false"
		}
		ex := newExtractor(t, cfg)
		w := want(t, b, objs, computed)
		data := map[string][]byte{}
		for _, o := range objs {
			data[o.Key] = o.Data
		}
		files := extractortest.ReadFiles(t, ex, 3)
		for _, r := range files {
			if _, ok := w[r.Key]; !ok {
				t.Errorf("unexpected %q", r.Key)
			}
			f, err := record.FileFrom(r.Record)
			if err != nil {
				t.Fatal(err)
			}
			if computed || !strings.Contains(r.Key, "big.mp4") {
				if sum := md5.Sum(data[r.Key]); string(f.MD5) != string(sum[:]) {
					t.Errorf("%q: MD5 %x, want %x", r.Key, f.MD5, sum)
				}
			} else if f.MD5 != nil {
				t.Errorf("%q: an MD5 without --amplify-compute-md5", r.Key)
			}
			if string(r.Data) != string(data[r.Key]) {
				t.Errorf("%q: %d bytes, want %d", r.Key, len(r.Data), len(data[r.Key]))
			}
		}
		if n := len(files); n != len(objs) {
			t.Errorf("read %d objects, want %d", n, len(objs))
		}
	}
}

// TestMissingBucket: a bucket that does not exist and a missing
// --amplify-s3-bucket are named.
func TestMissingBucket(t *testing.T) {
	b := amplifystoragetest.NewBucket(t, nil)
	cfg := config(t, b)
	cfg["amplify-s3-bucket"] = b.Name + "-none"
	ex := newExtractor(t, cfg)
	if _, err := ex.Plan(context.Background(), 2, time.Time{}); err == nil || !strings.Contains(err.Error(), "has no bucket") {
		t.Errorf("planning a missing bucket: %v", err)
	}
	delete(cfg, "amplify-s3-bucket")
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--amplify-s3-bucket") {
		t.Errorf("no bucket: %v", err)
	}
}

// TestOpenReadsTheVersionDescribed: an object replaced (same size, other
// bytes) after its record was read is not copied with the bytes of the new
// version under the metadata of the old: Open fails with ErrChanged,
// naming the object, and a record read anew opens the new version.
func TestOpenReadsTheVersionDescribed(t *testing.T) {
	v1 := amplifystoragetest.Object{Key: "public/a.txt", Data: []byte("first version"), ContentType: "text/plain"}
	v2 := amplifystoragetest.Object{Key: v1.Key, Data: []byte("other version"), ContentType: "text/html"}
	b := amplifystoragetest.NewBucket(t, []amplifystoragetest.Object{v1})
	ex := newExtractor(t, config(t, b))
	streams, err := ex.Plan(context.Background(), 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []record.Record
	err = ex.Read(context.Background(), streams[0].Partitions[0], time.Time{}, "", func(r record.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil || len(recs) != 1 {
		t.Fatalf("read %d records (%v), want 1", len(recs), err)
	}
	old := recs[0]
	b.Put(t, v2)
	rc, err := old.Open(context.Background())
	if err == nil {
		got, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("opened the record of the first version after it was replaced, and read %q", got)
	}
	if !errors.Is(err, s3objects.ErrChanged) || !retry.IsRetryable(err) || !strings.Contains(err.Error(), v1.Key) {
		t.Errorf("opening a replaced object: %v; want a retryable ErrChanged naming it (sync polls again)", err)
	}
	if files := extractortest.ReadFiles(t, ex, 1); len(files) != 1 || string(files[0].Data) != string(v2.Data) {
		t.Errorf("read anew: %d records, want 1 with %q", len(files), v2.Data)
	}
}
