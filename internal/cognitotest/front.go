// Package cognitotest helps tests run against cognito-local, the local
// stand-in for Cognito user pools that scripts/services-up.sh starts
// (COGNITO_ENDPOINT).
//
// cognito-local ignores Limit, PaginationToken and NextToken: it answers
// ListUsers, ListUsersInGroup and ListGroups with everything at once. So
// that paging and resuming are tested as they happen against Cognito,
// Front is a reverse proxy in front of it that pages those three
// operations as Cognito does — at most Limit items (1 to 60; 60 when
// absent or 0; more is refused with InvalidParameterException), an
// opaque token when more remain and none on the last page, a token that
// is not one of its own refused — and passes every other request through
// unchanged. Its contract (TestFrontPagesAsCognito) is checked with the
// official AWS SDK against both Front and cognito-local: the pages
// together hold exactly what cognito-local returns at once, in its order.
//
// Front rewrites the bodies of paged requests (without Limit and the
// token) before passing them on; their SigV4 signatures then no longer
// match, which cognito-local, checking none, does not mind.
//
// A Front can also answer TooManyRequestsException, as Cognito does past
// the account's quota (Throttle), and hold a ListUsers request until the
// test lets it go (Hold), to stop a migration at a known page.
package cognitotest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/baasmigrate/baasmigrate/internal/testenv"
)

// EndpointVar is the variable naming cognito-local's URL.
const EndpointVar = "COGNITO_ENDPOINT"

// Endpoint returns cognito-local's URL (COGNITO_ENDPOINT), skipping t when
// it is not configured (failing it when services are required).
func Endpoint(t testing.TB) string {
	t.Helper()
	v, ok := testenv.Lookup(EndpointVar)
	if !ok {
		msg := "cognito-local is not configured: no " + EndpointVar + "; run `make services-up`"
		if testenv.ServicesRequired() {
			t.Fatalf("%s (%s=1 forbids skipping)", msg, testenv.RequireServicesVar)
		}
		t.Skip(msg)
	}
	return v
}

// MaxLimit is the largest page Cognito serves for the paged operations.
const MaxLimit = 60

// paged describes an operation Front pages: the request's token field,
// the answer's list and token fields, and the field that names an item.
type paged struct{ tokenIn, list, tokenOut, key string }

var pagedOps = map[string]paged{
	"ListUsers":        {"PaginationToken", "Users", "PaginationToken", "Username"},
	"ListUsersInGroup": {"NextToken", "Users", "NextToken", "Username"},
	"ListGroups":       {"NextToken", "Groups", "NextToken", "GroupName"},
}

const targetPrefix = "AWSCognitoIdentityProviderService."

// Front is the paging proxy. Its methods are safe for concurrent use.
type Front struct {
	// URL is the address to give clients (--cognito-endpoint).
	URL string

	srv      *httptest.Server
	upstream *httputil.ReverseProxy
	target   *url.URL

	mu       sync.Mutex
	counts   map[string]int
	throttle map[string]int
	hold     *holdState
}

type holdState struct {
	after   int // hold the ListUsers request after this many were answered
	arrived chan struct{}
	release chan struct{}
	served  int
}

// Start runs a Front in front of cognito-local at upstream until t ends.
func Start(t testing.TB, upstream string) *Front {
	t.Helper()
	f, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f)
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// New returns a Front for upstream, to serve with an http.Server of the
// caller's (Start does it for tests).
func New(upstream string) (*Front, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("cognitotest: %q is not cognito-local's URL", upstream)
	}
	return &Front{target: u, upstream: httputil.NewSingleHostReverseProxy(u), counts: map[string]int{}, throttle: map[string]int{}}, nil
}

// Count returns how many requests of operation op (ListUsers, ...) the
// front has answered, throttled ones included.
func (f *Front) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Throttle makes the next n requests of operation op fail with
// TooManyRequestsException, as Cognito answers past the quota.
func (f *Front) Throttle(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle[op] += n
}

// Hold stops the ListUsers request that follows the next after ones
// answered: arrived is closed when it comes, and it is answered once
// release is called (or the front closes).
func (f *Front) Hold(after int) (arrived <-chan struct{}, release func()) {
	h := &holdState{after: after, arrived: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.hold = h
	f.mu.Unlock()
	var once sync.Once
	return h.arrived, func() { once.Do(func() { close(h.release) }) }
}

// ServeHTTP pages the paged operations and passes everything else on.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	f.mu.Lock()
	f.counts[op]++
	throttled := f.throttle[op] > 0
	if throttled {
		f.throttle[op]--
	}
	var wait chan struct{}
	if h := f.hold; h != nil && op == "ListUsers" && !throttled {
		if h.served == h.after {
			f.hold = nil
			close(h.arrived)
			wait = h.release
		}
		h.served++
	}
	f.mu.Unlock()
	if throttled {
		cognitoError(w, http.StatusBadRequest, "TooManyRequestsException", "Too many requests")
		return
	}
	if wait != nil {
		select {
		case <-wait:
		case <-r.Context().Done():
			return
		}
	}
	p, ok := pagedOps[op]
	if !ok {
		f.upstream.ServeHTTP(w, r)
		return
	}
	f.page(w, r, op, p)
}

