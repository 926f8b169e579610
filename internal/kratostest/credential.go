package kratostest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// ErrNotModelled marks a hash in one of Kratos' forms that Credential does
// not convert (md5-crypt, sha256-crypt, sha512-crypt, {SSHA…}, hmac-…,
// PBKDF2 with a digest other than SHA-256 and SHA-512): Kratos imports it,
// this package cannot say whether it verifies.
var ErrNotModelled = errors.New("a Kratos hash form kratostest does not verify")

// Kratos' import check (ory/kratos v1.3.1 hash/hash_comparator.go
// IsValidHashFormat): a hashed_password is accepted when it starts with one
// of these; anything else fails the whole batch with 400.
var kratosHashPrefixes = []*regexp.Regexp{
	regexp.MustCompile(`^\$md5-crypt\$`),
	regexp.MustCompile(`^\$2[abzy]?\$`),
	regexp.MustCompile(`^\$sha256-crypt\$`),
	regexp.MustCompile(`^\$sha512-crypt\$`),
	regexp.MustCompile(`^\$argon2id\$`),
	regexp.MustCompile(`^\$argon2i\$`),
	regexp.MustCompile(`^\$pbkdf2-sha[0-9]{1,3}\$`),
	regexp.MustCompile(`^\$scrypt\$`),
	regexp.MustCompile(`^{SSHA(256|512)?}.*`),
	regexp.MustCompile(`^\$sha(1|256|512)\$`),
	regexp.MustCompile(`^\$firescrypt\$`),
	regexp.MustCompile(`^\$md5\$`),
	regexp.MustCompile(`^\$hmac-(md4|md5|sha1|sha224|sha256|sha384|sha512)\$`),
}

// IsValidHashFormat reports whether Kratos v1.3.1 imports h: it only looks
// at the prefix, so a malformed hash with a known prefix imports and fails
// at sign-in.
func IsValidHashFormat(h string) bool {
	for _, re := range kratosHashPrefixes {
		if re.MatchString(h) {
			return true
		}
	}
	return false
}

