package passwords

import "fmt"

// Decoded is a credential's key material as bytes and numbers, read and
// checked exactly as Verify reads it: for converting a credential into
// another system's encoding without decoding its text a second way.
// Hash and Salt hold secrets; a Decoded must never be logged.
type Decoded struct {
	// Algorithm is the credential's algorithm name.
	Algorithm string
	// Hash is the derived key or digest; Salt the salt's bytes (empty when
	// there is none).
	Hash, Salt []byte
	// Iterations is PBKDF2's iteration count.
	Iterations int64
	// N, R and P are scrypt's cost, block size and parallelism.
	N, R, P int64
	// Memory (KiB), Passes and Lanes are Argon2's m, t and p.
	Memory, Passes, Lanes int64
	// SaltPosition is where a digest's salt goes: "prefix" (digest of
	// salt ‖ password), "suffix" (password ‖ salt) or "none".
	SaltPosition string
}

// Decode returns the key material of a SCRYPT, PBKDF2_SHA256,
// PBKDF2_SHA512, SHA1, SHA256, SHA512, MD5, ARGON2ID or ARGON2I
// credential, from any form Verify accepts (Params with their encodings,
// or Django's, passlib's and the PHC modular strings). A credential that
// fails Check fails Decode with the same error; other algorithms are
// ErrMalformed naming the algorithm. Errors never quote a hash, a salt or
// a parameter's value.
func Decode(c Credential) (Decoded, error) {
	switch c.Algorithm {
	case Scrypt:
		return decodeScrypt(c)
	case PBKDF2SHA256, PBKDF2SHA512:
		return decodePBKDF2(c)
	case SHA1, SHA256, SHA512, MD5:
		return decodeDigest(c)
	case Argon2id, Argon2i:
		return decodeArgon2(c)
	}
	if !looksLikeName(c.Algorithm) {
		return Decoded{}, fmt.Errorf("%w: Decode does not read this algorithm", ErrMalformed)
	}
	return Decoded{}, fmt.Errorf("%w: Decode does not read %s credentials", ErrMalformed, c.Algorithm)
}
