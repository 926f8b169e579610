package manifest

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sample() *Manifest {
	at := time.Date(2026, 12, 6, 22, 0, 0, 123, time.UTC)
	return &Manifest{Version: Version, Command: "migrate", Tool: Tool{Name: "baasmigrate", Version: "test"},
		Source: Source{Platform: "firebase"}, Target: Target{Postgres: "postgres://u@h:5432/d"},
		Started: at, Ended: at.Add(time.Second), Jobs: []Job{}, Transforms: []Transform{},
		Content: Content{Method: Method, SHA256: "00", Tables: []TableDigest{{Schema: "public", Table: "users", Rows: 2, SHA256: "ab"}}}}
}

func TestSignParseCheck(t *testing.T) {
	seed := make([]byte, 32)
	seed[0] = 7
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "seed.hex")
	os.WriteFile(keyPath, []byte(hex.EncodeToString(seed)+"\n"), 0o600)
	key, err := LoadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Sign(sample(), key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if _, err := CheckSignature(m, pub); err != nil {
		t.Fatalf("CheckSignature: %v", err)
	}
	// Every single byte changed is caught, by Parse or by the signature.
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x01
		m, err := Parse(bad)
		if err == nil {
			_, err = CheckSignature(m, pub)
		}
		if err == nil {
			t.Fatalf("byte %d (%q) changed, still valid", i, data[i])
		}
	}
	other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	if _, err := CheckSignature(m, other); !errors.Is(err, ErrOtherKey) {
		t.Fatalf("another public key: %v", err)
	}
	unsigned, _ := Sign(sample(), nil)
	um, err := Parse(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckSignature(um, nil); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
}

func TestCompareNamesTables(t *testing.T) {
	was := sample().Content
	now := Content{Tables: []TableDigest{{Schema: "public", Table: "users", Rows: 2, SHA256: "cd"}, {Schema: "public", Table: "new", Rows: 1}}}
	d := Compare(was, now)
	if len(d) != 2 || d[0].Table != "users" || d[0].What != "content differs (same number of rows)" || d[1].Table != "new" {
		t.Fatalf("Compare: %+v", d)
	}
	if d := Compare(was, was); d != nil {
		t.Fatalf("same content: %+v", d)
	}
}
