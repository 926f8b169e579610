package firebasescrypt

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The prefixes of the self-describing forms other auth servers verify.
const (
	// SupabasePrefix starts the form Supabase Auth verifies
	// (supabase/auth internal/crypto/password.go).
	SupabasePrefix = "$fbscrypt$"
	// KratosPrefix starts the form Ory Kratos verifies
	// (ory/kratos hash/hash_comparator.go).
	KratosPrefix = "$firescrypt$"
)

// ErrMalformedEncoding is returned (wrapped) by ParseEncoded for a string
// that is not a well-formed $fbscrypt$ or $firescrypt$ hash.
var ErrMalformedEncoding = errors.New("malformed encoded Firebase scrypt hash")

var std = base64.StdEncoding

// SupabaseHash encodes a user's raw salt and hash with p in the form
// Supabase Auth's admin API accepts as password_hash and verifies at sign-in:
//
//	$fbscrypt$v=1,n=<mem_cost>,r=<rounds>,p=1[,ss=<separator>],sk=<signer key>$<salt>$<hash>
//
// all in padded standard base64. The separator is left out when empty, as
// Supabase's parser requires. Supabase cannot hold an empty salt, so that
// is an error. The result contains the project's secrets.
func (p Params) SupabaseHash(salt, hash []byte) (string, error) {
	if p.IsZero() {
		return "", fmt.Errorf("%w: no configuration", ErrInvalidParams)
	}
	if len(salt) == 0 || len(hash) == 0 {
		return "", errors.New("encoding for Supabase: the salt and the hash must not be empty")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%sv=1,n=%d,r=%d,p=1", SupabasePrefix, p.memCost, p.rounds)
	if len(p.saltSeparator) > 0 {
		b.WriteString(",ss=" + std.EncodeToString(p.saltSeparator))
	}
	b.WriteString(",sk=" + std.EncodeToString(p.signerKey))
	b.WriteString("$" + std.EncodeToString(salt) + "$" + std.EncodeToString(hash))
	return b.String(), nil
}

// KratosHash encodes a user's raw salt and hash with p in the form Ory
// Kratos imports as credentials.password.config.hashed_password and
// verifies at sign-in:
//
//	$firescrypt$ln=<mem_cost>,r=<rounds>,p=1$<salt>$<hash>$<separator>$<signer key>
//
// all in padded standard base64. The result contains the project's
// secrets.
func (p Params) KratosHash(salt, hash []byte) (string, error) {
	if p.IsZero() {
		return "", fmt.Errorf("%w: no configuration", ErrInvalidParams)
	}
	if len(hash) == 0 {
		return "", errors.New("encoding for Kratos: the hash must not be empty")
	}
	return fmt.Sprintf("%sln=%d,r=%d,p=1$%s$%s$%s$%s", KratosPrefix, p.memCost, p.rounds,
		std.EncodeToString(salt), std.EncodeToString(hash),
		std.EncodeToString(p.saltSeparator), std.EncodeToString(p.signerKey)), nil
}

// ParseEncoded reads a $fbscrypt$ (Supabase) or $firescrypt$ (Kratos)
// string back into its configuration, raw salt and raw hash. Only p=1 is
// accepted: Firebase never uses another parallelism. Errors never quote the
// input.
func ParseEncoded(s string) (p Params, salt, hash []byte, err error) {
	switch {
	case strings.HasPrefix(s, SupabasePrefix):
		return parseSupabase(strings.TrimPrefix(s, SupabasePrefix))
	case strings.HasPrefix(s, KratosPrefix):
		return parseKratos(strings.TrimPrefix(s, KratosPrefix))
	}
	return Params{}, nil, nil, fmt.Errorf("%w: neither %s nor %s", ErrMalformedEncoding, SupabasePrefix, KratosPrefix)
}

// VerifyEncoded reports whether password matches an encoded hash (see
// ParseEncoded), comparing in constant time.
func VerifyEncoded(password []byte, encoded string) (bool, error) {
	p, salt, hash, err := ParseEncoded(encoded)
	if err != nil {
		return false, err
	}
	return p.Verify(password, salt, hash)
}

func parseSupabase(rest string) (Params, []byte, []byte, error) {
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: want params$salt$hash after %s", ErrMalformedEncoding, SupabasePrefix)
	}
	kv, err := parseParamList(parts[0], []string{"v", "n", "r", "p"}, []string{"ss", "sk"})
	if err != nil {
		return Params{}, nil, nil, err
	}
	if kv["v"] != "1" {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version", ErrMalformedEncoding)
	}
	return decodeParts(kv["n"], kv["r"], kv["p"], kv["sk"], kv["ss"], parts[1], parts[2])
}

func parseKratos(rest string) (Params, []byte, []byte, error) {
	parts := strings.Split(rest, "$")
	if len(parts) != 5 {
		return Params{}, nil, nil, fmt.Errorf("%w: want params$salt$hash$separator$key after %s", ErrMalformedEncoding, KratosPrefix)
	}
	kv, err := parseParamList(parts[0], []string{"ln", "r", "p"}, nil)
	if err != nil {
		return Params{}, nil, nil, err
	}
	return decodeParts(kv["ln"], kv["r"], kv["p"], parts[4], parts[3], parts[1], parts[2])
}

// parseParamList splits "a=1,b=2" requiring the keys in want (in order)
// and allowing those in optional after them. Errors name parameters by
// position or by the names in want and optional, never by text of s.
func parseParamList(s string, want, optional []string) (map[string]string, error) {
	kv := map[string]string{}
	for i, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%w: parameter %d is not key=value", ErrMalformedEncoding, i+1)
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("%w: parameter %d repeats an earlier one", ErrMalformedEncoding, i+1)
		}
		known := false
		for _, w := range append(append([]string(nil), want...), optional...) {
			known = known || w == k
		}
		if !known {
			// Its name comes from the hash: never quoted.
			return nil, fmt.Errorf("%w: parameter %d is not one of %s", ErrMalformedEncoding, i+1, strings.Join(append(append([]string(nil), want...), optional...), ", "))
		}
		kv[k] = v
	}
	for _, w := range want {
		if _, ok := kv[w]; !ok {
			return nil, fmt.Errorf("%w: parameter %q missing", ErrMalformedEncoding, w)
		}
	}
	return kv, nil
}

func decodeParts(memCost, rounds, par, keyB64, sepB64, saltB64, hashB64 string) (Params, []byte, []byte, error) {
	m, err1 := strconv.Atoi(memCost)
	r, err2 := strconv.Atoi(rounds)
	if err := errors.Join(err1, err2); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: memory cost and rounds must be whole numbers", ErrMalformedEncoding)
	}
	if par != "1" {
		return Params{}, nil, nil, fmt.Errorf("%w: only p=1 is supported", ErrMalformedEncoding)
	}
	var dec [4][]byte
	for i, f := range []struct{ name, b64 string }{{"signer key", keyB64}, {"salt separator", sepB64}, {"salt", saltB64}, {"hash", hashB64}} {
		b, err := std.Strict().DecodeString(f.b64)
		if err != nil {
			return Params{}, nil, nil, fmt.Errorf("%w: the %s is not padded standard base64", ErrMalformedEncoding, f.name)
		}
		dec[i] = b
	}
	p, err := NewParams(dec[0], dec[1], r, m)
	if err != nil {
		return Params{}, nil, nil, err
	}
	return p, dec[2], dec[3], nil
}
