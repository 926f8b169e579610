// Package firebasescrypt verifies passwords against hashes made by Firebase
// Authentication's modified scrypt — the hashes `firebase auth:export`
// writes and baasmigrate migrates — and encodes them in the forms Supabase
// Auth and Ory Kratos verify natively.
//
// # The algorithm
//
// A Firebase project has one hash configuration (Firebase console →
// Authentication → Users → ⋮ → Password hash parameters): a signer key, a
// salt separator, rounds and a memory cost. Each user has a salt and a hash.
// For a password P (github.com/firebase/scrypt):
//
//	key  = scrypt(P, salt ‖ separator, N = 2^memCost, r = rounds, p = 1)[0:32]
//	hash = AES-256-CTR(key, counter block = 16 zero bytes) applied to signerKey
//
// so a hash is as long as the signer key (64 bytes in practice).
//
// # Secrets
//
// The signer key and the salt separator are secrets of the project: with
// them and a user's hash, passwords can be guessed offline at scrypt's cost.
// Params therefore never prints them: String, GoString and the fmt verbs
// show only rounds, memory cost and a fingerprint, and no error of this
// package contains them. The encoded forms (SupabaseHash, KratosHash) do
// contain them, by those formats' design; store them like the hashes
// themselves.
package firebasescrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/scrypt"
)

// Limits of a Firebase scrypt configuration, as Firebase's own import API
// enforces them.
const (
	MinRounds  = 1
	MaxRounds  = 8
	MinMemCost = 1
	MaxMemCost = 14
)

// aesKeyLen is the length of the scrypt output Firebase uses as AES-256 key.
const aesKeyLen = 32

// ErrInvalidParams is returned (wrapped) for a hash configuration outside
// Firebase's limits or without a signer key.
var ErrInvalidParams = errors.New("invalid Firebase scrypt hash parameters")

// Params is a Firebase project's password hash configuration. The zero
// value is not usable; build one with NewParams or ParseParams. Params is
// immutable and safe for concurrent use.
type Params struct {
	signerKey     []byte
	saltSeparator []byte
	rounds        int
	memCost       int
}

// NewParams returns the configuration with the given raw (decoded) signer
// key and salt separator. The separator may be empty; the key may not.
// The slices are copied.
func NewParams(signerKey, saltSeparator []byte, rounds, memCost int) (Params, error) {
	switch {
	case len(signerKey) == 0:
		return Params{}, fmt.Errorf("%w: the signer key is empty", ErrInvalidParams)
	case rounds < MinRounds || rounds > MaxRounds:
		return Params{}, fmt.Errorf("%w: rounds is %d, want %d to %d", ErrInvalidParams, rounds, MinRounds, MaxRounds)
	case memCost < MinMemCost || memCost > MaxMemCost:
		return Params{}, fmt.Errorf("%w: memory cost is %d, want %d to %d", ErrInvalidParams, memCost, MinMemCost, MaxMemCost)
	}
	return Params{
		signerKey:     append([]byte(nil), signerKey...),
		saltSeparator: append([]byte(nil), saltSeparator...),
		rounds:        rounds,
		memCost:       memCost,
	}, nil
}

// ParseParams returns the configuration as the Firebase console shows it:
// base64_signer_key, base64_salt_separator, rounds and mem_cost. The base64
// may be standard or URL-safe, padded or not. Errors name the parameter,
// never its value.
func ParseParams(signerKeyB64, saltSeparatorB64 string, rounds, memCost int) (Params, error) {
	key, err := DecodeBase64(signerKeyB64)
	if err != nil {
		return Params{}, fmt.Errorf("%w: the signer key is not base64 (%v)", ErrInvalidParams, err)
	}
	sep, err := DecodeBase64(saltSeparatorB64)
	if err != nil {
		return Params{}, fmt.Errorf("%w: the salt separator is not base64 (%v)", ErrInvalidParams, err)
	}
	return NewParams(key, sep, rounds, memCost)
}

