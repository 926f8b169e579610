// Package manifest writes and checks audit manifests: a JSON account of a
// migration (what was moved from where to where, when, with which counts,
// exclusions and transforms, and a content digest of the target), signed
// with ed25519 when a key is given, and checkable later against its
// signature and against the target as it is then (docs/compliance.md).
//
// A manifest holds no secret (the target's connection string is described
// without its password) and no erasure list entry (only their number and
// the list's SHA-256).
package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Version is the manifest format's version. Fields are only ever added.
const Version = 1

// Manifest is the document. Its canonical encoding (Encode) is what is
// signed and written.
type Manifest struct {
	Version int `json:"version"`
	// Command wrote it: "migrate" or "verify".
	Command string `json:"command"`
	Tool    Tool   `json:"tool"`
	Source  Source `json:"source"`
	Target  Target `json:"target"`
	// Started and Ended bound the command's run.
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// ExitStatus is the command's exit status (0 ok, 1 problems).
	ExitStatus int   `json:"exit_status"`
	Jobs       []Job `json:"jobs"`
	// Transforms lists the field transforms applied, per table and field
	// (their names, never their keys). Empty until the mapping declares
	// transforms; each job's settings_sha256 and mapping_sha256 identify
	// the mapping used meanwhile.
	Transforms []Transform `json:"transforms"`
	Exclusions *Exclusions `json:"exclusions,omitempty"`
	// Content is the target's content digest (see Digest).
	Content Content `json:"content"`
	// Verify holds verify's result (command "verify").
	Verify *VerifyResult `json:"verify,omitempty"`
	// Signature, when set, is an ed25519 signature of the canonical
	// encoding of the manifest without it.
	Signature *Signature `json:"signature,omitempty"`
}

// Tool names the program that wrote the manifest.
type Tool struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
}

// Source is where the records came from.
type Source struct {
	// Platform is --source ("firebase", "supabase", "amplify").
	Platform string `json:"platform"`
}

// Target is where they went, without secrets.
type Target struct {
	// Postgres is the connection string without its password
	// (postgres://user@host:port/database).
	Postgres string `json:"postgres"`
}

// Job is one kind of record moved.
type Job struct {
	Kind string `json:"kind"`
	// Name is the job (kind and source identity, as in the state schema).
	Name   string `json:"name,omitempty"`
	Run    int64  `json:"run,omitempty"`
	Status string `json:"status,omitempty"`
	// SettingsSHA256 is the SHA-256 of the run's stored settings (JSON,
	// sorted keys; no secrets), MappingSHA256 that of its mapping, if any.
	SettingsSHA256 string       `json:"settings_sha256,omitempty"`
	MappingSHA256  string       `json:"mapping_sha256,omitempty"`
	ReadTimes      []ReadTime   `json:"read_times,omitempty"`
	Tables         []TableCount `json:"tables"`
}

// ReadTime is the source snapshot a stream was read at.
type ReadTime struct {
	Stream string `json:"stream"`
	// ReadTime is the last snapshot; FirstReadTime the first (they differ
	// when the run outlived the source's snapshot window).
	ReadTime      time.Time `json:"read_time"`
	FirstReadTime time.Time `json:"first_read_time"`
}

// TableCount is one target table's counts in a run: read = loaded +
// rejected + excluded.
type TableCount struct {
	Table    string `json:"table"`
	Read     int64  `json:"read"`
	Loaded   int64  `json:"loaded"`
	Rejected int64  `json:"rejected"`
	Excluded int64  `json:"excluded"`
}

// Transform is one field transform applied (filled by the mapping's
// transforms).
type Transform struct {
	Table     string `json:"table"`
	Field     string `json:"field"`
	Transform string `json:"transform"`
}

// Exclusions is the erasure list applied.
type Exclusions struct {
	// Entries is the number of distinct entries of the list.
	Entries int `json:"entries"`
	// ListSHA256 is the SHA-256 of the list file's bytes.
	ListSHA256 string `json:"list_sha256"`
	// Records is the number of source records the list excluded.
	Records int64 `json:"records"`
}

