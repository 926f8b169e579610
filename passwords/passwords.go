package passwords

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// Errors of Verify and Check, wrapped: test them with errors.Is.
var (
	// ErrCannotVerify means the credential holds nothing a password can be
	// checked against (None, Unknown): the user must sign in once through
	// the old service, which captures the password, or reset it; or that
	// the shared parameters its algorithm needs are missing (Firebase
	// scrypt without the project's).
	ErrCannotVerify = errors.New("the password cannot be verified against this credential")
	// ErrMalformed means the credential is not well formed for its
	// algorithm: a hash or salt that does not decode, a parameter missing,
	// unknown or out of the range this package accepts.
	ErrMalformed = errors.New("malformed password credential")
	// ErrUnknownAlgorithm means Credential.Algorithm is none of the names
	// Algorithms returns.
	ErrUnknownAlgorithm = errors.New("unknown password algorithm")
)

// algorithms lists every name, in the order Algorithms returns them.
var algorithms = []string{
	FirebaseScrypt, Bcrypt, Argon2id, Argon2i, Scrypt, PBKDF2SHA256, PBKDF2SHA512,
	SHA1, SHA256, SHA512, MD5, PHPass, None, EmulatorFake, Unknown,
}

// Algorithms returns every algorithm name Verify and Check accept — the
// names the users tables may store — in a fixed order. The slice is the
// caller's.
func Algorithms() []string { return append([]string(nil), algorithms...) }

// Verify reports whether password is the one c was made from. Comparisons
// take the same time wherever the hashes differ. Verify, Check and
// Algorithms are safe for concurrent use.
//
// A false result with a nil error is a wrong password. An error means no
// answer could be given: the credential is malformed (ErrMalformed, see
// Check), names no known algorithm (ErrUnknownAlgorithm), or holds no hash
// to check against (ErrCannotVerify, for None and Unknown). Verify first
// checks c as Check does, so a hostile credential cannot make it allocate
// or compute beyond the limits Check documents.
func Verify(c Credential, password []byte) (bool, error) {
	v, err := prepare(c)
	if err != nil {
		return false, err
	}
	return v(password)
}

// Check returns nil when c is well formed for its algorithm: the hash and
// salt decode, the parameters the algorithm needs are present, none it
// does not know is, and all are in range. None and Unknown credentials are
// well formed (Verify then says ErrCannotVerify), and so is a Firebase
// scrypt hash and salt without any of the project's parameters (the
// migration was given none; Verify says ErrCannotVerify, as
// FirebaseScryptParamsFrom does). Errors wrap ErrMalformed
// or ErrUnknownAlgorithm; they name the field or parameter at fault and
// never quote a hash, a salt or a parameter's value.
//
// Beyond each format's own rules, Check refuses costs that would let a
// forged row exhaust the machine verifying it:
//
//   - Argon2: memory at most 1 GiB (m ≤ 1048576 KiB), memory × passes at
//     most 4 GiB (m·t ≤ 4194304), parallelism 1 to 255, salt at least 8
//     bytes, hash 4 to 1024 bytes.
//   - scrypt: N a power of two from 2, 128·r·N at most 1 GiB, N·r·p at
//     most 2^25.
//   - PBKDF2: iterations × output blocks at most 10,000,000.
//   - Firebase scrypt: rounds 1 to 8, mem_cost 1 to 14, as Firebase itself.
//   - bcrypt costs 4 to 31 and phpass costs 7 to 30 are their formats'
//     own ranges; the top of each takes hours or minutes to verify.
//
// The settings services and guides use fall well inside (Django's PBKDF2
// at over a million iterations, OWASP's and RFC 9106's second Argon2id
// recommendations); RFC 9106's first, 2 GiB, does not.
func Check(c Credential) error {
	_, err := prepare(c)
	return err
}

// verifier checks a password against a credential prepare has read.
type verifier func(password []byte) (bool, error)

// prepare reads and checks c and returns the function that verifies a
// password against it.
func prepare(c Credential) (verifier, error) {
	switch c.Algorithm {
	case FirebaseScrypt:
		return prepareFirebase(c)
	case Bcrypt:
		return prepareBcrypt(c)
	case Argon2id, Argon2i:
		return prepareArgon2(c)
	case Scrypt:
		return prepareScrypt(c)
	case PBKDF2SHA256, PBKDF2SHA512:
		return preparePBKDF2(c)
	case SHA1, SHA256, SHA512, MD5:
		return prepareDigest(c)
	case PHPass:
		return preparePHPass(c)
	case EmulatorFake:
		return prepareEmulatorFake(c)
	case None:
		if c.Hash != "" || c.Salt != "" {
			return nil, malformed(c, "a %s credential carries no hash or salt", None)
		}
		if err := onlyParams(c); err != nil {
			return nil, err
		}
		return cannot(fmt.Errorf("%w: the source exported no password hash (%s); "+
			"the user must sign in once through the old service, which captures the password, or reset it", ErrCannotVerify, None)), nil
	case Unknown:
		return cannot(fmt.Errorf("%w: the source's hash is of an algorithm this version does not know (%s, kept verbatim); "+
			"the user must sign in once through the old service, which captures the password, or reset it", ErrCannotVerify, Unknown)), nil
	case "":
		return nil, fmt.Errorf("%w: the credential names no algorithm (want one of %s)", ErrUnknownAlgorithm, strings.Join(algorithms, ", "))
	}
	if !looksLikeName(c.Algorithm) {
		// Perhaps a hash put in the wrong field: not quoted.
		return nil, fmt.Errorf("%w: the algorithm field holds %d bytes that are not a name (want one of %s)",
			ErrUnknownAlgorithm, len(c.Algorithm), strings.Join(algorithms, ", "))
	}
	return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownAlgorithm, c.Algorithm, strings.Join(algorithms, ", "))
}

