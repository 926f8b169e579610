// Package kratostest is an in-process model of Ory Kratos' admin identity
// API as it treats imports — PATCH /admin/identities (batch create),
// GET /admin/identities (keyset paging, credentials_identifier and ids
// filters) and GET /admin/identities/{id} — written from ory/kratos v1.3.1
// (identity/handler.go, identity/manager.go, persistence/sql/identity) and,
// with Options.ExternalID, the external_id of v25.4 and later. README.md
// lists what it models and what it does not. Tests serve it with httptest
// on loopback; its Fault hooks make it fail or cut a request at a chosen
// moment, so import and resume logic can be tested without timing.
package kratostest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nyaruka/phonenumbers"

	"github.com/baasmigrate/baasmigrate/passwords"
)

// Batch limits of PATCH /admin/identities (identity.BatchPatchIdentitiesLimit).
const (
	// BatchLimitV13 is ory/kratos v1.3.1's.
	BatchLimitV13 = 2000
	// BatchLimitV25 is v25.4's and v26.2's.
	BatchLimitV25 = 1000
	// MaxExternalIDLen is the length of identities.external_id
	// (VARCHAR(64), persistence/sql/migrations/sql/
	// 20250708190000000000_identities_external_id.*.up.sql).
	MaxExternalIDLen = 64
)

// Kratos versions the server models.
const (
	// V131 is ory/kratos v1.3.1: batches of up to 2000; no external_id
	// (its strict decoder fails the whole batch: HTTP 400, code 500 in the
	// body, "json: unknown field"); and, when one identity of a batch conflicts (409), the
	// transaction that stored the others is rolled back although the answer
	// lists them as created (fixed later by "do not roll back transaction on
	// partial identity insert error", ory/kratos #4211) — checked against a
	// v1.3.1 built from its own code.
	V131 = "v1.3.1"
	// V254 is ory/kratos v25.4 (and v26.2): batches of up to 1000,
	// external_id (VARCHAR(64): a longer one fails the whole batch with
	// 500, a duplicate one with 409), partial inserts kept.
	V254 = "v25.4"
)

// Options choose the Kratos version modelled.
type Options struct {
	// Version is V131 (when empty) or V254.
	Version string
	// Token, when set, is the bearer token every request must carry
	// (Ory Network's admin API key); without it the answer is 401.
	Token string
	// SchemaIDs are the identity schema ids the server knows (all use the
	// schema of README.md); {"default"} when empty.
	SchemaIDs []string
}

// Identity is an identity as the server stores it.
type Identity struct {
	ID                  string           `json:"id"`
	SchemaID            string           `json:"schema_id"`
	SchemaURL           string           `json:"schema_url"`
	State               string           `json:"state"`
	StateChangedAt      time.Time        `json:"state_changed_at"`
	Traits              json.RawMessage  `json:"traits"`
	VerifiableAddresses []Address        `json:"verifiable_addresses"`
	RecoveryAddresses   []Address        `json:"recovery_addresses"`
	MetadataPublic      json.RawMessage  `json:"metadata_public"`
	MetadataAdmin       json.RawMessage  `json:"metadata_admin"`
	ExternalID          string           `json:"external_id,omitempty"`
	CreatedAt           time.Time        `json:"created_at"`
	UpdatedAt           time.Time        `json:"updated_at"`
	Credentials         map[string]*Cred `json:"-"` // rendered by render
}

// Address is a verifiable or recovery address.
type Address struct {
	ID         string     `json:"id"`
	Value      string     `json:"value"`
	Verified   *bool      `json:"verified,omitempty"`
	Via        string     `json:"via"`
	Status     string     `json:"status,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// Cred is one credential of an identity.
type Cred struct {
	Type        string          `json:"type"`
	Identifiers []string        `json:"identifiers"`
	Config      json.RawMessage `json:"config,omitempty"`
	Version     int             `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	hashed      string
}