// token is the content of the front's opaque page tokens: the key of the
// last item of the previous page.
type token struct {
	Op    string `json:"op"`
	After string `json:"after"`
}

// page answers one request of the paged operation op.
func (f *Front) page(w http.ResponseWriter, r *http.Request, op string, p paged) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		cognitoError(w, http.StatusBadRequest, "InvalidParameterException", "unreadable request")
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		cognitoError(w, http.StatusBadRequest, "InvalidParameterException", "request is not JSON")
		return
	}
	limit := MaxLimit
	if v, ok := req["Limit"]; ok {
		n, ok := v.(float64)
		if !ok || n < 0 || n > MaxLimit || n != float64(int(n)) {
			cognitoError(w, http.StatusBadRequest, "InvalidParameterException",
				fmt.Sprintf("1 validation error detected: Value '%v' at 'limit' failed to satisfy constraint: Member must have value less than or equal to %d", v, MaxLimit))
			return
		}
		if n > 0 {
			limit = int(n)
		}
	}
	var after *string
	if v, ok := req[p.tokenIn]; ok {
		s, _ := v.(string)
		tok, ok := decodeToken(s)
		if !ok || tok.Op != op {
			cognitoError(w, http.StatusBadRequest, "InvalidParameterException", "Invalid pagination token")
			return
		}
		after = &tok.After
	}
	delete(req, "Limit")
	delete(req, p.tokenIn)
	fwd, _ := json.Marshal(req)

	up, err := http.NewRequestWithContext(r.Context(), http.MethodPost, f.target.String(), bytes.NewReader(fwd))
	if err != nil {
		cognitoError(w, http.StatusInternalServerError, "InternalErrorException", err.Error())
		return
	}
	for k, vs := range r.Header {
		if k == "Content-Length" {
			continue
		}
		up.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(up)
	if err != nil {
		cognitoError(w, http.StatusBadGateway, "InternalErrorException", "cognito-local: "+err.Error())
		return
	}
	defer resp.Body.Close()
	all, err := io.ReadAll(resp.Body)
	if err != nil {
		cognitoError(w, http.StatusBadGateway, "InternalErrorException", "cognito-local: "+err.Error())
		return
	}
	if resp.StatusCode != http.StatusOK {
		copyAnswer(w, resp, all)
		return
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(all, &out); err != nil {
		cognitoError(w, http.StatusBadGateway, "InternalErrorException", "cognito-local's answer is not JSON")
		return
	}
	var items []map[string]json.RawMessage
	if raw, ok := out[p.list]; ok {
		if err := json.Unmarshal(raw, &items); err != nil {
			cognitoError(w, http.StatusBadGateway, "InternalErrorException", "cognito-local's list is not an array")
			return
		}
	}
	start := 0
	if after != nil {
		start = -1
		for i, it := range items {
			if keyOf(it, p.key) == *after {
				start = i + 1
				break
			}
		}
		if start < 0 {
			// The item the token continues after is gone: Cognito's tokens
			// carry their own state; ours cannot, so refuse rather than
			// guess (the extractor's resume must cope with a refusal).
			cognitoError(w, http.StatusBadRequest, "InvalidParameterException", "Invalid pagination token")
			return
		}
	}
	end := min(start+limit, len(items))
	pageItems := items[start:end]
	if pageItems == nil {
		pageItems = []map[string]json.RawMessage{}
	}
	out[p.list], _ = json.Marshal(pageItems)
	delete(out, p.tokenOut)
	if end < len(items) && end > start {
		out[p.tokenOut], _ = json.Marshal(encodeToken(token{Op: op, After: keyOf(items[end-1], p.key)}))
	}
	text, _ := json.Marshal(out)
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(text)
}

func keyOf(item map[string]json.RawMessage, key string) string {
	var s string
	_ = json.Unmarshal(item[key], &s)
	return s
}

func encodeToken(t token) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (token, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return token{}, false
	}
	var t token
	if json.Unmarshal(b, &t) != nil || t.Op == "" {
		return token{}, false
	}
	return t, true
}

func copyAnswer(w http.ResponseWriter, resp *http.Response, body []byte) {
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// cognitoError answers as Cognito's JSON 1.1 protocol does.
func cognitoError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	_, _ = w.Write(b)
}
