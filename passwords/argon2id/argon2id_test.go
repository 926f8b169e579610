package argon2id

import (
	"strings"
	"testing"
)

// fast keeps the tests quick; Default is exercised once.
var fast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerifyRoundTrip(t *testing.T) {
	for _, p := range []Params{fast, Default} {
		enc, err := Hash([]byte("correct horse"), p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=") || strings.Contains(enc, "=$") {
			t.Fatalf("not an unpadded PHC string: %q", enc)
		}
		if ok, err := Verify([]byte("correct horse"), enc); !ok || err != nil {
			t.Fatalf("Verify(right) = %v, %v", ok, err)
		}
		if ok, err := Verify([]byte("correct horsf"), enc); ok || err != nil {
			t.Fatalf("Verify(wrong) = %v, %v", ok, err)
		}
	}
	a, _ := Hash([]byte("x"), fast)
	b, _ := Hash([]byte("x"), fast)
	if a == b {
		t.Fatal("two hashes of one password share a salt")
	}
}

// Hashes made elsewhere verify here: the argon2id strings of supabase/auth's
// internal/crypto tests (RFC 9106 argon2id, "test" was their password).
func TestVerifiesForeignPHCStrings(t *testing.T) {
	ok, err := Verify([]byte("test"), "$argon2id$v=19$m=32,t=3,p=2$SFVpOWJ0eXhjRzVkdGN1RQ$RXnb8rh7LaDcn07xsssqqulZYXOM/EUCEFMVcAcyYVk")
	if err != nil || !ok {
		t.Fatalf("Verify(supabase vector) = %v, %v", ok, err)
	}
}

func TestMalformedAndHostileStrings(t *testing.T) {
	for _, bad := range []string{
		"", "$argon2i$v=19$m=32,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=16$m=32,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=99999999,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=32,t=0,p=2$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$t=3,m=32,p=2$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=32,t=3,p=2$$aGFzaGhhc2g",
		"$argon2id$v=19$m=32,t=3,p=2$c2FsdHNhbHQ=$aGFzaGhhc2g=",
	} {
		if _, err := Verify([]byte("x"), bad); err == nil {
			t.Errorf("Verify(%q) accepted a malformed string", bad)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	weak, _ := Hash([]byte("x"), fast)
	if !NeedsRehash(weak, Default) {
		t.Fatal("a weaker hash does not need a rehash")
	}
	strong, _ := Hash([]byte("x"), Default)
	if NeedsRehash(strong, Default) {
		t.Fatal("a hash at Default needs a rehash")
	}
	if !NeedsRehash("garbage", Default) {
		t.Fatal("garbage does not need a rehash")
	}
}
