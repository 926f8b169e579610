package objectstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/loaders/objectstore"
)

// TestS3StorageFullIsNotRetried: a server whose disk is full (507
// XMinioStorageFull) fails the copy at its first attempt, as
// failure.Classify says, rather than being retried as a server error.
func TestS3StorageFullIsNotRetried(t *testing.T) {
	var puts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodHead && strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0:
			w.WriteHeader(http.StatusOK) // the bucket exists
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound) // no object yet
		case r.Method == http.MethodPut:
			puts.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInsufficientStorage)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>XMinioStorageFull</Code>` +
				`<Message>Storage backend has reached its minimum free drive threshold.</Message></Error>`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>`))
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testtesttest")
	s := open(t, "s3://full?endpoint="+srv.URL+"&region=us-east-1", objectstore.Options{})
	src := newSource()
	_, err := s.Copy(context.Background(), []record.Record{src.file("a.txt", []byte("hello"), record.File{})})
	if err == nil {
		t.Fatal("copy to a full server succeeded")
	}
	if n := puts.Load(); n != 1 {
		t.Errorf("%d uploads to a full server; want 1 (not retried): %v", n, err)
	}
}
