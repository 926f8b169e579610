package s3objects

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/baasmigrate/baasmigrate/internal/retry"
	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// breakFirstBody cuts the body of the first object GET after n bytes,
// and calls then (before the read fails), as a dropped connection would.
type breakFirstBody struct {
	base http.RoundTripper
	n    int
	then func()
	once sync.Once
}

func (b *breakFirstBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || r.URL.Query().Has("location") || resp.StatusCode >= 300 {
		return resp, err
	}
	b.once.Do(func() {
		resp.Body = &cutBody{rc: resp.Body, left: b.n, then: b.then}
	})
	return resp, nil
}

type cutBody struct {
	rc   io.ReadCloser
	left int
	then func()
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left == 0 {
		c.then()
		return 0, io.ErrUnexpectedEOF
	}
	n, err := c.rc.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

func (c *cutBody) Close() error { return c.rc.Close() }

// TestResumeRefusesAChangedObject: a read that breaks mid-object resumes
// only on the same version of it. When the object is replaced (same size)
// before the resumed request, the read fails with a retryable error
// instead of returning the first bytes of one version and the rest of
// another.
func TestResumeRefusesAChangedObject(t *testing.T) {
	ctx := context.Background()
	cfg, admin, bucket := testenv.NewS3Bucket(t, "s3objects-"+t.Name())
	v1, v2 := bytes.Repeat([]byte("a"), 4096), bytes.Repeat([]byte("b"), 4096)
	put := func(data []byte) {
		if _, err := admin.PutObject(ctx, bucket, "obj", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(v1)
	host, secure := cfg.Host()
	tr := &breakFirstBody{base: http.DefaultTransport.(*http.Transport).Clone(), n: 1000, then: func() { put(v2) }}
	client, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: secure,
		Region: cfg.Region, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	b := &Bucket{Client: client, Name: bucket, Endpoint: "test", Listed: "the listing",
		Policy: retry.Policy{Attempts: 3, Initial: time.Millisecond, Max: time.Millisecond}}
	rc, err := b.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err == nil {
		t.Fatalf("read %d bytes without an error (%d of the first version's); want an error, the object changed mid-read",
			len(got), bytes.Count(got, []byte("a")))
	}
	if !errors.Is(err, ErrChanged) {
		t.Errorf("error %v; want ErrChanged", err)
	}
	if !retry.IsRetryable(err) {
		t.Errorf("the error is not retryable (a new attempt reads the new version whole): %v", err)
	}
}
