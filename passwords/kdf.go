package passwords

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// Limits Check enforces so that a hostile credential cannot exhaust the
// machine verifying it (see Check).
const (
	maxArgon2Memory     = 1 << 20 // KiB: 1 GiB
	maxArgon2MemoryTime = 4 << 20 // KiB × passes: 4 GiB of memory traffic
	minArgon2Salt       = 8       // bytes, as the reference implementation
	maxScryptMemory     = 1 << 30 // bytes: 128·r·N
	maxScryptWork       = 1 << 25 // N·r·p
	maxPBKDF2Work       = 10_000_000
	maxKeyLen           = 1024 // bytes of a derived key (hash)
	minArgon2Key        = 4
)

// prepareFirebase reads a Firebase scrypt credential: Hash and Salt in
// Firebase's base64, the project's parameters in Params (an absent
// salt_separator is an empty one). A Hash in Supabase's "$fbscrypt$…" or
// Kratos' "$firescrypt$…" form carries the parameters and salt itself, and
// Salt and Params stay empty.
func prepareFirebase(c Credential) (verifier, error) {
	if strings.HasPrefix(c.Hash, firebasescrypt.SupabasePrefix) || strings.HasPrefix(c.Hash, firebasescrypt.KratosPrefix) {
		if err := noSalt(c); err != nil {
			return nil, err
		}
		p, salt, h, err := firebasescrypt.ParseEncoded(c.Hash)
		if err != nil {
			// ParseEncoded never quotes the string's values.
			return nil, malformed(c, "%v", err)
		}
		return func(password []byte) (bool, error) { return p.Verify(password, salt, h) }, nil
	}
	if err := onlyParams(c, "signer_key", "salt_separator", "rounds", "mem_cost"); err != nil {
		return nil, err
	}
	if noFirebaseParams(c.Params) {
		// The project's parameters are missing altogether: the hash is
		// well formed if it and the salt decode, and cannot be verified.
		if _, err := decode(c, "Hash", c.Hash, encBase64); err != nil {
			return nil, err
		}
		if _, err := decode(c, "Salt", c.Salt, encBase64); err != nil {
			return nil, err
		}
		return cannot(errNoFirebaseParams), nil
	}
	key, ok := c.Params["signer_key"]
	if !ok || key == "" {
		return nil, malformed(c, "parameter %q is missing", "signer_key")
	}
	rounds, _, err := intParam(c, "rounds", firebasescrypt.MinRounds, firebasescrypt.MaxRounds, true)
	if err != nil {
		return nil, err
	}
	memCost, _, err := intParam(c, "mem_cost", firebasescrypt.MinMemCost, firebasescrypt.MaxMemCost, true)
	if err != nil {
		return nil, err
	}
	p, err := firebasescrypt.ParseParams(key, c.Params["salt_separator"], int(rounds), int(memCost))
	if err != nil {
		// ParseParams names the parameter and never quotes it.
		return nil, malformed(c, "%v", err)
	}
	h, err := decode(c, "Hash", c.Hash, encBase64)
	if err != nil {
		return nil, err
	}
	salt, err := decode(c, "Salt", c.Salt, encBase64)
	if err != nil {
		return nil, err
	}
	if len(h) != len(p.SignerKey()) {
		return nil, malformed(c, "Hash is %d bytes but the signer key is %d: the hash parameters are not this project's", len(h), len(p.SignerKey()))
	}
	return func(password []byte) (bool, error) { return p.Verify(password, salt, h) }, nil
}

// prepareBcrypt reads "$2a$", "$2b$" or "$2y$" + two-digit cost + "$" + 22
// characters of salt and 31 of hash in bcrypt's base64 alphabet.
func prepareBcrypt(c Credential) (verifier, error) {
	if err := noSalt(c); err != nil {
		return nil, err
	}
	h := c.Hash
	if len(h) != 60 {
		return nil, malformed(c, "Hash is %d characters, want 60", len(h))
	}
	switch h[:4] {
	case "$2a$", "$2b$", "$2y$":
	default:
		return nil, malformed(c, "Hash does not start with $2a$, $2b$ or $2y$")
	}
	if h[6] != '$' {
		return nil, malformed(c, "Hash has no two-digit cost")
	}
	cost, err := strconv.Atoi(h[4:6])
	if err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, malformed(c, "the cost in Hash is not %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	for i := 7; i < len(h); i++ {
		if !isBcryptChar(h[i]) {
			return nil, malformed(c, "Hash has a character outside bcrypt's base64 alphabet at position %d", i)
		}
	}
	hashed := []byte(h)
	return func(password []byte) (bool, error) {
		// Passwords over 72 bytes: bcrypt uses only the first 72, as
		// every implementation; x/crypto compares them that way too.
		err := bcrypt.CompareHashAndPassword(hashed, password)
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, malformed(c, "verifying: %v", err)
		}
		return true, nil
	}, nil
}

