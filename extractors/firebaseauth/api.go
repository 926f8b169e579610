package firebaseauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/baasmigrate/baasmigrate/extractors"
	"github.com/baasmigrate/baasmigrate/extractors/firebase"
	"github.com/baasmigrate/baasmigrate/internal/plugin"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// apiExtractor lists a project's (or a tenant's) users with Identity
// Toolkit's accounts:batchGet — the call behind the Admin SDK's
// Client.Users iterator — reading the JSON itself so that nothing the SDK
// would drop or round is lost: custom claims stay the exact text, refresh
// and enrolment times keep their milliseconds, the password version is
// kept, and a second-factor kind the SDK does not know (it fails the whole
// page on one) is kept verbatim.
//
// # Cursor
//
// batchGet pages with an opaque nextPageToken. The cursor after a user is
// the token that fetched the user's page plus the user's uid: a resumed
// read fetches that page again and continues just after the uid, even in
// the middle of the page. The emulator's token is the last uid of the
// previous page and its pages are in uid order; if a resumed page no
// longer holds the uid (the user was deleted meanwhile) and the page is in
// uid order, reading continues at the first greater uid. A token the
// service no longer accepts fails the read with advice to use --restart,
// which reads everything again but rewrites only rows that changed.
type apiExtractor struct {
	client   *http.Client
	base     string // .../v1/projects/P[/tenants/T]
	source   string
	emulator bool
	pageSize int
	policy   retry.Policy
	hashes
	settings
}

var (
	_ extractors.Extractor = (*apiExtractor)(nil)
	_ extractors.Counter   = (*apiExtractor)(nil)
)

// Scopes for the Identity Toolkit API.
var apiScopes = []string{
	"https://www.googleapis.com/auth/cloud-platform",
	"https://www.googleapis.com/auth/firebase",
	"https://www.googleapis.com/auth/identitytoolkit",
}

func newAPI(ctx context.Context, cfg plugin.Config, tenant string) (*apiExtractor, error) {
	project := cfg.String(firebase.ProjectOption.Name)
	if project == "" {
		return nil, fmt.Errorf("missing required option(s): --%s (or --%s to read an export file)", firebase.ProjectOption.Name, ExportOption.Name)
	}
	pageSize, err := cfg.Int(PageSizeOption.Name, 1000)
	if err != nil {
		return nil, err
	}
	if pageSize < 1 || pageSize > 1000 {
		return nil, fmt.Errorf("--%s must be between 1 and 1000", PageSizeOption.Name)
	}
	policy, err := retry.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	e := &apiExtractor{pageSize: pageSize, policy: policy}
	path := "/v1/projects/" + url.PathEscape(project)
	e.source = ProjectSource(project, tenant)
	if tenant != "" {
		path += "/tenants/" + url.PathEscape(tenant)
	}
	if host := cfg.String(EmulatorOption.Name); host != "" {
		host = strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://")
		e.emulator = true
		e.base = "http://" + host + "/identitytoolkit.googleapis.com" + path
		// No overall client timeout: each call is cut after --source-timeout
		// without an answer (see call).
		e.client = &http.Client{Transport: emulatorAuth{http.DefaultTransport}}
		return e, nil
	}
	creds, err := firebase.ClientOptions(cfg)
	if err != nil {
		return nil, err
	}
	client, _, err := htransport.NewClient(ctx, append([]option.ClientOption{option.WithScopes(apiScopes...)}, creds...)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to Firebase Auth: %w", err)
	}
	e.client = client
	e.base = "https://identitytoolkit.googleapis.com" + path
	return e, nil
}

// emulatorAuth authenticates to the Auth emulator as the Admin SDK does.
type emulatorAuth struct{ next http.RoundTripper }

func (a emulatorAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer owner")
	return a.next.RoundTrip(r)
}

// Source names the project (and tenant): ProjectSource.
func (e *apiExtractor) Source() string { return e.source }

// ProjectSource names the users of a project (with tenant "", its own
// users) or of one of its tenants as the Auth API extractor's Source does:
// "firebaseauth:projects/P" or "firebaseauth:projects/P/tenants/T".
func ProjectSource(project, tenant string) string {
	s := "firebaseauth:projects/" + project
	if tenant != "" {
		s += "/tenants/" + tenant
	}
	return s
}

// Close releases idle connections.
func (e *apiExtractor) Close() error {
	e.client.CloseIdleConnections()
	return nil
}

// Plan returns one stream with one partition: batchGet can only be read
// from the start, one page after another. It asks for one user first, so
// that a source that cannot be read fails here, before anything starts.
func (e *apiExtractor) Plan(ctx context.Context, _ int, _ time.Time) ([]extractors.Stream, error) {
	if _, _, err := e.pageOf(ctx, "", 1); err != nil {
		return nil, err
	}
	return []extractors.Stream{{
		Name: "users", Kind: record.KindUser,
		Partitions: []extractors.Partition{{Stream: "users", ID: "p0000"}},
	}}, nil
}