// SignerKey returns a copy of the raw signer key.
func (p Params) SignerKey() []byte { return append([]byte(nil), p.signerKey...) }

// SaltSeparator returns a copy of the raw salt separator.
func (p Params) SaltSeparator() []byte { return append([]byte(nil), p.saltSeparator...) }

// Rounds is scrypt's block-size parameter r (not an iteration count).
func (p Params) Rounds() int { return p.rounds }

// MemCost is the base-2 logarithm of scrypt's cost parameter N.
func (p Params) MemCost() int { return p.memCost }

// IsZero reports whether p is the zero value (no configuration).
func (p Params) IsZero() bool { return len(p.signerKey) == 0 }

// Fingerprint identifies the configuration without revealing it: the first
// 16 hex digits of a SHA-256 over all four parameters. Equal configurations
// have equal fingerprints.
func (p Params) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("firebase-scrypt-params-v1"))
	var n [8]byte
	for _, b := range [][]byte{p.signerKey, p.saltSeparator} {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], uint64(p.rounds)<<32|uint64(p.memCost))
	h.Write(n[:])
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// String describes p without its secrets.
func (p Params) String() string {
	if p.IsZero() {
		return "firebasescrypt.Params{}"
	}
	return fmt.Sprintf("firebasescrypt.Params{rounds: %d, mem_cost: %d, signer_key: (redacted), salt_separator: (redacted), fingerprint: %s}",
		p.rounds, p.memCost, p.Fingerprint())
}

// GoString is String, so that %#v does not print the secrets either.
func (p Params) GoString() string { return p.String() }

// Format prints String for every verb, so no fmt verb reveals the secrets.
func (p Params) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// Hash computes the Firebase scrypt hash of password with a user's raw
// salt.
func (p Params) Hash(password, salt []byte) ([]byte, error) {
	if p.IsZero() {
		return nil, fmt.Errorf("%w: no configuration", ErrInvalidParams)
	}
	s := make([]byte, 0, len(salt)+len(p.saltSeparator))
	s = append(append(s, salt...), p.saltSeparator...)
	key, err := scrypt.Key(password, s, 1<<p.memCost, p.rounds, 1, aesKeyLen)
	if err != nil {
		return nil, fmt.Errorf("computing scrypt: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("computing scrypt: %w", err)
	}
	out := make([]byte, len(p.signerKey))
	cipher.NewCTR(block, make([]byte, aes.BlockSize)).XORKeyStream(out, p.signerKey)
	return out, nil
}

// Verify reports whether password matches a user's raw hash and salt. The
// comparison takes the same time wherever the hashes differ. An error means
// the check could not be made (no configuration), never a mismatch.
func (p Params) Verify(password, salt, hash []byte) (bool, error) {
	got, err := p.Hash(password, salt)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, hash) == 1, nil
}

// VerifyBase64 is Verify for a salt and hash in base64, as Firebase exports
// them (standard or URL-safe, padded or not).
func (p Params) VerifyBase64(password []byte, saltB64, hashB64 string) (bool, error) {
	salt, err := DecodeBase64(saltB64)
	if err != nil {
		return false, fmt.Errorf("the salt is not base64: %w", err)
	}
	hash, err := DecodeBase64(hashB64)
	if err != nil {
		return false, fmt.Errorf("the hash is not base64: %w", err)
	}
	return p.Verify(password, salt, hash)
}

// DecodeBase64 decodes standard or URL-safe base64, padded or not: Firebase
// hands hashes and salts out URL-safe through its API and standard through
// auth:export, and its console shows the parameters padded. Errors carry
// the offending position, never the input.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		var corrupt base64.CorruptInputError
		if errors.As(err, &corrupt) {
			return nil, fmt.Errorf("invalid base64 at byte %d", int64(corrupt))
		}
		return nil, errors.New("invalid base64")
	}
	return b, nil
}