func isBcryptChar(b byte) bool {
	return b == '.' || b == '/' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9'
}

// decodeArgon2 reads a PHC string "$argon2id$v=19$m=<KiB>,t=<passes>,
// p=<lanes>$<salt>$<hash>" (or "$argon2i$…") with salt and hash in
// standard base64, unpadded as PHC says (padding is tolerated).
func decodeArgon2(c Credential) (Decoded, error) {
	if err := noSalt(c); err != nil {
		return Decoded{}, err
	}
	prefix := "$argon2id$"
	if c.Algorithm == Argon2i {
		prefix = "$argon2i$"
	}
	if !strings.HasPrefix(c.Hash, prefix) {
		return Decoded{}, malformed(c, "Hash does not start with %s", prefix)
	}
	parts := strings.Split(strings.TrimPrefix(c.Hash, prefix), "$")
	if len(parts) == 3 && strings.HasPrefix(parts[0], "m=") {
		return Decoded{}, malformed(c, "Hash has no v= field: Argon2 version 16 (0x10) hashes are not supported, only version 19")
	}
	if len(parts) != 4 {
		return Decoded{}, malformed(c, "Hash is not v=19$m=…,t=…,p=…$salt$hash after %s", prefix)
	}
	if parts[0] != "v="+strconv.Itoa(argon2.Version) {
		return Decoded{}, malformed(c, "Hash is not of Argon2 version 19 (v=19), the only one supported")
	}
	fields := strings.Split(parts[1], ",")
	if len(fields) != 3 {
		return Decoded{}, malformed(c, "Hash's parameters are not exactly m=…,t=…,p=… (keyid and data are not supported)")
	}
	var vals [3]uint64
	for i, want := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(fields[i], "=")
		if !ok || k != want {
			return Decoded{}, malformed(c, "Hash's parameter %d is not %s=…", i+1, want)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n < 1 {
			return Decoded{}, malformed(c, "Hash's parameter %s is not a positive whole number", want)
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p > 255:
		return Decoded{}, malformed(c, "Hash's parallelism p is over 255")
	case m < 8*p:
		return Decoded{}, malformed(c, "Hash's memory m is under 8 KiB per lane")
	case m > maxArgon2Memory:
		return Decoded{}, malformed(c, "Hash's memory m is over the 1 GiB (%d KiB) this package verifies", maxArgon2Memory)
	case m*t > maxArgon2MemoryTime:
		return Decoded{}, malformed(c, "Hash's memory × passes (m·t) is over the %d KiB this package verifies", maxArgon2MemoryTime)
	}
	salt, err1 := decodeUnpadded(base64.RawStdEncoding, parts[2])
	key, err2 := decodeUnpadded(base64.RawStdEncoding, parts[3])
	switch {
	case err1 != nil:
		return Decoded{}, malformed(c, "the salt in Hash is not base64")
	case err2 != nil:
		return Decoded{}, malformed(c, "the hash in Hash is not base64")
	case len(salt) < minArgon2Salt:
		return Decoded{}, malformed(c, "the salt in Hash is under %d bytes", minArgon2Salt)
	case len(key) < minArgon2Key || len(key) > maxKeyLen:
		return Decoded{}, malformed(c, "the hash in Hash is not %d to %d bytes", minArgon2Key, maxKeyLen)
	}
	return Decoded{Algorithm: c.Algorithm, Hash: key, Salt: salt, Memory: int64(m), Passes: int64(t), Lanes: int64(p)}, nil
}

// prepareArgon2 verifies what decodeArgon2 read.
func prepareArgon2(c Credential) (verifier, error) {
	d, err := decodeArgon2(c)
	if err != nil {
		return nil, err
	}
	derive := argon2.IDKey
	if c.Algorithm == Argon2i {
		derive = argon2.Key
	}
	return func(password []byte) (bool, error) {
		got := derive(password, d.Salt, uint32(d.Passes), uint32(d.Memory), uint8(d.Lanes), uint32(len(d.Hash)))
		return equal(got, d.Hash), nil
	}, nil
}

// decodeScrypt reads standard scrypt: Params n, r, p and optionally
// key_length, encoding and salt_encoding; Hash and Salt in base64 unless
// encoding says hex.
func decodeScrypt(c Credential) (Decoded, error) {
	if err := onlyParams(c, "n", "r", "p", "key_length", "encoding", "salt_encoding"); err != nil {
		return Decoded{}, err
	}
	n, _, err := intParam(c, "n", 2, maxScryptMemory/128, true)
	if err != nil {
		return Decoded{}, err
	}
	if n&(n-1) != 0 {
		return Decoded{}, malformed(c, "parameter %q is not a power of two", "n")
	}
	r, _, err := intParam(c, "r", 1, maxScryptMemory/256, true)
	if err != nil {
		return Decoded{}, err
	}
	p, _, err := intParam(c, "p", 1, maxScryptWork, true)
	if err != nil {
		return Decoded{}, err
	}
	if 128*r*n > maxScryptMemory {
		return Decoded{}, malformed(c, "parameters n and r need over 1 GiB of memory (128·r·n), more than this package verifies")
	}
	if n*r > maxScryptWork || n*r*p > maxScryptWork {
		return Decoded{}, malformed(c, "parameters n·r·p are over the 2^25 this package verifies")
	}
	key, salt, err := hashAndSalt(c, encBase64, "")
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Algorithm: c.Algorithm, Hash: key, Salt: salt, N: n, R: r, P: p}, nil
}