// Credential returns the passwords.Credential that verifies exactly the
// passwords Kratos' comparator (ory/kratos hash/hash_comparator.go) accepts
// for the hashed_password h, so that passwords.Verify — the code path of
// `baasmigrate auth verify-password` — answers for Kratos:
//
//   - "$firescrypt$…" as FIREBASE_SCRYPT (passwords reads the form itself);
//   - "$2a$…", "$2b$…", "$2y$…" as BCRYPT; "$argon2id$…", "$argon2i$…" as
//     ARGON2ID / ARGON2I (PHC strings);
//   - "$pbkdf2-sha256$i=<iter>,l=<len>$<salt>$<hash>" (and sha512), salt
//     and hash in unpadded standard base64, as PBKDF2_SHA256 / _SHA512;
//   - "$scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>" (ln is N itself), padded
//     standard base64, as SCRYPT;
//   - "$sha1$pf=<template>$<salt>$<hash>" (sha256, sha512) and "$md5$…",
//     the template one of {SALT}{PASSWORD}, {PASSWORD}{SALT}, {PASSWORD}.
//
// Other forms Kratos imports wrap ErrNotModelled; malformed ones wrap
// passwords.ErrMalformed. Errors never quote the hash.
func Credential(h string) (passwords.Credential, error) {
	malformed := func(what string) error {
		return fmt.Errorf("%w: Kratos %s hash: %s", passwords.ErrMalformed, strings.SplitN(strings.TrimPrefix(h, "$"), "$", 2)[0], what)
	}
	switch {
	case strings.HasPrefix(h, firebasescrypt.KratosPrefix):
		return passwords.Credential{Algorithm: passwords.FirebaseScrypt, Hash: h}, nil
	case regexp.MustCompile(`^\$2[aby]?\$`).MatchString(h):
		return passwords.Credential{Algorithm: passwords.Bcrypt, Hash: h}, nil
	case strings.HasPrefix(h, "$argon2id$"):
		return passwords.Credential{Algorithm: passwords.Argon2id, Hash: h}, nil
	case strings.HasPrefix(h, "$argon2i$"):
		return passwords.Credential{Algorithm: passwords.Argon2i, Hash: h}, nil
	case strings.HasPrefix(h, "$pbkdf2-sha256$"), strings.HasPrefix(h, "$pbkdf2-sha512$"):
		alg := passwords.PBKDF2SHA256
		if strings.HasPrefix(h, "$pbkdf2-sha512$") {
			alg = passwords.PBKDF2SHA512
		}
		parts := strings.Split(h, "$") // "", pbkdf2-shaX, i=…,l=…, salt, hash
		if len(parts) != 5 {
			return passwords.Credential{}, malformed("want 4 fields")
		}
		var iter, l int
		if _, err := fmt.Sscanf(parts[2], "i=%d,l=%d", &iter, &l); err != nil {
			return passwords.Credential{}, malformed("parameters are not i=…,l=…")
		}
		salt, err1 := base64.RawStdEncoding.Strict().DecodeString(parts[3])
		hash, err2 := base64.RawStdEncoding.Strict().DecodeString(parts[4])
		if err1 != nil || err2 != nil {
			return passwords.Credential{}, malformed("salt or hash is not unpadded base64")
		}
		if len(hash) != l {
			return passwords.Credential{}, malformed("hash length differs from l")
		}
		std := base64.StdEncoding.EncodeToString
		return passwords.Credential{Algorithm: alg, Hash: std(hash), Salt: std(salt),
			Params: map[string]string{"iterations": strconv.Itoa(iter)}}, nil
	case strings.HasPrefix(h, "$pbkdf2-"):
		return passwords.Credential{}, fmt.Errorf("%w: PBKDF2 with a digest other than SHA-256 or SHA-512", ErrNotModelled)
	case strings.HasPrefix(h, "$scrypt$"):
		parts := strings.Split(h, "$")
		if len(parts) != 5 {
			return passwords.Credential{}, malformed("want 4 fields")
		}
		var n, r, p int
		if _, err := fmt.Sscanf(parts[2], "ln=%d,r=%d,p=%d", &n, &r, &p); err != nil {
			return passwords.Credential{}, malformed("parameters are not ln=…,r=…,p=…")
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(parts[3]); err != nil {
			return passwords.Credential{}, malformed("salt is not padded base64")
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(parts[4]); err != nil {
			return passwords.Credential{}, malformed("hash is not padded base64")
		}
		return passwords.Credential{Algorithm: passwords.Scrypt, Hash: parts[4], Salt: parts[3],
			Params: map[string]string{"n": strconv.Itoa(n), "r": strconv.Itoa(r), "p": strconv.Itoa(p)}}, nil
	case strings.HasPrefix(h, "$sha1$"), strings.HasPrefix(h, "$sha256$"), strings.HasPrefix(h, "$sha512$"), strings.HasPrefix(h, "$md5$"):
		parts := strings.Split(h, "$")
		alg := map[string]string{"sha1": passwords.SHA1, "sha256": passwords.SHA256, "sha512": passwords.SHA512, "md5": passwords.MD5}[parts[1]]
		b64 := map[string]string{"encoding": "base64", "salt_encoding": "base64"}
		if alg == passwords.MD5 && len(parts) == 3 {
			return passwords.Credential{Algorithm: alg, Hash: parts[2], Params: b64}, nil
		}
		if len(parts) != 5 || !strings.HasPrefix(parts[2], "pf=") {
			return passwords.Credential{}, malformed("want pf=<template>$<salt>$<hash>")
		}
		tmpl, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(parts[2], "pf="))
		if err != nil {
			return passwords.Credential{}, malformed("template is not base64")
		}
		switch string(tmpl) {
		case "{SALT}{PASSWORD}":
			b64["salt_position"] = "prefix"
		case "{PASSWORD}{SALT}":
			b64["salt_position"] = "suffix"
		case "{PASSWORD}":
			b64["salt_position"] = "none"
			if parts[3] != "" {
				return passwords.Credential{}, fmt.Errorf("%w: a {PASSWORD} template with a salt", ErrNotModelled)
			}
			return passwords.Credential{Algorithm: alg, Hash: parts[4], Params: b64}, nil
		default:
			return passwords.Credential{}, fmt.Errorf("%w: a password-format template other than salt before or after the password", ErrNotModelled)
		}
		return passwords.Credential{Algorithm: alg, Hash: parts[4], Salt: parts[3], Params: b64}, nil
	case IsValidHashFormat(h):
		return passwords.Credential{}, ErrNotModelled
	}
	return passwords.Credential{}, fmt.Errorf("%w: not a hash form Kratos imports", passwords.ErrMalformed)
}