// Fault is what the server does to one PATCH /admin/identities request.
type Fault struct {
	// Status, when not 0, answers the request with it (and a Kratos error
	// body) without looking at it: 429, 500, 503, ...
	Status int
	// Drop cuts the connection without an answer; with Commit the batch
	// is stored first (the answer is lost), without it nothing is.
	Drop, Commit bool
	// Before runs before the server cuts the connection (a test kills the
	// importer here, say); the request is held until it returns.
	Before func()
}

// Server is the model. Its zero value is not usable: call New.
type Server struct {
	opts       Options
	batchLimit int
	externalID bool // the field exists
	rollback   bool // a 409 in a batch rolls the others back (v1.3.1)

	mu          sync.Mutex
	byID        map[string]*Identity
	identifiers map[string]string // "password:lowercased", "oidc:provider:subject" → identity id
	addresses   map[string]string // "verify|via|value", "recover|via|value" → identity id
	externalIDs map[string]string
	faults      map[int]Fault // by 1-based PATCH request number
	patches     int
	requests    []int // identities per PATCH request, in order
}

// New returns an empty server.
func New(opts Options) *Server {
	if opts.Version == "" {
		opts.Version = V131
	}
	if opts.Version != V131 && opts.Version != V254 {
		panic("kratostest: unknown version " + opts.Version)
	}
	if len(opts.SchemaIDs) == 0 {
		opts.SchemaIDs = []string{"default"}
	}
	return &Server{opts: opts, batchLimit: map[bool]int{true: BatchLimitV13, false: BatchLimitV25}[opts.Version == V131],
		externalID: opts.Version == V254, rollback: opts.Version == V131, byID: map[string]*Identity{}, identifiers: map[string]string{},
		addresses: map[string]string{}, externalIDs: map[string]string{}, faults: map[int]Fault{}}
}

// FaultOn makes the n-th PATCH /admin/identities request (counting from 1
// over the server's life) behave as f says.
func (s *Server) FaultOn(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[n] = f
}

// Patches returns how many identities each PATCH /admin/identities request
// carried, in order (faulty and refused requests included).
func (s *Server) Patches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Identities returns a copy of every stored identity, by id.
func (s *Server) Identities() []Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Identity
	for _, id := range s.sortedIDs() {
		out = append(out, *s.byID[id])
	}
	return out
}

// VerifyPassword models a password sign-in (the password strategy of
// /self-service/login): it finds the identity whose password identifier is
// identifier (lower-cased and trimmed, as Kratos does) and checks password
// against its hashed_password with passwords.Verify, the verifier of
// `baasmigrate auth verify-password`, through Credential. It returns the
// identity's id. It checks the hash only: Kratos also refuses (401) an
// identity whose state is inactive, whatever the password. An error means no check could be made: no such
// identifier, no password, a hash form this package does not model.
func (s *Server) VerifyPassword(identifier string, password []byte) (string, bool, error) {
	s.mu.Lock()
	id, ok := s.identifiers["password:"+normalize(identifier)]
	var hashed string
	if ok {
		if c := s.byID[id].Credentials["password"]; c != nil {
			hashed = c.hashed
		}
	}
	s.mu.Unlock()
	if !ok {
		return "", false, errors.New("no identity has this password identifier")
	}
	if hashed == "" {
		return id, false, errors.New("the identity has no password")
	}
	c, err := Credential(hashed)
	if err != nil {
		return id, false, err
	}
	match, err := passwords.Verify(c, password)
	return id, match, err
}

func normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (s *Server) sortedIDs() []string {
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ServeHTTP serves the admin API under /admin (and the same routes without
// the prefix, as Kratos' admin port does).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		writeError(w, http.StatusUnauthorized, "The request could not be authorized", "")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/admin")
	switch {
	case path == "/identities" && r.Method == http.MethodPatch:
		s.batchPatch(w, r)
	case path == "/identities" && r.Method == http.MethodGet:
		s.list(w, r)
	case strings.HasPrefix(path, "/identities/by/external/") && r.Method == http.MethodGet && s.externalID:
		ext, _ := url.PathUnescape(strings.TrimPrefix(path, "/identities/by/external/"))
		s.mu.Lock()
		id, ok := s.externalIDs[ext]
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "Unable to locate the resource", "")
			return
		}
		s.writeIdentity(w, id, false)
	case strings.HasPrefix(path, "/identities/") && !strings.Contains(strings.TrimPrefix(path, "/identities/"), "/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(path, "/identities/")
		declassify := false
		for _, v := range r.URL.Query()["include_credential"] {
			switch v {
			case "password":
				declassify = true
			case "oidc", "totp", "lookup_secret", "webauthn", "code", "passkey", "profile", "saml", "link_recovery", "code_recovery":
			default:
				writeError(w, http.StatusBadRequest, "The request was malformed or contained invalid parameters", fmt.Sprintf("Invalid value `%s` for parameter `include_credential`.", v))
				return
			}
		}
		s.writeIdentity(w, id, declassify)
	default:
		writeError(w, http.StatusNotFound, "Unable to locate the resource", "")
	}
}

