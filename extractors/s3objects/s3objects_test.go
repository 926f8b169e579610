package s3objects

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestETagMD5(t *testing.T) {
	const sum = "9e107d9d372bb6826bd81d3542a419d6"
	for etag, want := range map[string]string{
		`"` + sum + `"`: sum, sum: sum, `W/"` + sum + `"`: sum,
		`"` + sum + `-3"`: "", `"xyz"`: "", "": "", `"9e107d9d372bb6826bd81d3542a419dz"`: "",
	} {
		if got := hex.EncodeToString(ETagMD5(etag)); got != want {
			t.Errorf("ETagMD5(%q) = %q, want %q", etag, got, want)
		}
	}
}

// TestEndpointPath: an endpoint with a path (hosted Supabase's
// /storage/v1/s3) gets it in front of every request path, and requests
// are signed over it.
func TestEndpointPath(t *testing.T) {
	var path, auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, auth = r.URL.EscapedPath(), r.Header.Get("Authorization")
		w.Header().Set("Content-Length", "2")
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"x"`)
		io.WriteString(w, "hi")
	}))
	defer srv.Close()
	c, err := NewPathClient(srv.URL+"/storage/v1/s3/", "eu-west-2", "key-id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	b := &Bucket{Client: c, Name: "bkt", Endpoint: "test"}
	obj, err := b.Get(context.Background(), "dir/100% ü.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	obj.Close()
	if path != "/storage/v1/s3/bkt/dir/100%25%20%C3%BC.txt" {
		t.Errorf("path %q", path)
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=key-id/") || !strings.Contains(auth, "/eu-west-2/s3/aws4_request") {
		t.Errorf("Authorization %q", auth)
	}
	if strings.Contains(auth, "secret") {
		t.Error("the secret key is in the request")
	}
	for _, bad := range []string{"ftp://h/x", "http://u:p@h/x", "http://h/x?q=1", "h"} {
		if _, err := NewPathClient(bad, "r", "", ""); err != ErrEndpoint {
			t.Errorf("NewPathClient(%q): %v, want ErrEndpoint", bad, err)
		}
	}
}