// VerifyResult is verify's outcome, per table.
type VerifyResult struct {
	Identical bool          `json:"identical"`
	Tables    []VerifyTable `json:"tables"`
}

// VerifyTable is one table's verify counts.
type VerifyTable struct {
	Kind             string `json:"kind"`
	Table            string `json:"table"`
	Source           int64  `json:"source"`
	Matching         int64  `json:"matching"`
	Mismatched       int64  `json:"mismatched"`
	MissingInTarget  int64  `json:"missing_in_target"`
	ExtraInTarget    int64  `json:"extra_in_target"`
	Rejected         int64  `json:"rejected"`
	Excluded         int64  `json:"excluded"`
	ExcludedInTarget int64  `json:"excluded_in_target"`
}

// Signature is an ed25519 signature.
type Signature struct {
	Algorithm string `json:"algorithm"`
	// PublicKey is the signer's public key (base64 of its 32 bytes).
	PublicKey string `json:"public_key"`
	// Value is the signature (base64 of its 64 bytes).
	Value string `json:"value"`
}

// ToolInfo describes this build of baasmigrate.
func ToolInfo() Tool {
	t := Tool{Name: "baasmigrate", Version: "(devel)"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			t.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				t.Revision = s.Value
			}
		}
	}
	return t
}

// Encode returns m's canonical encoding: indented JSON (two spaces, struct
// field order, map keys sorted, times in UTC RFC 3339 with nanoseconds)
// and a final newline. It is what is written and, without Signature, what
// is signed.
func Encode(m *Manifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// Sign sets m's signature with key (over Encode of m without signature)
// and returns the encoding to write.
func Sign(m *Manifest, key ed25519.PrivateKey) ([]byte, error) {
	m.Signature = nil
	body, err := Encode(m)
	if err != nil {
		return nil, err
	}
	if key != nil {
		m.Signature = &Signature{
			Algorithm: "ed25519",
			PublicKey: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
			Value:     base64.StdEncoding.EncodeToString(ed25519.Sign(key, body)),
		}
		return Encode(m)
	}
	return body, nil
}

// Errors of Check.
var (
	ErrNotCanonical = errors.New("the manifest is not byte for byte as written (altered, or re-formatted)")
	ErrUnsigned     = errors.New("the manifest is not signed")
	ErrBadSignature = errors.New("the signature does not match the manifest")
	ErrOtherKey     = errors.New("the manifest was signed with another key than the public key given")
)

// Parse decodes a manifest file and checks that it is byte for byte its
// canonical encoding (so that no byte can change unnoticed, whitespace
// included): ErrNotCanonical otherwise.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCanonical, err)
	}
	again, err := Encode(&m)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, ErrNotCanonical
	}
	return &m, nil
}

// CheckSignature checks m's signature: against pub when given, else
// against the public key the manifest carries (which proves the manifest
// unaltered since signing, not who signed it). signedBy is the key that
// verified.
func CheckSignature(m *Manifest, pub ed25519.PublicKey) (signedBy ed25519.PublicKey, err error) {
	if m.Signature == nil {
		return nil, ErrUnsigned
	}
	if m.Signature.Algorithm != "ed25519" {
		return nil, fmt.Errorf("%w: algorithm %q", ErrBadSignature, m.Signature.Algorithm)
	}
	embedded, err := base64.StdEncoding.DecodeString(m.Signature.PublicKey)
	if err != nil || len(embedded) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: its public key is not 32 bytes of base64", ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature.Value)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: not 64 bytes of base64", ErrBadSignature)
	}
	if pub != nil && !bytes.Equal(pub, embedded) {
		return nil, ErrOtherKey
	}
	unsigned := *m
	unsigned.Signature = nil
	body, err := Encode(&unsigned)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(embedded, body, sig) {
		return nil, ErrBadSignature
	}
	return embedded, nil
}