// kratosError is herodot's DefaultError as Kratos writes it.
type kratosError struct {
	Code    int    `json:"code"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, message, reason string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]kratosError{"error": {Code: code, Status: http.StatusText(code), Message: message, Reason: reason}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) writeIdentity(w http.ResponseWriter, id string, declassify bool) {
	s.mu.Lock()
	i, ok := s.byID[id]
	var body map[string]any
	if ok {
		body = render(i, declassify)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Unable to locate the resource", "")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// render is Kratos' WithCredentialsAndAdminMetadataInJSON: credentials
// without their config unless declassified.
func render(i *Identity, declassify bool) map[string]any {
	b, _ := json.Marshal(i)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	creds := map[string]any{}
	for t, c := range i.Credentials {
		cc := *c
		if !(declassify && t == "password") {
			cc.Config = nil
		}
		creds[t] = cc
	}
	if len(creds) > 0 {
		m["credentials"] = creds
	}
	return m
}

// createBody is identity.CreateIdentityBody, decoded strictly.
type createBody struct {
	SchemaID    string          `json:"schema_id"`
	Traits      json.RawMessage `json:"traits"`
	Credentials *struct {
		Password *struct {
			Config struct {
				HashedPassword           string `json:"hashed_password"`
				Password                 string `json:"password"`
				UsePasswordMigrationHook bool   `json:"use_password_migration_hook"`
			} `json:"config"`
		} `json:"password"`
		OIDC *struct {
			Config struct {
				Config    json.RawMessage `json:"config"`
				Providers []struct {
					Subject  string `json:"subject"`
					Provider string `json:"provider"`
				} `json:"providers"`
			} `json:"config"`
		} `json:"oidc"`
	} `json:"credentials"`
	VerifiableAddresses []inAddress     `json:"verifiable_addresses"`
	RecoveryAddresses   []inAddress     `json:"recovery_addresses"`
	MetadataPublic      json.RawMessage `json:"metadata_public"`
	MetadataAdmin       json.RawMessage `json:"metadata_admin"`
	State               string          `json:"state"`
	ExternalID          *string         `json:"external_id"`
}

type inAddress struct {
	ID         string     `json:"id"`
	Value      string     `json:"value"`
	Verified   bool       `json:"verified"`
	Via        string     `json:"via"`
	Status     string     `json:"status"`
	VerifiedAt *time.Time `json:"verified_at"`
	CreatedAt  *time.Time `json:"created_at"`
	UpdatedAt  *time.Time `json:"updated_at"`
}

type patchBody struct {
	Identities []*struct {
		Create  *createBody `json:"create"`
		PatchID *string     `json:"patch_id"`
	} `json:"identities"`
}

type patchResult struct {
	Action     string       `json:"action"`
	IdentityID *string      `json:"identity,omitempty"`
	PatchID    *string      `json:"patch_id,omitempty"`
	Error      *kratosError `json:"error,omitempty"`
}

// hijackDrop cuts the connection under w without an answer.
func hijackDrop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) batchPatch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.patches++
	fault, faulty := s.faults[s.patches]
	s.mu.Unlock()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(r.Body)
	var req patchBody
	dec := json.NewDecoder(bytes.NewReader(raw.Bytes()))
	dec.DisallowUnknownFields() // jsonx.NewStrictDecoder
	decodeErr := dec.Decode(&req)
	s.mu.Lock()
	s.requests = append(s.requests, len(req.Identities))
	s.mu.Unlock()
	if faulty && fault.Status != 0 {
		writeError(w, fault.Status, http.StatusText(fault.Status), "kratostest fault")
		return
	}
	if faulty && fault.Drop && !fault.Commit {
		if fault.Before != nil {
			fault.Before()
		}
		hijackDrop(w)
		return
	}
	if decodeErr == nil && !s.externalID {
		for _, p := range req.Identities {
			if p != nil && p.Create != nil && p.Create.ExternalID != nil {
				decodeErr = errors.New(`json: unknown field "external_id"`)
			}
		}
	}
	if decodeErr != nil {
		// Kratos writes the decoder's error with status 400, and herodot,
		// given an error it did not make, says 500 in the body.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]kratosError{"error": {Code: 500, Status: "Internal Server Error", Message: decodeErr.Error()}})
		return
	}
	if len(req.Identities) > s.batchLimit {
		writeError(w, http.StatusBadRequest, "The request was malformed or contained invalid parameters",
			fmt.Sprintf("The maximum number of identities that can be created or deleted at once is %d.", s.batchLimit))
		return
	}
	res := make([]patchResult, len(req.Identities))
	var pending []*pendingIdentity
	for i, p := range req.Identities {
		if p == nil || p.Create == nil {
			continue // Kratos answers a patch without create with an empty entry
		}
		res[i] = patchResult{Action: "create", PatchID: p.PatchID}
		pi, code, reason := s.fromBody(p.Create)
		if code != 0 { // identityFromCreateIdentityBody: the whole batch fails
			writeError(w, code, "The request was malformed or contained invalid parameters", reason)
			return
		}
		pi.index = i
		pending = append(pending, pi)
	}
	s.mu.Lock()
	code, reason := s.commit(pending)
	s.mu.Unlock()
	if code != 0 {
		if code == http.StatusInternalServerError {
			writeError(w, code, "An internal server error occurred, please contact the system administrator", reason)
		} else {
			writeError(w, code, reason, "")
		}
		return
	}
	for _, p := range pending {
		if p.err != nil {
			res[p.index].Action = "error"
			res[p.index].Error = p.err
		} else {
			id := p.identity.ID
			res[p.index].IdentityID = &id
		}
	}
	if faulty && fault.Drop {
		if fault.Before != nil {
			fault.Before()
		}
		hijackDrop(w)
		return
	}
	out := make([]*patchResult, len(res))
	for i := range res {
		if res[i].Action != "" {
			out[i] = &res[i]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"identities": out})
}

type pendingIdentity struct {
	index        int
	identity     *Identity
	keys         []string // identifier and address keys it claims
	err          *kratosError
	schemaReason string // why the schema refused it (not sent: Kratos does not)
}

func badRequest() *kratosError {
	const m = "The request was malformed or contained invalid parameters"
	return &kratosError{Code: 400, Status: "Bad Request", Message: m, Reason: m}
}

// fromBody builds an identity as identityFromCreateIdentityBody and the
// identity manager's validation do. A non-zero code fails the whole batch
// (state, hash format); a per-identity problem (schema) is left in err.
func (s *Server) fromBody(b *createBody) (*pendingIdentity, int, string) {
	now := time.Now().UTC()
	i := &Identity{ID: uuid.NewString(), SchemaID: b.SchemaID, State: "active", Traits: b.Traits,
		MetadataPublic: b.MetadataPublic, MetadataAdmin: b.MetadataAdmin, CreatedAt: now, UpdatedAt: now, StateChangedAt: now,
		Credentials: map[string]*Cred{}}
	if b.State != "" {
		if b.State != "active" && b.State != "inactive" {
			return nil, http.StatusBadRequest, "identity state is not valid"
		}
		i.State = b.State
	}
	p := &pendingIdentity{identity: i}
	if b.Credentials != nil && b.Credentials.Password != nil {
		c := b.Credentials.Password.Config
		switch {
		case c.UsePasswordMigrationHook:
			return nil, http.StatusBadRequest, "kratostest does not model the password migration hook"
		case c.Password != "":
			return nil, http.StatusBadRequest, "kratostest does not model plain-text password import"
		case !IsValidHashFormat(c.HashedPassword):
			return nil, http.StatusBadRequest, "The imported password does not match any known hash format. For more information see https://www.ory.sh/dr/2"
		}
		cfg, _ := json.Marshal(map[string]string{"hashed_password": c.HashedPassword})
		i.Credentials["password"] = &Cred{Type: "password", Config: cfg, CreatedAt: now, UpdatedAt: now, hashed: c.HashedPassword}
	}
	if b.Credentials != nil && b.Credentials.OIDC != nil {
		var ids []string
		var providers []map[string]string
		for _, pr := range b.Credentials.OIDC.Config.Providers {
			ids = append(ids, pr.Provider+":"+pr.Subject)
			providers = append(providers, map[string]string{"provider": pr.Provider, "subject": pr.Subject})
		}
		cfg, _ := json.Marshal(map[string]any{"providers": providers})
		i.Credentials["oidc"] = &Cred{Type: "oidc", Identifiers: ids, Config: cfg, CreatedAt: now, UpdatedAt: now}
	}
	if b.ExternalID != nil {
		i.ExternalID = *b.ExternalID
	}
	// Manager.ValidateIdentity: schema, then the schema extensions that set
	// identifiers and addresses. Failures are this identity's (400).
	if i.SchemaID == "" {
		i.SchemaID = s.opts.SchemaIDs[0]
	}
	if !slices.Contains(s.opts.SchemaIDs, i.SchemaID) {
		p.err = badRequest()
		p.schemaReason = "unknown schema_id"
		return p, 0, ""
	}
	i.SchemaURL = "http://kratostest/schemas/" + base64.RawURLEncoding.EncodeToString([]byte(i.SchemaID))
	email, phone, reason := validateTraits(i.Traits)
	if reason != "" {
		// Kratos v1.3.1 answers the generic text, not the schema's reason.
		p.err = badRequest()
		p.schemaReason = reason
		return p, 0, ""
	}
	if len(i.Traits) == 0 || string(i.Traits) == "null" {
		i.Traits = json.RawMessage("{}")
	}
	if len(i.MetadataPublic) == 0 {
		i.MetadataPublic = json.RawMessage("null")
	}
	if len(i.MetadataAdmin) == 0 {
		i.MetadataAdmin = json.RawMessage("null")
	}
	// The schema's password identifiers make a password credential even
	// for an identity imported without a password (as Kratos does).
	var pwIDs []string
	for _, v := range []string{email, phone} {
		if v != "" {
			pwIDs = append(pwIDs, normalize(v))
		}
	}
	if pw := i.Credentials["password"]; pw != nil {
		if len(pwIDs) == 0 {
			p.err = badRequest()
			p.schemaReason = "a password without an identifier"
			return p, 0, ""
		}
		pw.Identifiers = pwIDs
	} else if len(pwIDs) > 0 {
		i.Credentials["password"] = &Cred{Type: "password", Identifiers: pwIDs, CreatedAt: now, UpdatedAt: now}
	}
	// extension_verification / extension_recovery: an imported address is
	// kept when it matches a trait the schema marks, the others dropped;
	// a marked trait without one gets an unverified address.
	addr := func(imported []inAddress, value, via string, verifiable bool) Address {
		value = normalize(value)
		a := Address{ID: uuid.NewString(), Value: value, Via: via, CreatedAt: now, UpdatedAt: now}
		if verifiable {
			f := false
			a.Verified, a.Status = &f, "pending"
		}
		for _, in := range imported {
			if normalize(in.Value) == value && (in.Via == via || in.Via == "") && verifiable {
				v := in.Verified
				a.Verified = &v
				if in.Status != "" {
					a.Status = in.Status
				} else if v {
					a.Status = "completed"
				}
				if v {
					t := now
					if in.VerifiedAt != nil {
						t = *in.VerifiedAt
					}
					a.VerifiedAt = &t
				}
			}
		}
		return a
	}
	if email != "" {
		i.VerifiableAddresses = append(i.VerifiableAddresses, addr(b.VerifiableAddresses, email, "email", true))
		i.RecoveryAddresses = append(i.RecoveryAddresses, addr(b.RecoveryAddresses, email, "email", false))
	}
	if phone != "" {
		i.VerifiableAddresses = append(i.VerifiableAddresses, addr(b.VerifiableAddresses, phone, "sms", true))
	}
	for _, a := range i.VerifiableAddresses {
		p.keys = append(p.keys, "verify|"+a.Via+"|"+a.Value)
	}
	for _, a := range i.RecoveryAddresses {
		p.keys = append(p.keys, "recover|"+a.Via+"|"+a.Value)
	}
	for t, c := range i.Credentials {
		for _, id := range c.Identifiers {
			if t == "password" {
				p.keys = append(p.keys, "password:"+id)
			} else {
				p.keys = append(p.keys, "oidc:"+id)
			}
		}
	}
	return p, 0, ""
}

// isEmail is the "email" format of ory/jsonschema v3.0.8 (formats.go),
// which Kratos v1.3.1 validates traits with: at most 254 bytes, a local
// part of at most 64 before the last "@", a hostname after it.
func isEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if len(s) > 254 || at < 0 || at > 64 {
		return false
	}
	host := strings.TrimSuffix(s[at+1:], ".")
	if len(host) > 253 || strings.HasPrefix(host, "-") {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) < 1 || len(label) > 63 || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validateTraits checks traits against the schema of README.md and
// returns the e-mail and phone traits, or the reason they do not validate.
func validateTraits(raw json.RawMessage) (email, phone, reason string) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", "", ""
	}
	var t map[string]json.RawMessage
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", "", `I[#/traits] S[#/properties/traits/type] expected object`
	}
	for k, v := range t {
		var sv string
		if k != "email" && k != "phone" {
			return "", "", fmt.Sprintf(`I[#/traits] S[#/properties/traits/additionalProperties] additionalProperties %q not allowed`, k)
		}
		if err := json.Unmarshal(v, &sv); err != nil {
			return "", "", fmt.Sprintf(`I[#/traits/%s] S[#/properties/traits/properties/%s/type] expected string`, k, k)
		}
		switch k {
		case "email":
			if !isEmail(sv) {
				return "", "", `I[#/traits/email] S[#/properties/traits/properties/email/format] is not valid "email"`
			}
			email = sv
		case "phone":
			if n, err := phonenumbers.Parse(sv, ""); err != nil || !phonenumbers.IsValidNumber(n) {
				return "", "", `I[#/traits/phone] S[#/properties/traits/properties/phone/format] is not valid "tel"`
			}
			phone = sv
		}
	}
	return email, phone, ""
}

