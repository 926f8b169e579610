package kratosimport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/baasmigrate/baasmigrate/internal/retry"
)

// Retry is how often and how patiently a request is repeated when Kratos
// cannot answer: connection errors, 429, 502, 503 and 504, and a 500 for a
// single identity. It is the project's retry.Policy (jittered doubling
// delays, retries logged at debug level to the context's logger); its
// Timeout is not used: Options.HTTPClient bounds each request.
type Retry = retry.Policy

// DefaultRetry waits about 0.5, 1, 2, 4, 8, 15, 15 s: about 45 s in all.
var DefaultRetry = Retry{Attempts: 8, Initial: 500 * time.Millisecond, Max: 15 * time.Second}

// client speaks to Kratos' admin API.
type client struct {
	base  string // ".../admin"
	token string
	http  *http.Client
	retry Retry
}

// apiError is an answer Kratos gave with an error status.
type apiError struct {
	Status  int
	Message string // "message: reason", from Kratos' error body
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("Kratos answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("Kratos answered %d: %s", e.Status, e.Message)
}

// unavailableError is a request that failed every attempt for want of an
// answer.
type unavailableError struct {
	what     string
	attempts int
	last     error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%s: no answer after %d attempts (last: %v)", e.what, e.attempts, e.last)
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.last} }

// errorText reads Kratos' error body ({"error": {message, reason}}) into
// one line, never echoing anything but those two fields.
func errorText(body []byte) string {
	var eb struct {
		Error struct {
			Message string `json:"message"`
			Reason  string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) != nil {
		return ""
	}
	msg := eb.Error.Message
	if eb.Error.Reason != "" && eb.Error.Reason != msg {
		if msg != "" {
			msg += ": "
		}
		msg += eb.Error.Reason
	}
	return clip(msg)
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// transient reports whether a status is worth repeating the request for.
func transient(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// do sends one request, repeating it per c.retry while there is no answer
// or a transient one (and, when retry500 is set, a 500). It returns the
// answer's status and body; an error status other than 2xx is an
// *apiError; no answer at all is an *unavailableError or ctx's error.
// what names the request in errors; body is never part of an error.
func (c *client) do(ctx context.Context, what, method, path string, body []byte, retry500 bool) ([]byte, error) {
	b := c.retry.Start(what)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		status, data, err := c.once(ctx, method, path, body)
		var last error
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = err
		case status >= 200 && status < 300:
			return data, nil
		case transient(status) || (retry500 && status == http.StatusInternalServerError):
			last = &apiError{Status: status, Message: errorText(data)}
		default:
			return nil, &apiError{Status: status, Message: errorText(data)}
		}
		err = b.Retry(ctx, retry.Mark(last, true))
		var gaveUp *retry.GaveUpError
		switch {
		case err == nil:
			continue
		case errors.As(err, &gaveUp):
			var ae *apiError
			if errors.As(last, &ae) && ae.Status == http.StatusInternalServerError {
				return nil, ae
			}
			return nil, &unavailableError{what: what, attempts: gaveUp.Attempts, last: last}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			return nil, err
		}
	}
}

func (c *client) once(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error quotes the URL, never the body; drop the wrapper's
		// method and URL repetition but keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, nil, ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, data, nil
}

// remoteIdentity is what the importer reads of an identity Kratos holds.
type remoteIdentity struct {
	ID            string          `json:"id"`
	Traits        json.RawMessage `json:"traits"`
	ExternalID    string          `json:"external_id"`
	MetadataAdmin json.RawMessage `json:"metadata_admin"`
}

// findByIdentifier lists the identities with the credentials identifier
// (an e-mail or phone, matched as Kratos normalises it, or an OIDC
// "provider:subject").
func (c *client) findByIdentifier(ctx context.Context, identifier string) ([]remoteIdentity, error) {
	data, err := c.do(ctx, "looking an identity up", http.MethodGet, "/identities?credentials_identifier="+url.QueryEscape(identifier), nil, true)
	if err != nil {
		return nil, err
	}
	var out []remoteIdentity
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading Kratos' identity list: %w", err)
	}
	return out, nil
}

// findByExternalID returns the identity with the external id (Kratos v25.4
// and later), or nil when there is none or the server has no such route.
func (c *client) findByExternalID(ctx context.Context, ext string) (*remoteIdentity, error) {
	data, err := c.do(ctx, "looking an identity up", http.MethodGet, "/identities/by/external/"+url.PathEscape(ext), nil, true)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out remoteIdentity
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading Kratos' identity: %w", err)
	}
	return &out, nil
}

// existing returns which of ids Kratos holds (GET /admin/identities?ids=…,
// 100 at a time).
func (c *client) existing(ctx context.Context, ids []string) (map[string]bool, error) {
	found := map[string]bool{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 100)]
		ids = ids[len(chunk):]
		q := url.Values{"page_size": {"1000"}, "ids": chunk}
		data, err := c.do(ctx, "listing identities", http.MethodGet, "/identities?"+q.Encode(), nil, true)
		if err != nil {
			return nil, err
		}
		var list []remoteIdentity
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("reading Kratos' identity list: %w", err)
		}
		for _, r := range list {
			found[r.ID] = true
		}
	}
	return found, nil
}
