// Package argon2id hashes and verifies passwords with Argon2id (RFC 9106),
// encoded as PHC strings:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//
// with salt and hash in unpadded standard base64 — the form Supabase Auth,
// Ory Kratos and most libraries read. It is what migrated Firebase
// passwords are upgraded to: verify the Firebase hash once with
// passwords/firebasescrypt, then store Hash's result instead (see that
// package's example).
package argon2id

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's cost settings.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism (lanes).
	Threads uint8
	// SaltLen and KeyLen are the lengths in bytes of the random salt and of
	// the hash.
	SaltLen, KeyLen uint32
}

// Default follows OWASP's Password Storage Cheat Sheet minimum for
// Argon2id: 19 MiB, 2 passes, 1 lane; a 16-byte salt and a 32-byte hash.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds Verify accepts, so that a forged hash string cannot make a
// verification allocate or compute without limit.
const (
	maxMemory = 4 << 20 // KiB: 4 GiB
	maxTime   = 64
	maxKeyLen = 1024
)

// ErrMalformed is returned (wrapped) for a string that is not a PHC
// Argon2id hash this package can verify.
var ErrMalformed = errors.New("malformed argon2id hash")

const prefix = "$argon2id$"

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of password under p with a fresh random salt.
func Hash(password []byte, p Params) (string, error) {
	if p.Memory < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 || p.SaltLen < 8 || p.KeyLen < 16 {
		return "", fmt.Errorf("argon2id: parameters too weak or invalid (memory %d KiB, time %d, threads %d, salt %d, key %d)",
			p.Memory, p.Time, p.Threads, p.SaltLen, p.KeyLen)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("argon2id: reading random salt: %w", err)
	}
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", prefix, argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string encoded, comparing
// in constant time. An error means encoded could not be read, never a
// mismatch.
func Verify(password []byte, encoded string) (bool, error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with weaker settings than
// want (or cannot be read), so that an application rehashes on the next
// successful sign-in.
func NeedsRehash(encoded string, want Params) bool {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return true
	}
	return p.Memory < want.Memory || p.Time < want.Time || p.Threads < want.Threads ||
		uint32(len(salt)) < want.SaltLen || uint32(len(key)) < want.KeyLen
}

func decode(encoded string) (Params, []byte, []byte, error) {
	if !strings.HasPrefix(encoded, prefix) {
		return Params{}, nil, nil, fmt.Errorf("%w: no %s prefix", ErrMalformed, prefix)
	}
	parts := strings.Split(strings.TrimPrefix(encoded, prefix), "$")
	if len(parts) != 4 {
		return Params{}, nil, nil, fmt.Errorf("%w: want v=..$m=..,t=..,p=..$salt$hash", ErrMalformed)
	}
	if parts[0] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version", ErrMalformed)
	}
	var m, t, p uint64
	fields := strings.Split(parts[1], ",")
	if len(fields) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: want m=..,t=..,p=..", ErrMalformed)
	}
	for i, want := range []struct {
		key string
		dst *uint64
		max uint64
	}{{"m", &m, maxMemory}, {"t", &t, maxTime}, {"p", &p, 255}} {
		k, v, ok := strings.Cut(fields[i], "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || k != want.key || err != nil || n < 1 || n > want.max {
			return Params{}, nil, nil, fmt.Errorf("%w: parameter %s missing or out of range", ErrMalformed, want.key)
		}
		*want.dst = n
	}
	salt, err1 := b64.DecodeString(parts[2])
	key, err2 := b64.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(key) < 4 || len(key) > maxKeyLen {
		return Params{}, nil, nil, fmt.Errorf("%w: salt or hash is not unpadded base64 of a sensible length", ErrMalformed)
	}
	return Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}, salt, key, nil
}
