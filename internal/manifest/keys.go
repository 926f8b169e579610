package manifest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadPrivateKey reads an ed25519 private key: PEM of PKCS#8 ("PRIVATE
// KEY", as `openssl genpkey -algorithm ed25519` writes), or the 32-byte
// seed raw, in hex or in base64. Errors never show the key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest key: %w", err)
	}
	if blk, _ := pem.Decode(data); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("manifest key %s: not a PKCS#8 private key: %w", path, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("manifest key %s: a %T, not an ed25519 key", path, k)
		}
		return ek, nil
	}
	seed, ok := raw32(data)
	if !ok {
		return nil, fmt.Errorf("manifest key %s: neither a PEM PKCS#8 ed25519 key nor a 32-byte seed (raw, hex or base64)", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadPublicKey reads an ed25519 public key: PEM of PKIX ("PUBLIC KEY",
// as `openssl pkey -pubout` writes), or its 32 bytes raw, in hex or in
// base64.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	if blk, _ := pem.Decode(data); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: not a PKIX public key: %w", path, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: a %T, not an ed25519 key", path, k)
		}
		return ek, nil
	}
	b, ok := raw32(data)
	if !ok {
		return nil, fmt.Errorf("public key %s: neither a PEM ed25519 public key nor 32 bytes (raw, hex or base64)", path)
	}
	return ed25519.PublicKey(b), nil
}

// raw32 reads 32 bytes given raw, as hex or as base64.
func raw32(data []byte) ([]byte, bool) {
	if len(data) == 32 {
		return data, true
	}
	s := string(bytes.TrimSpace(data))
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, true
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, true
	}
	return nil, false
}