// prepareScrypt verifies what decodeScrypt read.
func prepareScrypt(c Credential) (verifier, error) {
	d, err := decodeScrypt(c)
	if err != nil {
		return nil, err
	}
	return func(password []byte) (bool, error) {
		got, err := scrypt.Key(password, d.Salt, int(d.N), int(d.R), int(d.P), len(d.Hash))
		if err != nil {
			return false, malformed(c, "computing scrypt: %v", err)
		}
		return equal(got, d.Hash), nil
	}, nil
}

// hashAndSalt decodes c's Hash and Salt per its encodings and checks Hash
// against Params "key_length" when given.
func hashAndSalt(c Credential, hashDefault, saltDefault string) (key, salt []byte, err error) {
	hashEnc, saltEnc, err := encodings(c, hashDefault, saltDefault)
	if err != nil {
		return nil, nil, err
	}
	if key, err = decode(c, "Hash", c.Hash, hashEnc); err != nil {
		return nil, nil, err
	}
	if salt, err = decode(c, "Salt", c.Salt, saltEnc); err != nil {
		return nil, nil, err
	}
	if len(key) == 0 || len(key) > maxKeyLen {
		return nil, nil, malformed(c, "Hash is not 1 to %d bytes", maxKeyLen)
	}
	kl, ok, err := intParam(c, "key_length", 1, maxKeyLen, false)
	if err != nil {
		return nil, nil, err
	}
	if ok && int(kl) != len(key) {
		return nil, nil, malformed(c, "Hash is %d bytes but parameter %q says %d", len(key), "key_length", kl)
	}
	return key, salt, nil
}

// decodePBKDF2 reads PBKDF2 in one of three forms:
//
//   - Django's "pbkdf2_sha256$<iterations>$<salt>$<base64 hash>" in Hash
//     (the salt is text, used as its bytes);
//   - passlib's "$pbkdf2-sha256$<iterations>$<salt>$<hash>" in Hash, salt
//     and hash in passlib's base64 ("." for "+", unpadded);
//   - any other Hash with Params "iterations" and optionally "key_length",
//     "encoding" and "salt_encoding"; Hash and Salt in base64 unless
//     encoding says hex.
//
// The modular forms carry everything: Salt and Params stay empty.
func decodePBKDF2(c Credential) (Decoded, error) {
	newHash, django, passlib := sha256.New, "pbkdf2_sha256$", "$pbkdf2-sha256$"
	if c.Algorithm == PBKDF2SHA512 {
		newHash, django, passlib = sha512.New, "pbkdf2_sha512$", "$pbkdf2-sha512$"
	}
	var (
		iter      int64
		key, salt []byte
		err       error
	)
	switch {
	case strings.HasPrefix(c.Hash, django), strings.HasPrefix(c.Hash, passlib):
		if err := noSalt(c); err != nil {
			return Decoded{}, err
		}
		isDjango := strings.HasPrefix(c.Hash, django)
		prefix := passlib
		if isDjango {
			prefix = django
		}
		parts := strings.Split(strings.TrimPrefix(c.Hash, prefix), "$")
		if len(parts) != 3 {
			return Decoded{}, malformed(c, "Hash is not %s<iterations>$<salt>$<hash>", prefix)
		}
		if iter, err = strconv.ParseInt(parts[0], 10, 64); err != nil || strings.HasPrefix(parts[0], "0") {
			return Decoded{}, malformed(c, "the iteration count in Hash is not a whole number")
		}
		if isDjango {
			salt = []byte(parts[1])
			key, err = base64.StdEncoding.DecodeString(parts[2])
		} else {
			ab64 := func(s string) ([]byte, error) {
				return decodeUnpadded(base64.RawStdEncoding, strings.ReplaceAll(s, ".", "+"))
			}
			if salt, err = ab64(parts[1]); err != nil {
				return Decoded{}, malformed(c, "the salt in Hash is not passlib base64")
			}
			key, err = ab64(parts[2])
		}
		if err != nil {
			return Decoded{}, malformed(c, "the hash in Hash is not base64")
		}
		if len(key) == 0 || len(key) > maxKeyLen {
			return Decoded{}, malformed(c, "the hash in Hash is not 1 to %d bytes", maxKeyLen)
		}
	default:
		if err := onlyParams(c, "iterations", "key_length", "encoding", "salt_encoding"); err != nil {
			return Decoded{}, err
		}
		if iter, _, err = intParam(c, "iterations", 1, maxPBKDF2Work, true); err != nil {
			return Decoded{}, err
		}
		if key, salt, err = hashAndSalt(c, encBase64, ""); err != nil {
			return Decoded{}, err
		}
	}
	size := newHash().Size()
	blocks := int64((len(key) + size - 1) / size)
	if iter < 1 || iter > maxPBKDF2Work || iter*blocks > maxPBKDF2Work {
		return Decoded{}, malformed(c, "iterations × output blocks is not 1 to %d, the work this package verifies", maxPBKDF2Work)
	}
	return Decoded{Algorithm: c.Algorithm, Hash: key, Salt: salt, Iterations: iter}, nil
}

