// Package kratosimport loads an `auth export --format kratos` file into
// Ory Kratos through its admin batch API (PATCH /admin/identities, create
// operations, one result per identity), resumably.
//
// How an interruption is survived without duplicating or losing an
// identity:
//
//   - The report file is the journal. Each batch's results (created with
//     the identity id, present, refused with Kratos' reason) are appended
//     and fsynced only after Kratos answered the batch; a run reads the
//     report first and sends again only the lines without a created or
//     present result (refused ones are sent again, in case the cause was
//     fixed; the latest result of a line is the one that counts).
//   - A batch that was in flight when the importer died is therefore sent
//     again. Kratos creates a batch in one transaction, so it holds either
//     all of that batch's identities or none of them. Those it holds come
//     back as 409 Conflict (their e-mail, phone or OIDC identifier, or
//     their address, is taken); the importer looks each one up (by
//     credentials identifier, and by external_id where the server has it)
//     and counts it present when the identity found carries the same
//     metadata_admin.firebase_uid (or, for lines without one, the same
//     external_id or traits). A 409 for an identity of another user is a
//     refusal, naming the identity that holds the identifier.
//   - The report's first entry records the input's SHA-256: a report
//     belongs to one input file, and a run with another input stops
//     instead of mixing line numbers.
//
// A batch Kratos refuses as a whole (400 for one malformed identity, 413,
// 409 for a duplicate external_id, or 500 such as an external_id longer
// than its column) is split in halves until the identity at fault is
// alone and refused with Kratos' reason; the others are created. No
// answer at all (connection errors, 429, 502, 503, 504) is retried with
// backoff and then stops the run with the journal intact, so the same
// command resumes it.
package kratosimport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Batch sizes: DefaultBatchSize fits every Kratos version (v25.4 and later
// accept 1,000 identities a request, identity.BatchPatchIdentitiesLimit),
// MaxBatchSize is v1.3's cap.
const (
	DefaultBatchSize = 1000
	MaxBatchSize     = 2000
)

// Options configure Import.
type Options struct {
	// URL is Kratos' admin URL (http://host:4434, or an Ory Network
	// project URL); "/admin/identities" is appended ("/admin" once).
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// BatchSize identities per request (DefaultBatchSize when 0, at most
	// MaxBatchSize).
	BatchSize int
	// Retry is the retry policy (DefaultRetry when Attempts is 0).
	Retry Retry
	// HTTPClient sends the requests (one with a 2-minute timeout when nil).
	HTTPClient *http.Client
	// Progress, when set, receives one line per batch.
	Progress io.Writer
}

// Summary counts results. Run counts this run's; Total counts the latest
// result of every input line, earlier runs included.
type Summary struct {
	Lines int // identities in the input
	Run   Counts
	Total Counts
	// Refused holds the latest entry of every refused line, in line order.
	Refused []Entry
	// Missing are lines with no result yet (only after an error).
	Missing int
}

// ErrUnavailable marks a run stopped because Kratos gave no usable answer
// (connection errors, 429, 502, 503, 504) after every retry: running the
// same import again resumes it.
var ErrUnavailable = errors.New("Kratos did not answer")

// Counts of results.
type Counts struct{ Created, Present, Refused int }

func (c *Counts) add(result string) {
	switch result {
	case Created:
		c.Created++
	case Present:
		c.Present++
	case Refused:
		c.Refused++
	}
}

// item is one input line to send.
type item struct {
	line    int
	body    json.RawMessage
	uid     string // metadata_admin.firebase_uid
	patchID string
}

// patchNamespace derives patch ids (UUID v5 of the line number), echoed by
// Kratos, so the importer can check each result belongs to its line.
var patchNamespace = uuid.MustParse("6d1f9f5e-2b8a-4c1e-9a59-4f1d0c3b7e21")

// Import sends the identities of the file in (one JSON object per line,
// `auth export --format kratos`) to Kratos and appends each one's result
// to the report file at report (JSON Lines of Entry), resuming from what
// the report already holds. It returns the summary even with an error; the
// error says why the run stopped early (Kratos unreachable, credentials
// refused, the report belongs to another input, ctx done). Refused
// identities are no error: see Summary.Total.Refused.
func Import(ctx context.Context, in, report string, opts Options) (Summary, error) {
	var sum Summary
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BatchSize < 1 || opts.BatchSize > MaxBatchSize {
		return sum, fmt.Errorf("batch size %d: want 1 to %d (Kratos' cap: %d in v1.3, %d from v25.4)", opts.BatchSize, MaxBatchSize, MaxBatchSize, DefaultBatchSize)
	}
	if opts.Retry.Attempts == 0 {
		opts.Retry = DefaultRetry
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	base := strings.TrimRight(opts.URL, "/")
	if base == "" || !(strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://")) {
		return sum, errors.New("the Kratos admin URL must start with http:// or https://")
	}
	base = strings.TrimSuffix(base, "/admin") + "/admin"
	c := &client{base: base, token: opts.Token, http: opts.HTTPClient, retry: opts.Retry}

	digest, lines, err := inputDigest(in)
	if err != nil {
		return sum, err
	}
	sum.Lines = lines
	j, err := openJournal(report)
	if err != nil {
		return sum, err
	}
	defer j.close()
	for _, r := range j.runs {
		if r.InputSHA256 != digest {
			return sum, fmt.Errorf("the report %s was written for another input file (its SHA-256 differs): pass another --report, or the file it was made for", report)
		}
		// Lines the report has as created would never reach another Kratos.
		if r.URL != redactURL(base) {
			return sum, fmt.Errorf("the report %s was written for the Kratos at %s: pass another --report to import into %s", report, r.URL, redactURL(base))
		}
	}
	if err := j.append(Entry{Kind: "run", Started: time.Now().UTC().Format(time.RFC3339), InputSHA256: digest, URL: redactURL(base)}); err != nil {
		return sum, err
	}

	imp := &importer{c: c, j: j, progress: opts.Progress, sum: &sum}
	err = imp.run(ctx, in, opts.BatchSize)
	imp.finish()
	return sum, err
}

// redactURL drops any user information from u before it is written down.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if s := strings.Index(u, "://"); s >= 0 && s < i {
			return u[:s+3] + "…@" + u[i+1:]
		}
	}
	return u
}

