package authexport

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/baasmigrate/baasmigrate/passwords"
)

// Bounds ory/kratos puts on imported hashes (hash/hash_limits.go:
// ValidateImportedHash refuses an identity whose hash exceeds them at
// import, and the comparator refuses it at sign-in). A credential beyond
// them is exported without its password.
const (
	kratosMaxScryptN          = 1 << 17 // maxScryptN: N itself, not log2 N
	kratosMaxScryptR          = 8       // maxScryptR
	kratosMaxScryptP          = 10      // maxScryptP
	kratosMaxPBKDF2Iterations = 10_000_000
	kratosMaxArgon2Memory     = 1 << 20 // KiB, maxArgon2MemoryKiB
	kratosMaxArgon2Passes     = 10      // maxArgon2Iterations
	kratosMaxArgon2Lanes      = 16      // maxArgon2Parallelism
	kratosMaxBcryptCost       = 15      // maxBcryptCost
)

// Kratos' password-format templates for salted digests ("pf=", base64 of
// the template): hash/hash_comparator.go CompareSHA and CompareMD5 replace
// {SALT} with the salt's bytes and {PASSWORD} with the password's in one
// pass and digest the result.
var kratosTemplates = map[string]string{
	"prefix": "{SALT}{PASSWORD}",
	"suffix": "{PASSWORD}{SALT}",
	"none":   "{PASSWORD}",
}

// kratosConverts reports whether kratosHash converts credentials of
// algorithm (rather than passing a hash through as it is).
func kratosConverts(algorithm string) bool {
	switch algorithm {
	case passwords.Scrypt, passwords.PBKDF2SHA256, passwords.PBKDF2SHA512,
		passwords.SHA1, passwords.SHA256, passwords.SHA512, passwords.MD5,
		passwords.Argon2id, passwords.Argon2i:
		return true
	}
	return false
}

// errKratosBounds marks a well-formed credential whose costs are beyond
// what Kratos accepts.
var errKratosBounds = errors.New("beyond Kratos' bounds")

// kratosHash returns the SCRYPT, PBKDF2_*, SHA1/256/512, MD5 or ARGON2*
// credential c in the form ory/kratos hash/hash_comparator.go verifies
// with the same result for every password, read by passwords.Decode
// (any form passwords.Verify accepts):
//
//   - PBKDF2: "$pbkdf2-sha256$i=<iterations>,l=<key bytes>$<salt>$<hash>"
//     ("$pbkdf2-sha512$…"), salt and hash in unpadded standard base64
//     (decodePbkdf2Hash: RawStdEncoding.Strict);
//   - scrypt: "$scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>", where ln holds N
//     itself (CompareScrypt passes it to scrypt.Key as N), salt and hash
//     in padded standard base64 (decodeScryptHash: StdEncoding.Strict);
//   - SHA-1/256/512: "$sha1$pf=<template>$<salt>$<hash>" ("$sha256$…",
//     "$sha512$…"), template, salt and hash in padded standard base64
//     (decodeSHAHash), the template per salt position (kratosTemplates);
//   - MD5: "$md5$<hash>" unsalted, "$md5$pf=<template>$<salt>$<hash>"
//     salted (decodeMD5Hash), padded standard base64;
//   - Argon2: "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>"
//     ("$argon2i$…"), unpadded standard base64 (decodeArgon2idHash), so a
//     PHC string with padding is written as Kratos reads it.
//
// A credential Decode refuses is an error wrapping passwords.ErrMalformed;
// one beyond Kratos' bounds wraps errKratosBounds. Errors never quote a
// hash, a salt or a parameter's value.
func kratosHash(c passwords.Credential) (string, error) {
	d, err := passwords.Decode(c)
	if err != nil {
		return "", err
	}
	b64, raw := base64.StdEncoding.EncodeToString, base64.RawStdEncoding.EncodeToString
	switch c.Algorithm {
	case passwords.PBKDF2SHA256, passwords.PBKDF2SHA512:
		if d.Iterations < 1 || d.Iterations > kratosMaxPBKDF2Iterations {
			return "", fmt.Errorf("%w: %s iterations over %d", errKratosBounds, c.Algorithm, kratosMaxPBKDF2Iterations)
		}
		digest := "sha256"
		if c.Algorithm == passwords.PBKDF2SHA512 {
			digest = "sha512"
		}
		return fmt.Sprintf("$pbkdf2-%s$i=%d,l=%d$%s$%s", digest, d.Iterations, len(d.Hash), raw(d.Salt), raw(d.Hash)), nil
	case passwords.Scrypt:
		switch {
		case d.N > kratosMaxScryptN:
			return "", fmt.Errorf("%w: SCRYPT n over %d (2^17)", errKratosBounds, kratosMaxScryptN)
		case d.R > kratosMaxScryptR:
			return "", fmt.Errorf("%w: SCRYPT r over %d", errKratosBounds, kratosMaxScryptR)
		case d.P > kratosMaxScryptP:
			return "", fmt.Errorf("%w: SCRYPT p over %d", errKratosBounds, kratosMaxScryptP)
		}
		return fmt.Sprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", d.N, d.R, d.P, b64(d.Salt), b64(d.Hash)), nil
	case passwords.Argon2id, passwords.Argon2i:
		switch {
		case d.Memory > kratosMaxArgon2Memory:
			return "", fmt.Errorf("%w: %s memory m over %d KiB", errKratosBounds, c.Algorithm, kratosMaxArgon2Memory)
		case d.Passes > kratosMaxArgon2Passes:
			return "", fmt.Errorf("%w: %s passes t over %d", errKratosBounds, c.Algorithm, kratosMaxArgon2Passes)
		case d.Lanes > kratosMaxArgon2Lanes:
			return "", fmt.Errorf("%w: %s lanes p over %d", errKratosBounds, c.Algorithm, kratosMaxArgon2Lanes)
		}
		prefix := "$argon2id$"
		if c.Algorithm == passwords.Argon2i {
			prefix = "$argon2i$"
		}
		return fmt.Sprintf("%sv=19$m=%d,t=%d,p=%d$%s$%s", prefix, d.Memory, d.Passes, d.Lanes, raw(d.Salt), raw(d.Hash)), nil
	}
	// The salted digests.
	tmpl, ok := kratosTemplates[d.SaltPosition]
	if !ok {
		return "", fmt.Errorf("%w: %s: salt position %q has no Kratos template", passwords.ErrMalformed, c.Algorithm, d.SaltPosition)
	}
	if c.Algorithm == passwords.MD5 && d.SaltPosition == "none" {
		return "$md5$" + b64(d.Hash), nil
	}
	var name string
	switch c.Algorithm {
	case passwords.SHA1:
		name = "sha1"
	case passwords.SHA256:
		name = "sha256"
	case passwords.SHA512:
		name = "sha512"
	default:
		name = "md5"
	}
	return "$" + name + "$pf=" + b64([]byte(tmpl)) + "$" + b64(d.Salt) + "$" + b64(d.Hash), nil
}

var bcryptCostField = regexp.MustCompile(`^\$2[abxy]?\$([0-9]{2})\$`)

// bcryptCost returns the cost of a hash bcryptHash matches.
func bcryptCost(h string) int {
	m := bcryptCostField.FindStringSubmatch(h)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