// preparePBKDF2 verifies what decodePBKDF2 read.
func preparePBKDF2(c Credential) (verifier, error) {
	d, err := decodePBKDF2(c)
	if err != nil {
		return nil, err
	}
	newHash := sha256.New
	if c.Algorithm == PBKDF2SHA512 {
		newHash = sha512.New
	}
	return func(password []byte) (bool, error) {
		got, err := pbkdf2.Key(func() hash.Hash { return newHash() }, string(password), d.Salt, int(d.Iterations), len(d.Hash))
		if err != nil {
			return false, malformed(c, "computing PBKDF2: %v", err)
		}
		return equal(got, d.Hash), nil
	}, nil
}

// FirebaseScryptParams returns the Params of a FIREBASE_SCRYPT credential
// for the project configuration p: signer_key and salt_separator in
// standard base64, rounds and mem_cost in decimal. The map holds the
// project's secrets; it is the caller's.
func FirebaseScryptParams(p firebasescrypt.Params) map[string]string {
	return map[string]string{
		"signer_key":     base64.StdEncoding.EncodeToString(p.SignerKey()),
		"salt_separator": base64.StdEncoding.EncodeToString(p.SaltSeparator()),
		"rounds":         strconv.Itoa(p.Rounds()),
		"mem_cost":       strconv.Itoa(p.MemCost()),
	}
}

// errNoFirebaseParams is the ErrCannotVerify of a Firebase scrypt hash
// without the project's parameters.
var errNoFirebaseParams = fmt.Errorf("%w: %s: the hash needs the project's parameters (signer_key, salt_separator, rounds, mem_cost) "+
	"and the credential has none: the migration was given no Firebase hash parameters", ErrCannotVerify, FirebaseScrypt)

// noFirebaseParams reports whether params hold none of Firebase scrypt's
// project parameters (an empty value counts as absent).
func noFirebaseParams(params map[string]string) bool {
	for _, k := range []string{"signer_key", "salt_separator", "rounds", "mem_cost"} {
		if params[k] != "" {
			return false
		}
	}
	return true
}

// FirebaseScryptParamsFrom reads Params made by FirebaseScryptParams back
// into the project's parameters. Params holding none of them are
// ErrCannotVerify (the migration was given none), as Verify says for a
// Firebase scrypt credential without them; some but not all, or values
// out of range, are ErrMalformed. Errors name the parameter, never its
// value.
func FirebaseScryptParamsFrom(params map[string]string) (firebasescrypt.Params, error) {
	if noFirebaseParams(params) {
		return firebasescrypt.Params{}, errNoFirebaseParams
	}
	c := Credential{Algorithm: FirebaseScrypt}
	if params["signer_key"] == "" {
		return firebasescrypt.Params{}, malformed(c, "parameter %q is missing", "signer_key")
	}
	rounds, err := strconv.Atoi(params["rounds"])
	if err != nil {
		return firebasescrypt.Params{}, malformed(c, "parameter %q is not a whole number", "rounds")
	}
	memCost, err := strconv.Atoi(params["mem_cost"])
	if err != nil {
		return firebasescrypt.Params{}, malformed(c, "parameter %q is not a whole number", "mem_cost")
	}
	p, err := firebasescrypt.ParseParams(params["signer_key"], params["salt_separator"], rounds, memCost)
	if err != nil {
		// ParseParams names the parameter and never quotes it.
		return firebasescrypt.Params{}, fmt.Errorf("%w: %s: %w", ErrMalformed, FirebaseScrypt, err)
	}
	return p, nil
}