// looksLikeName reports whether s could be an algorithm's name (at most 32
// letters, digits, '_' and '-'), and so be quoted in an error.
func looksLikeName(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func cannot(err error) verifier {
	return func([]byte) (bool, error) { return false, err }
}

// malformed returns an error wrapping ErrMalformed that names c's
// algorithm. format must never be given a hash, a salt or a secret.
func malformed(c Credential, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, c.Algorithm, fmt.Sprintf(format, args...))
}

// onlyParams returns an error naming the first parameter of c (in sorted
// order) that is not in allowed.
func onlyParams(c Credential, allowed ...string) error {
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			if len(allowed) == 0 {
				return malformed(c, "unknown parameter %q (this algorithm takes none)", k)
			}
			return malformed(c, "unknown parameter %q (this algorithm takes %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// noSalt is the rule of the self-describing formats: the salt and the
// parameters live in Hash, so Salt and Params stay empty.
func noSalt(c Credential) error {
	if c.Salt != "" {
		return malformed(c, "Salt must be empty: the salt is part of Hash")
	}
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		return malformed(c, "Params must be empty: the parameters are part of Hash (found %q)", keys[0])
	}
	return nil
}

// intParam reads the decimal parameter name of c, which must lie in
// [lo, hi]. A missing parameter is an error when required, and (0, false,
// nil) otherwise.
func intParam(c Credential, name string, lo, hi int64, required bool) (int64, bool, error) {
	s, ok := c.Params[name]
	if !ok {
		if required {
			return 0, false, malformed(c, "parameter %q is missing", name)
		}
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, malformed(c, "parameter %q is not a whole number", name)
	}
	if n < lo || n > hi {
		return 0, false, malformed(c, "parameter %q is out of range (want %d to %d)", name, lo, hi)
	}
	return n, true, nil
}

// Encodings of hashes and salts, as Params "encoding" and "salt_encoding"
// name them.
const (
	encBase64 = "base64"
	encHex    = "hex"
	encText   = "text"
)

// encodings returns the encodings of c's hash and salt: Params "encoding"
// (base64 or hex, defaulting to hashDefault) and "salt_encoding" (base64,
// hex or text, defaulting to saltDefault, or to the hash's encoding when
// saltDefault is empty).
func encodings(c Credential, hashDefault, saltDefault string) (hashEnc, saltEnc string, err error) {
	hashEnc = hashDefault
	if e, ok := c.Params["encoding"]; ok {
		if e != encBase64 && e != encHex {
			return "", "", malformed(c, "parameter \"encoding\" must be %s or %s", encBase64, encHex)
		}
		hashEnc = e
	}
	saltEnc = saltDefault
	if saltEnc == "" {
		saltEnc = hashEnc
	}
	if e, ok := c.Params["salt_encoding"]; ok {
		if e != encBase64 && e != encHex && e != encText {
			return "", "", malformed(c, "parameter \"salt_encoding\" must be %s, %s or %s", encBase64, encHex, encText)
		}
		saltEnc = e
	}
	return hashEnc, saltEnc, nil
}

// decode decodes s in enc. Base64 may be standard or URL-safe, padded or
// not; hex either case. field names what s is in the error, which never
// quotes s.
func decode(c Credential, field, s, enc string) ([]byte, error) {
	switch enc {
	case encText:
		return []byte(s), nil
	case encHex:
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, malformed(c, "%s is not hex", field)
		}
		return b, nil
	}
	b, err := firebasescrypt.DecodeBase64(s)
	if err != nil {
		return nil, malformed(c, "%s is not base64 (%v)", field, err)
	}
	return b, nil
}

// equal compares two byte strings in time that depends only on their
// lengths.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// decodeUnpadded decodes base64 in the unpadded alphabet enc, tolerating
// padding, for the modular formats whose alphabet is fixed.
func decodeUnpadded(enc *base64.Encoding, s string) ([]byte, error) {
	return enc.DecodeString(strings.TrimRight(s, "="))
}