// commit stores the identities valid so far in one transaction, as
// persistence/sql/identity CreateIdentities does: a too-long or duplicate
// external_id fails everything (500 / 409); a conflicting identifier or
// address fails only that identity (409), in request order, so the first
// of two identities that conflict within a batch is stored. s.mu is held.
func (s *Server) commit(pending []*pendingIdentity) (int, string) {
	seenExt := map[string]bool{}
	for _, p := range pending {
		if p.err != nil || p.identity.ExternalID == "" {
			continue
		}
		ext := p.identity.ExternalID
		if len([]rune(ext)) > MaxExternalIDLen {
			return http.StatusInternalServerError, "" // pq: value too long for type character varying(64)
		}
		if _, dup := s.externalIDs[ext]; dup || seenExt[ext] {
			return http.StatusConflict, "Unable to insert or update resource because a resource with that value exists already"
		}
		seenExt[ext] = true
	}
	claimed := map[string]bool{}
	conflicts := false
	for _, p := range pending {
		if p.err != nil {
			continue
		}
		conflict := false
		for _, k := range p.keys {
			if _, taken := s.identifiers[k]; taken || claimed[k] {
				conflict = true
			}
			if _, taken := s.addresses[k]; taken {
				conflict = true
			}
		}
		if conflict {
			p.err = &kratosError{Code: 409, Status: "Conflict", Message: "Unable to insert or update resource because a resource with that value exists already"}
			conflicts = true
			continue
		}
		for _, k := range p.keys {
			claimed[k] = true
		}
	}
	if conflicts && s.rollback {
		return 0, "" // answered as created, stored nothing (v1.3.1)
	}
	for _, p := range pending {
		if p.err != nil {
			continue
		}
		i := p.identity
		s.byID[i.ID] = i
		for _, k := range p.keys {
			if strings.HasPrefix(k, "password:") || strings.HasPrefix(k, "oidc:") {
				s.identifiers[k] = i.ID
			} else {
				s.addresses[k] = i.ID
			}
		}
		if i.ExternalID != "" {
			s.externalIDs[i.ExternalID] = i.ID
		}
	}
	return 0, ""
}