// inputDigest returns the SHA-256 of the file and its count of non-blank
// lines.
func inputDigest(path string) (string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("opening the input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	n := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("reading the input: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

type importer struct {
	c        *client
	j        *journal
	progress io.Writer
	sum      *Summary
	batches  int
}

func (imp *importer) run(ctx context.Context, in string, size int) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("opening the input: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var batch []item
	lineNo := 0
	for {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("reading the input: %w", rerr)
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			lineNo++
			if e, ok := imp.j.last[lineNo]; !ok || e.Result == Refused {
				it, bad := parseLine(lineNo, trimmed)
				if bad != nil {
					if err := imp.j.append(*bad); err != nil {
						return err
					}
					imp.sum.Run.add(Refused)
				} else {
					batch = append(batch, it)
				}
			}
		}
		if len(batch) == size || (rerr == io.EOF && len(batch) > 0) {
			if err := imp.send(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// parseLine reads one input line, which it keeps as the item's body; a
// line that is not a JSON object is refused here (its entry returned),
// without quoting it.
func parseLine(n int, line []byte) (item, *Entry) {
	var probe struct {
		MetadataAdmin struct {
			FirebaseUID string `json:"firebase_uid"`
		} `json:"metadata_admin"`
	}
	// One pass checks and reads the line: a syntax error refuses it, a
	// metadata_admin of another shape only means no uid.
	var syntax *json.SyntaxError
	if err := json.Unmarshal(line, &probe); errors.As(err, &syntax) || line[0] != '{' {
		return item{}, &Entry{Kind: "identity", Line: n, Result: Refused, Reason: "the line is not a JSON object"}
	}
	// line is the caller's own (bufio.Reader.ReadBytes allocates each).
	return item{line: n, body: line, uid: probe.MetadataAdmin.FirebaseUID,
		patchID: uuid.NewSHA1(patchNamespace, fmt.Appendf(nil, "line:%d", n)).String()}, nil
}

// send imports one batch and journals its results.
func (imp *importer) send(ctx context.Context, batch []item) error {
	entries, err := imp.create(ctx, batch)
	if err != nil {
		return err
	}
	if err := imp.j.append(entries...); err != nil {
		return err
	}
	imp.batches++
	var c Counts
	for _, e := range entries {
		c.add(e.Result)
		imp.sum.Run.add(e.Result)
	}
	if imp.progress != nil {
		fmt.Fprintf(imp.progress, "kratos import: batch %d (lines %d–%d): %d created, %d already present, %d refused\n",
			imp.batches, batch[0].line, batch[len(batch)-1].line, c.Created, c.Present, c.Refused)
	}
	return nil
}

// create sends batch as one request and returns one entry per item,
// splitting the batch when Kratos refuses it as a whole.
func (imp *importer) create(ctx context.Context, batch []item) ([]Entry, error) {
	var body bytes.Buffer
	body.WriteString(`{"identities":[`)
	for i, it := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"patch_id":"` + it.patchID + `","create":`)
		body.Write(it.body)
		body.WriteByte('}')
	}
	body.WriteString(`]}`)
	what := fmt.Sprintf("importing lines %d–%d", batch[0].line, batch[len(batch)-1].line)
	data, err := imp.c.do(ctx, what, http.MethodPatch, "/identities", body.Bytes(), len(batch) == 1)
	var (
		ae *apiError
		ue *unavailableError
	)
	switch {
	case err == nil:
	case errors.As(err, &ue):
		return nil, err
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, fmt.Errorf("%s: %w (check --token / KRATOS_ADMIN_TOKEN)", what, ae)
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return nil, fmt.Errorf("%s: %w: is %s Kratos' admin URL (v1.2 or later)?", what, ae, redactURL(imp.c.base))
		}
		if strings.HasPrefix(ae.Message, "json: unknown field") {
			// Every line has the field: stop rather than refuse them all.
			return nil, fmt.Errorf("%s: %w%s", what, ae, wholeBatchHint(ae))
		}
		if len(batch) > 1 {
			half := len(batch) / 2
			a, err := imp.create(ctx, batch[:half])
			if err != nil {
				return nil, err
			}
			b, err := imp.create(ctx, batch[half:])
			if err != nil {
				return nil, err
			}
			return append(a, b...), nil
		}
		if ae.Status == http.StatusConflict {
			e, err := imp.reconcile(ctx, batch[0], ae.Message)
			if err != nil {
				return nil, err
			}
			return []Entry{e}, nil
		}
		reason := ae.Message
		if ae.Status == http.StatusInternalServerError && reason == "" {
			reason = "internal server error"
		}
		return []Entry{refused(batch[0], ae.Status, reason+wholeBatchHint(ae))}, nil
	default:
		return nil, err
	}
	var res struct {
		Identities []*struct {
			Action   string `json:"action"`
			Identity string `json:"identity"`
			PatchID  string `json:"patch_id"`
			Error    *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Reason  string `json:"reason"`
			} `json:"error"`
		} `json:"identities"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%s: reading Kratos' answer: %w", what, err)
	}
	if len(res.Identities) != len(batch) {
		return nil, fmt.Errorf("%s: Kratos answered %d results for %d identities", what, len(res.Identities), len(batch))
	}
	entries := make([]Entry, 0, len(batch))
	conflicted := false
	for _, r := range res.Identities {
		if r != nil && r.Action == "error" && r.Error != nil && r.Error.Code == http.StatusConflict {
			conflicted = true
		}
	}
	var stored map[string]bool
	if conflicted {
		// Kratos v1.3 rolls back the whole batch when one identity of it
		// conflicts, yet answers the others as created: check they exist.
		var ids []string
		for _, r := range res.Identities {
			if r != nil && r.Action == "create" && r.Identity != "" {
				ids = append(ids, r.Identity)
			}
		}
		if stored, err = imp.c.existing(ctx, ids); err != nil {
			return nil, fmt.Errorf("%s: checking the identities Kratos answered as created: %w", what, err)
		}
	}
	var again []item // answered as created, not stored
	for i, it := range batch {
		r := res.Identities[i]
		switch {
		case r == nil:
			return nil, fmt.Errorf("%s: Kratos answered no result for line %d", what, it.line)
		case r.PatchID != "" && r.PatchID != it.patchID:
			return nil, fmt.Errorf("%s: Kratos' result %d belongs to another patch", what, i)
		case r.Action == "create" && r.Identity != "" && conflicted && !stored[r.Identity]:
			again = append(again, it)
		case r.Action == "create" && r.Identity != "":
			entries = append(entries, Entry{Kind: "identity", Line: it.line, FirebaseUID: it.uid, Result: Created, IdentityID: r.Identity})
		case r.Action == "error" && r.Error != nil && r.Error.Code == http.StatusConflict:
			e, err := imp.reconcile(ctx, it, clip(r.Error.Message))
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		case r.Action == "error" && r.Error != nil:
			msg := r.Error.Message
			if r.Error.Reason != "" && r.Error.Reason != msg {
				msg += ": " + r.Error.Reason
			}
			entries = append(entries, refused(it, r.Error.Code, clip(msg)))
		default:
			return nil, fmt.Errorf("%s: Kratos' result for line %d has action %q and no identity", what, it.line, r.Action)
		}
	}
	if len(again) > 0 {
		more, err := imp.create(ctx, again)
		if err != nil {
			return nil, err
		}
		entries = append(entries, more...)
		slices.SortFunc(entries, func(a, b Entry) int { return a.Line - b.Line })
	}
	return entries, nil
}

// wholeBatchHint explains refusals Kratos gives for a whole request.
func wholeBatchHint(ae *apiError) string {
	switch {
	case strings.Contains(ae.Message, `unknown field "external_id"`):
		return " (this Kratos has no external_id: export again without --kratos-external-id)"
	case ae.Status == http.StatusInternalServerError:
		return " (Kratos failed to store it, e.g. an external_id longer than its 64-character column)"
	}
	return ""
}

func refused(it item, status int, reason string) Entry {
	return Entry{Kind: "identity", Line: it.line, FirebaseUID: it.uid, Result: Refused, Status: status, Reason: reason}
}

// reconcile decides what a 409 for it means: the identity is already
// there (an earlier run created it) or another identity holds one of its
// identifiers or addresses.
func (imp *importer) reconcile(ctx context.Context, it item, message string) (Entry, error) {
	var body struct {
		Traits        map[string]json.RawMessage `json:"traits"`
		ExternalID    string                     `json:"external_id"`
		MetadataAdmin json.RawMessage            `json:"metadata_admin"`
		Credentials   struct {
			OIDC struct {
				Config struct {
					Providers []struct{ Provider, Subject string } `json:"providers"`
				} `json:"config"`
			} `json:"oidc"`
		} `json:"credentials"`
	}
	_ = json.Unmarshal(it.body, &body)
	var keys []string
	for _, k := range []string{"email", "phone"} {
		var s string
		if json.Unmarshal(body.Traits[k], &s) == nil && s != "" {
			keys = append(keys, s)
		}
	}
	for _, p := range body.Credentials.OIDC.Config.Providers {
		keys = append(keys, p.Provider+":"+p.Subject)
	}
	ours := func(r remoteIdentity) bool {
		switch {
		case it.uid != "":
			var m struct {
				FirebaseUID string `json:"firebase_uid"`
			}
			return json.Unmarshal(r.MetadataAdmin, &m) == nil && m.FirebaseUID == it.uid
		case body.ExternalID != "":
			return r.ExternalID == body.ExternalID
		}
		var a, b any
		_ = json.Unmarshal(r.Traits, &a)
		tb, _ := json.Marshal(body.Traits)
		_ = json.Unmarshal(tb, &b)
		return reflect.DeepEqual(a, b)
	}
	var others []string
	if body.ExternalID != "" {
		r, err := imp.c.findByExternalID(ctx, body.ExternalID)
		if err != nil {
			return Entry{}, fmt.Errorf("line %d: %w", it.line, err)
		}
		if r != nil {
			if ours(*r) {
				return Entry{Kind: "identity", Line: it.line, FirebaseUID: it.uid, Result: Present, IdentityID: r.ID}, nil
			}
			others = append(others, r.ID)
		}
	}
	for _, k := range keys {
		found, err := imp.c.findByIdentifier(ctx, k)
		if err != nil {
			return Entry{}, fmt.Errorf("line %d: %w", it.line, err)
		}
		for _, r := range found {
			if ours(r) {
				return Entry{Kind: "identity", Line: it.line, FirebaseUID: it.uid, Result: Present, IdentityID: r.ID}, nil
			}
			if !slices.Contains(others, r.ID) {
				others = append(others, r.ID)
			}
		}
	}
	reason := "Kratos answered 409 Conflict"
	if message != "" {
		reason += " (" + message + ")"
	}
	if len(others) > 0 {
		reason += "; its e-mail, phone, OIDC subject or external_id belongs to identity " + strings.Join(others, ", ")
	} else {
		reason += "; no identity with its identifiers was found (an address or another unique value is taken)"
	}
	return refused(it, http.StatusConflict, reason), nil
}

// finish fills the totals from the journal.
func (imp *importer) finish() {
	s := imp.sum
	s.Total = Counts{}
	s.Refused = nil
	lines := make([]int, 0, len(imp.j.last))
	for l := range imp.j.last {
		lines = append(lines, l)
	}
	slices.Sort(lines)
	for _, l := range lines {
		e := imp.j.last[l]
		s.Total.add(e.Result)
		if e.Result == Refused {
			s.Refused = append(s.Refused, e)
		}
	}
	s.Missing = max(s.Lines-len(imp.j.last), 0)
}
