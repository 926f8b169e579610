package s3objects

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// ErrEndpoint is the error of NewPathClient for an endpoint that is not an
// http(s) URL without query or credentials; callers name their option.
var ErrEndpoint = errors.New("must be an http(s) URL without query or credentials")

// NewPathClient returns a client of an S3 endpoint that may be served
// under a path, as hosted Supabase serves Storage's
// (https://REF.supabase.co/storage/v1/s3), which minio-go cannot take as
// an endpoint: the client is given the host only, sends its requests
// unsigned, and a transport puts the path in front of each request's and
// signs it with the static keys (AWS Signature V4 over the whole path, as
// such endpoints check it; no signature without keys). Buckets are
// addressed by path. Only reads are sent through it.
func NewPathClient(endpoint, region, accessKey, secretKey string) (*minio.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.User != nil {
		return nil, ErrEndpoint
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	return minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStatic("", "", "", credentials.SignatureAnonymous),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		Transport: &signingTransport{
			base: base, prefix: strings.TrimSuffix(u.EscapedPath(), "/"),
			region: region, accessKey: accessKey, secretKey: secretKey,
		},
	})
}

// signingTransport prefixes request paths and signs requests.
type signingTransport struct {
	base                 http.RoundTripper
	prefix               string // escaped, without a trailing slash; "" for none
	region               string
	accessKey, secretKey string
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if t.prefix != "" {
		u := *r.URL
		u.RawPath = t.prefix + u.EscapedPath()
		p, err := url.PathUnescape(u.RawPath)
		if err != nil {
			return nil, fmt.Errorf("prefixing %q: %w", u.RawPath, err)
		}
		u.Path = p
		r.URL = &u
	}
	if r.Header.Get("X-Amz-Content-Sha256") == "" {
		// Only reads are sent, without a body.
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	}
	if t.accessKey != "" {
		r = signer.SignV4(*r, t.accessKey, t.secretKey, "", t.region)
	}
	return t.base.RoundTrip(r)
}