// list serves GET /admin/identities with keyset paging (page_size, default
// 250, at most 1000; page_token; a Link header with rel="next" while more
// remain), ordered by id, filtered by ids and credentials_identifier
// (password identifiers compared lower-cased and trimmed, OIDC ones
// exactly, "provider:subject").
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := 250
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "The request was malformed or contained invalid parameters", "Invalid page_size")
			return
		}
		size = min(n, 1000)
	}
	token := q.Get("page_token")
	ident := q.Get("credentials_identifier")
	ids := q["ids"]
	declassify := slices.Contains(q["include_credential"], "password")
	s.mu.Lock()
	var matched []map[string]any
	more := false
	last := ""
	for _, id := range s.sortedIDs() {
		if id <= token { // the first page's token is the nil UUID
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		if ident != "" && s.identifiers["password:"+normalize(ident)] != id && s.identifiers["oidc:"+ident] != id {
			continue
		}
		if len(matched) == size {
			more = true
			break
		}
		matched = append(matched, render(s.byID[id], declassify))
		last = id
	}
	s.mu.Unlock()
	first := *r.URL
	fq := first.Query()
	fq.Set("page_size", strconv.Itoa(size))
	fq.Set("page_token", "00000000-0000-0000-0000-000000000000")
	first.RawQuery = fq.Encode()
	link := fmt.Sprintf(`<%s>; rel="first"`, first.RequestURI())
	if more {
		next := *r.URL
		nq := next.Query()
		nq.Set("page_size", strconv.Itoa(size))
		nq.Set("page_token", last)
		next.RawQuery = nq.Encode()
		link += fmt.Sprintf(`,<%s>; rel="next"`, next.RequestURI())
	}
	w.Header().Set("Link", link)
	if matched == nil {
		matched = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, matched)
}