// Count asks accounts:query for the number of users (for progress).
func (e *apiExtractor) Count(ctx context.Context, _ extractors.Stream) (int64, error) {
	var resp struct {
		RecordsCount string `json:"recordsCount"`
	}
	if err := e.call(ctx, "counting users", http.MethodPost, e.base+"/accounts:query", []byte(`{"returnUserInfo":false}`), &resp); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(resp.RecordsCount, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counting users: recordsCount %q is not a number", resp.RecordsCount)
	}
	return n, nil
}

// apiCursor is the position after a user: the token of its page and its
// uid.
type apiCursor struct {
	PageToken string `json:"pageToken"`
	UID       string `json:"uid"`
}

// Read emits the users after cursor after, page by page.
func (e *apiExtractor) Read(ctx context.Context, _ extractors.Partition, _ time.Time, after string, emit func(record.Record) error) error {
	var cur apiCursor
	if after != "" {
		if err := json.Unmarshal([]byte(after), &cur); err != nil || cur.UID == "" {
			return fmt.Errorf("checkpoint %q is not a Firebase Auth listing position", after)
		}
	}
	token, resumeAfter := cur.PageToken, cur.UID
	for {
		users, next, err := e.page(ctx, token)
		if err != nil {
			if resumeAfter != "" && isBadRequest(err) {
				return fmt.Errorf("%w; Firebase no longer accepts the checkpoint's page token: pass --restart to read all users again (unchanged rows are not rewritten)", err)
			}
			return err
		}
		start := 0
		if resumeAfter != "" {
			if start, err = resumeIndex(users, resumeAfter); err != nil {
				return err
			}
			resumeAfter = ""
		}
		for _, u := range users[start:] {
			c, _ := json.Marshal(apiCursor{PageToken: token, UID: u.UID})
			if err := emit(u.Record(string(c))); err != nil {
				return err
			}
		}
		if next == "" || len(users) == 0 {
			return nil
		}
		token = next
	}
}

// resumeIndex returns where to continue in a page refetched after a
// checkpoint at uid.
func resumeIndex(users []record.User, uid string) (int, error) {
	sorted := true
	for i, u := range users {
		if u.UID == uid {
			return i + 1, nil
		}
		if i > 0 && CompareUIDs(users[i-1].UID, u.UID) >= 0 {
			sorted = false
		}
	}
	if !sorted {
		return 0, fmt.Errorf("resuming the user listing: user %q, the last one committed, is no longer on its page; pass --restart to read all users again (unchanged rows are not rewritten)", uid)
	}
	for i, u := range users {
		if CompareUIDs(u.UID, uid) > 0 {
			return i, nil
		}
	}
	return len(users), nil
}

// page fetches one page of users and the token of the next.
func (e *apiExtractor) page(ctx context.Context, token string) ([]record.User, string, error) {
	return e.pageOf(ctx, token, e.pageSize)
}

// pageOf fetches a page of at most size users.
func (e *apiExtractor) pageOf(ctx context.Context, token string, size int) ([]record.User, string, error) {
	q := url.Values{"maxResults": {strconv.Itoa(size)}}
	if token != "" {
		q.Set("nextPageToken", token)
	}
	var resp struct {
		Users         []json.RawMessage `json:"users"`
		NextPageToken string            `json:"nextPageToken"`
	}
	if err := e.call(ctx, "listing users", http.MethodGet, e.base+"/accounts:batchGet?"+q.Encode(), nil, &resp); err != nil {
		return nil, "", err
	}
	users := make([]record.User, len(resp.Users))
	for i, raw := range resp.Users {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, "", fmt.Errorf("listing users: decoding user %d of a page: %w", i+1, err)
		}
		users[i] = userFromJSON(v, fmt.Sprintf("user %d of the page", i+1))
	}
	return users, resp.NextPageToken, nil
}

// apiError is an error response of the Identity Toolkit API.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("Firebase Auth answered %d: %s", e.Status, e.Message)
}

// Retryable marks throttling and server errors as transient
// (failure.Classify).
func (e *apiError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

func isBadRequest(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusBadRequest
}

// call makes one API request under the extractor's retry policy and
// decodes the JSON answer into out. A request that gets no answer, or
// whose answer stops arriving, for --source-timeout is cut and retried;
// throttling, server errors and network failures are retried too
// (failure.Classify).
func (e *apiExtractor) call(ctx context.Context, what, method, u string, body []byte, out any) error {
	err := retry.Do(ctx, e.policy, what+" from "+e.source, func(ctx context.Context) error {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := e.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		retry.Alive(ctx)
		data, err := io.ReadAll(aliveReader{ctx, resp.Body})
		if err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			var g struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			msg := strings.TrimSpace(string(data))
			if json.Unmarshal(data, &g) == nil && g.Error.Message != "" {
				msg = g.Error.Message
			}
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			return &apiError{Status: resp.StatusCode, Message: msg}
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		return nil
	})
	return retry.Describe(what+" from "+e.source, err)
}

// aliveReader tells the call's watchdog about every chunk of the answer
// that arrives, so that only silence cuts a long answer.
type aliveReader struct {
	ctx context.Context
	r   io.Reader
}

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		retry.Alive(a.ctx)
	}
	return n, err
}
