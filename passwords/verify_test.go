package passwords

import (
	"errors"
	"strings"
	"testing"

	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

// vector is one published test vector: a credential, the password it was
// made from and a wrong one.
type vector struct {
	name            string
	cred            Credential
	password, wrong string
}

// Firebase's project parameters of the firebase/scrypt README sample
// (github.com/firebase/scrypt, README "Password hashing"), as
// passwords/firebasescrypt's tests use them.
const (
	fbSignerKey = scrypttest.SignerKey
	fbSeparator = scrypttest.SaltSeparator
	fbSalt      = scrypttest.Salt
)

func fbParams(rounds, memCost string) map[string]string {
	return map[string]string{"signer_key": fbSignerKey, "salt_separator": fbSeparator, "rounds": rounds, "mem_cost": memCost}
}

var vectors = []vector{
	// Firebase scrypt: the firebase/scrypt README sample (rounds 8,
	// mem_cost 14) and zitadel/passwap's (rounds 4, mem_cost 10), the
	// vectors of passwords/firebasescrypt's own tests.
	{"firebase readme", Credential{Algorithm: FirebaseScrypt, Salt: fbSalt, Params: fbParams("8", "14"),
		Hash: "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="}, "user1password", "user1passwor"},
	// The same README user in the forms passwords/firebasescrypt encodes
	// for Supabase Auth and Ory Kratos (its TestVectors round-trips them).
	{"firebase as $fbscrypt$", Credential{Algorithm: FirebaseScrypt,
		Hash: "$fbscrypt$v=1,n=14,r=8,p=1,ss=" + fbSeparator + ",sk=" + fbSignerKey + "$" + fbSalt + "$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="},
		"user1password", "User1password"},
	{"firebase as $firescrypt$", Credential{Algorithm: FirebaseScrypt,
		Hash: "$firescrypt$ln=14,r=8,p=1$" + fbSalt + "$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$" + fbSeparator + "$" + fbSignerKey},
		"user1password", "hunter2"},
	{"firebase passwap", Credential{Algorithm: FirebaseScrypt, Salt: fbSalt, Params: fbParams("4", "10"),
		Hash: "EQ0tlNdKv5ZBDYN7ofOYlhhTEe5Tu9bueDmtDUhLPM+9dcS1u1ALgMcT6N1+U9GsDlVdd3FE2dmz37fU5Y8A9Q=="}, "user1password", "user2password"},

	// bcrypt: Openwall crypt_blowfish's wrapper.c vectors (also John the
	// Ripper's and PHP's ext/standard/tests/crypt/crypt_blowfish.phpt),
	// one per prefix; the third checks that bytes after the 72nd are
	// ignored, as every implementation does.
	{"bcrypt $2a$", Credential{Algorithm: Bcrypt, Hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}, "U*U", "U*U*"},
	{"bcrypt $2a$ U*U*", Credential{Algorithm: Bcrypt, Hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"}, "U*U*", "U*U"},
	{"bcrypt over 72 bytes", Credential{Algorithm: Bcrypt, Hash: "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"},
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored",
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678"},
	{"bcrypt $2b$", Credential{Algorithm: Bcrypt, Hash: "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"}, "\xff\xff\xa3", "\xff\xa3"},
	{"bcrypt $2y$", Credential{Algorithm: Bcrypt, Hash: "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq"}, "\xa3", "\xa4"},

	// Argon2: the reference implementation's encoded-string vectors
	// (P-H-C/phc-winner-argon2 src/test.c, version 0x13, password
	// "password", salt "somesalt").
	{"argon2id m=256 p=1", Credential{Algorithm: Argon2id, Hash: "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"}, "password", "passwore"},
	{"argon2id m=256 p=2", Credential{Algorithm: Argon2id, Hash: "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"}, "password", "Password"},
	{"argon2i m=256 p=1", Credential{Algorithm: Argon2i, Hash: "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8"}, "password", "passwore"},
	{"argon2i m=256 p=2", Credential{Algorithm: Argon2i, Hash: "$argon2i$v=19$m=256,t=2,p=2$c29tZXNhbHQ$T/XOJ2mh1/TIpJHfCdQan76Q5esCFVoT5MAeIM1Oq2E"}, "password", "differentpassword"},
	// supabase/auth internal/crypto tests' argon2id string (as in
	// passwords/argon2id).
	{"argon2id supabase", Credential{Algorithm: Argon2id, Hash: "$argon2id$v=19$m=32,t=3,p=2$SFVpOWJ0eXhjRzVkdGN1RQ$RXnb8rh7LaDcn07xsssqqulZYXOM/EUCEFMVcAcyYVk"}, "test", "tesT"},

	// scrypt: RFC 7914 section 12, the first two vectors (the first in
	// base64, the second in hex as the RFC prints it, salt as text).
	{"scrypt rfc7914 #1", Credential{Algorithm: Scrypt, Salt: "",
		Params: map[string]string{"n": "16", "r": "1", "p": "1", "key_length": "64"},
		Hash:   "d9ZXYjhleyA7GcpCwYoEl/FrSETjB0ro39/6P+3iFEL80Aad7QlI+DJqdToPyB8X6NPg+y4NNijPNeIMONGJBg=="}, "", "x"},
	{"scrypt rfc7914 #2", Credential{Algorithm: Scrypt, Salt: "NaCl",
		Params: map[string]string{"n": "1024", "r": "8", "p": "16", "key_length": "64", "encoding": "hex", "salt_encoding": "text"},
		Hash:   "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"}, "password", "passwore"},

	// PBKDF2-HMAC-SHA256: RFC 7914 section 11 (salt in hex: "salt",
	// "NaCl"), Django's test_hashers vector of Django 1.5 ("lètmein",
	// "seasalt", 10000 iterations) and passlib's pbkdf2_sha256 vector
	// (passlib/tests/test_handlers.py).
	{"pbkdf2-sha256 rfc7914 #1", Credential{Algorithm: PBKDF2SHA256, Salt: "73616c74",
		Params: map[string]string{"iterations": "1", "key_length": "64", "encoding": "hex"},
		Hash:   "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"}, "passwd", "Passwd"},
	{"pbkdf2-sha256 rfc7914 #2", Credential{Algorithm: PBKDF2SHA256, Salt: "4e61436c",
		Params: map[string]string{"iterations": "80000", "encoding": "hex"},
		Hash:   "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"}, "Password", "password"},
	{"pbkdf2-sha256 django", Credential{Algorithm: PBKDF2SHA256,
		Hash: "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY="}, "lètmein", "letmein"},
	{"pbkdf2-sha256 passlib", Credential{Algorithm: PBKDF2SHA256,
		Hash: "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ"}, "password", "passw0rd"},

	// PBKDF2-HMAC-SHA512: the widely published vector for "password",
	// "salt", 1 iteration, 64 bytes (Anti-weakpasswords' PBKDF2-HMAC-SHA512
	// test vectors, stackoverflow.com/questions/15593184; checked with
	// Python's hashlib.pbkdf2_hmac), with the salt as text, and passlib's
	// pbkdf2_sha512 vector.
	{"pbkdf2-sha512 c=1", Credential{Algorithm: PBKDF2SHA512, Salt: "salt",
		Params: map[string]string{"iterations": "1", "encoding": "hex", "salt_encoding": "text"},
		Hash:   "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"}, "password", "passwore"},
	{"pbkdf2-sha512 passlib", Credential{Algorithm: PBKDF2SHA512,
		Hash: "$pbkdf2-sha512$1212$RHY0Fr3IDMSVO/RSZyb5ow$eNLfBK.eVozomMr.1gYa17k9B7KIK25NOEshvhrSX.esqY3s.FvWZViXz4KoLlQI.BzY/YTNJOiKc5gBYFYGww"}, "password", "Password"},

	// Salted digests: FIPS 180-4's "abc" examples (SHA-1, SHA-256,
	// SHA-512) and RFC 1321's test suite (MD5), with the message split
	// into salt and password.
	{"sha1 prefix salt", Credential{Algorithm: SHA1, Salt: "a", Params: map[string]string{"salt_position": "prefix"},
		Hash: "a9993e364706816aba3e25717850c26c9cd0d89d"}, "bc", "ab"},
	{"sha256 suffix salt", Credential{Algorithm: SHA256, Salt: "c", Params: map[string]string{"salt_position": "suffix"},
		Hash: "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}, "ab", "bc"},
	{"sha256 base64 salt", Credential{Algorithm: SHA256, Salt: "YQ==", // "a"
		Params: map[string]string{"salt_position": "prefix", "encoding": "base64", "salt_encoding": "base64"},
		Hash:   "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="}, "bc", "ab"},
	{"sha512 unsalted", Credential{Algorithm: SHA512,
		Hash: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"}, "abc", "abd"},
	{"md5 unsalted", Credential{Algorithm: MD5, Hash: "900150983cd24fb0d6963f7d28e17f72"}, "abc", "ABC"},
	{"md5 prefix salt", Credential{Algorithm: MD5, Salt: "message ", Params: map[string]string{"salt_position": "prefix"},
		Hash: "f96b697d7cb7938d525a2f31aaf161d0"}, "digest", "message digest"},

	// phpass: the reference implementation's test.php vector
	// ("test12345", from openwall.com/phpass) and passlib's phpass vectors.
	{"phpass reference", Credential{Algorithm: PHPass, Hash: "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"}, "test12345", "test12346"},
	{"phpass passlib $H$", Credential{Algorithm: PHPass, Hash: "$H$9aaaaaSXBjgypwqm.JsMssPLiS8YQ00"}, "test1", "test2"},
	{"phpass passlib count 2^8", Credential{Algorithm: PHPass, Hash: "$P$612345678si5M0DDyPpmRCmcltU/YW/"}, "JohnRipper", "johnripper"},

	// The Firebase Auth emulator's stand-in, from the emulator export in
	// extractors/firebaseauth/file_test.go.
	{"emulator", Credential{Algorithm: EmulatorFake, Salt: "fakeSaltMRmWNZYR2cyN9tqJkg7N",
		Hash: "fakeHash:salt=fakeSaltMRmWNZYR2cyN9tqJkg7N:password=bsclibrary"}, "bsclibrary", "bsclibrar"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			if err := Check(v.cred); err != nil {
				t.Fatalf("Check = %v", err)
			}
			if ok, err := Verify(v.cred, []byte(v.password)); !ok || err != nil {
				t.Fatalf("Verify(right password) = %v, %v; want true", ok, err)
			}
			if ok, err := Verify(v.cred, []byte(v.wrong)); ok || err != nil {
				t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
			}
			bad := v.cred
			bad.Hash = tamper(t, v.cred.Hash)
			if ok, err := Verify(bad, []byte(v.password)); ok || err != nil {
				t.Fatalf("Verify(tampered hash) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

// tamper changes one character near the end of h — inside the digest in
// every format above — to another of the same class, so that the result
// still decodes.
func tamper(t *testing.T, h string) string {
	t.Helper()
	b := []byte(h)
	for i := len(b) - 5; i >= 0; i-- {
		c := b[i]
		switch {
		case c >= '0' && c <= '8', c >= 'a' && c <= 'e', c >= 'g' && c <= 'y', c >= 'A' && c <= 'Y':
			b[i] = c + 1
		case c == '9':
			b[i] = '0'
		case c == 'f':
			b[i] = 'a'
		case c == 'z':
			b[i] = 'g'
		case c == 'Z':
			b[i] = 'A'
		default:
			continue
		}
		return string(b)
	}
	t.Fatalf("nothing to tamper with in %q", h)
	return ""
}

func TestCannotVerify(t *testing.T) {
	for _, c := range []Credential{
		{Algorithm: None},
		{Algorithm: Unknown, Hash: "$sha1$19703$iVdJqfSE$v4qYKl1zfYThwRvrYPQE4aSTLDXl", Salt: "x", Params: map[string]string{"any": "thing"}},
	} {
		if err := Check(c); err != nil {
			t.Errorf("Check(%s) = %v; want nil, the credential is well formed", c.Algorithm, err)
		}
		ok, err := Verify(c, []byte("anything"))
		if ok || !errors.Is(err, ErrCannotVerify) {
			t.Errorf("Verify(%s) = %v, %v; want false, ErrCannotVerify", c.Algorithm, ok, err)
		}
		if err != nil && !strings.Contains(err.Error(), "old service") {
			t.Errorf("Verify(%s) error %q does not say what the user must do", c.Algorithm, err)
		}
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	for _, name := range []string{"", "bcrypt", "SHA384", "FIREBASE-SCRYPT", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"} {
		c := Credential{Algorithm: name, Hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}
		if err := Check(c); !errors.Is(err, ErrUnknownAlgorithm) {
			t.Errorf("Check(%q) = %v; want ErrUnknownAlgorithm", name, err)
		}
		if err := Check(c); name != "" && strings.Contains(err.Error(), name) != looksLikeName(name) {
			t.Errorf("Check(%q) = %q; want the name quoted only when it looks like one", name, err)
		}
		if ok, err := Verify(c, []byte("U*U")); ok || !errors.Is(err, ErrUnknownAlgorithm) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrUnknownAlgorithm", name, ok, err)
		}
	}
}

func TestAlgorithms(t *testing.T) {
	want := []string{FirebaseScrypt, Bcrypt, Argon2id, Argon2i, Scrypt, PBKDF2SHA256, PBKDF2SHA512,
		SHA1, SHA256, SHA512, MD5, PHPass, None, EmulatorFake, Unknown}
	got := Algorithms()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Algorithms() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if Algorithms()[0] != FirebaseScrypt {
		t.Fatal("Algorithms returns its own slice, not a copy")
	}
	// Every name is dispatched: a zero credential of it is at worst
	// malformed, never of an unknown algorithm.
	tested := map[string]bool{None: true, Unknown: true}
	for _, v := range vectors {
		tested[v.cred.Algorithm] = true
	}
	for _, name := range want {
		if err := Check(Credential{Algorithm: name}); errors.Is(err, ErrUnknownAlgorithm) {
			t.Errorf("Check(%s) = %v", name, err)
		}
		if !tested[name] {
			t.Errorf("no published vector tests %s", name)
		}
	}
}

// A bcrypt, argon2 and phpass hash of the vectors, to break in the cases
// below.
const (
	bcryptHash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	argonHash  = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	sha1Hex    = "a9993e364706816aba3e25717850c26c9cd0d89d"
)

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

var (
	scryptParams = map[string]string{"n": "16", "r": "1", "p": "1"}
	scryptHash   = "d9ZXYjhleyA7GcpCwYoEl/FrSETjB0ro39/6P+3iFEL80Aad7QlI+DJqdToPyB8X6NPg+y4NNijPNeIMONGJBg=="
	fbHash       = "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="
)

// malformedCases are credentials Check must refuse, with a word the error
// must contain so that it fails for the right reason.
var malformedCases = []struct {
	name string
	cred Credential
	want string
}{
	{"firebase no signer key", Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: with(fbParams("8", "14"), "signer_key", "<delete>")}, "signer_key"},
	{"firebase no rounds", Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: with(fbParams("8", "14"), "rounds", "<delete>")}, "rounds"},
	{"firebase rounds 9", Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: fbParams("9", "14")}, "rounds"},
	{"firebase mem_cost 20", Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: fbParams("8", "20")}, "mem_cost"},
	{"firebase signer key not base64", Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: with(fbParams("8", "14"), "signer_key", "not*base64")}, "signer key"},
	{"firebase hash not base64", Credential{Algorithm: FirebaseScrypt, Hash: "%%%", Salt: fbSalt, Params: fbParams("8", "14")}, "Hash"},
	{"firebase hash of another key", Credential{Algorithm: FirebaseScrypt, Hash: "AAAA", Salt: fbSalt, Params: fbParams("8", "14")}, "signer key"},
	{"firebase encoded with params", Credential{Algorithm: FirebaseScrypt, Hash: "$firescrypt$ln=14,r=8,p=1$" + fbSalt + "$" + fbHash + "$" + fbSeparator + "$" + fbSignerKey, Params: fbParams("8", "14")}, "Params must be empty"},
	{"firebase encoded p=2", Credential{Algorithm: FirebaseScrypt, Hash: "$firescrypt$ln=14,r=8,p=2$" + fbSalt + "$" + fbHash + "$" + fbSeparator + "$" + fbSignerKey}, "p=1"},
	{"firebase unknown parameter", Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: with(fbParams("8", "14"), "memcost", "14")}, "memcost"},

	{"bcrypt truncated", Credential{Algorithm: Bcrypt, Hash: bcryptHash[:59]}, "60"},
	{"bcrypt $2x$", Credential{Algorithm: Bcrypt, Hash: "$2x$" + bcryptHash[4:]}, "$2a$"},
	{"bcrypt cost 3", Credential{Algorithm: Bcrypt, Hash: "$2a$03$" + bcryptHash[7:]}, "cost"},
	{"bcrypt cost 32", Credential{Algorithm: Bcrypt, Hash: "$2a$32$" + bcryptHash[7:]}, "cost"},
	{"bcrypt bad alphabet", Credential{Algorithm: Bcrypt, Hash: bcryptHash[:20] + "+" + bcryptHash[21:]}, "alphabet"},
	{"bcrypt with salt", Credential{Algorithm: Bcrypt, Hash: bcryptHash, Salt: "CCCC"}, "Salt"},
	{"bcrypt with params", Credential{Algorithm: Bcrypt, Hash: bcryptHash, Params: map[string]string{"cost": "5"}}, "cost"},

	{"argon2id as argon2i", Credential{Algorithm: Argon2i, Hash: argonHash}, "$argon2i$"},
	{"argon2 version 16", Credential{Algorithm: Argon2i, Hash: "$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY"}, "version"},
	{"argon2 v=16", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "v=19", "v=16", 1)}, "version"},
	{"argon2 missing $", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "p=1$", "p=1", 1)}, "salt$hash"},
	{"argon2 order", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "m=256,t=2", "t=2,m=256", 1)}, "m="},
	{"argon2 t=0", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "t=2", "t=0", 1)}, "t"},
	{"argon2 m under 8p", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "m=256,t=2,p=1", "m=16,t=2,p=4", 1)}, "8 KiB"},
	{"argon2 keyid", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "p=1", "p=1,keyid=abc", 1)}, "keyid"},
	{"argon2 short salt", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "c29tZXNhbHQ", "c29tZQ", 1)}, "8 bytes"},
	{"argon2 salt not base64", Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "c29tZXNhbHQ", "c29t*XNhbHQ", 1)}, "salt"},
	{"argon2 with salt", Credential{Algorithm: Argon2id, Hash: argonHash, Salt: "c29tZXNhbHQ"}, "Salt"},

	{"scrypt no n", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "n", "<delete>")}, `"n"`},
	{"scrypt n not a power of two", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "n", "1000")}, "power of two"},
	{"scrypt n 1", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "n", "1")}, `"n"`},
	{"scrypt r not a number", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "r", "eight")}, `"r"`},
	{"scrypt key_length differs", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "key_length", "32")}, "key_length"},
	{"scrypt hash not hex", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "encoding", "hex")}, "hex"},
	{"scrypt unknown encoding", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "encoding", "base32")}, "encoding"},
	{"scrypt typo", Credential{Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "encodng", "hex")}, "encodng"},
	{"scrypt empty hash", Credential{Algorithm: Scrypt, Params: scryptParams}, "Hash"},

	{"pbkdf2 no iterations", Credential{Algorithm: PBKDF2SHA256, Hash: scryptHash, Salt: "c2FsdA"}, "iterations"},
	{"pbkdf2 iterations 0", Credential{Algorithm: PBKDF2SHA256, Hash: scryptHash, Params: map[string]string{"iterations": "0"}}, "iterations"},
	{"pbkdf2 salt not hex", Credential{Algorithm: PBKDF2SHA512, Hash: sha1Hex, Salt: "salt", Params: map[string]string{"iterations": "1", "encoding": "hex"}}, "Salt"},
	{"django wrong digest", Credential{Algorithm: PBKDF2SHA512, Hash: "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY="}, "iterations"},
	{"django missing field", Credential{Algorithm: PBKDF2SHA256, Hash: "pbkdf2_sha256$10000$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY="}, "pbkdf2_sha256$"},
	{"django hash not base64", Credential{Algorithm: PBKDF2SHA256, Hash: "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7Hv*"}, "base64"},
	{"passlib zero-padded rounds", Credential{Algorithm: PBKDF2SHA256, Hash: "$pbkdf2-sha256$01212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ"}, "iteration"},
	{"django with params", Credential{Algorithm: PBKDF2SHA256, Hash: "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY=", Params: map[string]string{"iterations": "10000"}}, "iterations"},

	{"sha1 short hash", Credential{Algorithm: SHA1, Hash: sha1Hex[:38]}, "bytes"},
	{"sha256 given a sha1 hash", Credential{Algorithm: SHA256, Hash: sha1Hex}, "bytes"},
	{"md5 not hex", Credential{Algorithm: MD5, Hash: "900150983cd24fb0d6963f7d28e17fzz"}, "hex"},
	{"sha1 salt without position", Credential{Algorithm: SHA1, Hash: sha1Hex, Salt: "a"}, "salt_position"},
	{"sha1 position none with salt", Credential{Algorithm: SHA1, Hash: sha1Hex, Salt: "a", Params: map[string]string{"salt_position": "none"}}, "salt_position"},
	{"sha1 position without salt", Credential{Algorithm: SHA1, Hash: sha1Hex, Params: map[string]string{"salt_position": "prefix"}}, "Salt"},
	{"sha1 bad position", Credential{Algorithm: SHA1, Hash: sha1Hex, Salt: "a", Params: map[string]string{"salt_position": "before"}}, "salt_position"},
	{"sha1 bad salt encoding", Credential{Algorithm: SHA1, Hash: sha1Hex, Salt: "a", Params: map[string]string{"salt_position": "prefix", "salt_encoding": "utf8"}}, "salt_encoding"},

	{"phpass $1$", Credential{Algorithm: PHPass, Hash: "$1$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"}, "$P$"},
	{"phpass short", Credential{Algorithm: PHPass, Hash: "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L"}, "34"},
	{"phpass count 2^6", Credential{Algorithm: PHPass, Hash: "$P$4IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"}, "2^7"},
	{"phpass count 2^31", Credential{Algorithm: PHPass, Hash: "$P$TIQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"}, "2^30"},
	{"phpass bad alphabet", Credential{Algorithm: PHPass, Hash: "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r+L0"}, "alphabet"},

	{"emulator other salt", Credential{Algorithm: EmulatorFake, Salt: "s2", Hash: "fakeHash:salt=s:password=p"}, "fakeHash"},
	{"emulator not fake", Credential{Algorithm: EmulatorFake, Hash: fbHash}, "fakeHash"},
	{"none with a hash", Credential{Algorithm: None, Hash: bcryptHash}, "no hash"},
}

func TestMalformed(t *testing.T) {
	for _, m := range malformedCases {
		t.Run(m.name, func(t *testing.T) {
			err := Check(m.cred)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check = %v; want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), m.want) {
				t.Errorf("Check = %q; want it to mention %q", err, m.want)
			}
			if ok, verr := Verify(m.cred, []byte("password")); ok || !errors.Is(verr, ErrMalformed) {
				t.Errorf("Verify = %v, %v; want false, ErrMalformed", ok, verr)
			}
		})
	}
}

// TestRefusesAbsurdCosts: parameters a forged row could use to make Verify
// allocate gigabytes or compute for hours fail Check, before any work. Each
// would take seconds to hours if Verify ran it.
func TestRefusesAbsurdCosts(t *testing.T) {
	argon := func(mtp string) Credential {
		return Credential{Algorithm: Argon2id, Hash: strings.Replace(argonHash, "m=256,t=2,p=1", mtp, 1)}
	}
	for name, c := range map[string]Credential{
		"argon2 m=4GiB":          argon("m=4194304,t=1,p=1"),
		"argon2 m=1GiB+1":        argon("m=1048577,t=1,p=1"),
		"argon2 m=1GiB t=5":      argon("m=1048576,t=5,p=1"),
		"argon2 t=2^32-1":        argon("m=256,t=4294967295,p=1"),
		"argon2 p=256":           argon("m=4096,t=1,p=256"),
		"scrypt N=2^30":          {Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "n", "1073741824")},
		"scrypt 128rN=2GiB":      {Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "n", "1048576", "r", "16")},
		"scrypt NRP over 2^25":   {Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "n", "16384", "r", "8", "p", "1024")},
		"scrypt p huge":          {Algorithm: Scrypt, Hash: scryptHash, Params: with(scryptParams, "p", "9223372036854775807")},
		"pbkdf2 1e9 iterations":  {Algorithm: PBKDF2SHA256, Hash: scryptHash, Params: map[string]string{"iterations": "1000000000"}},
		"pbkdf2 blocks × iter":   {Algorithm: PBKDF2SHA256, Hash: strings.Repeat("AAAA", 256), Params: map[string]string{"iterations": "1000000"}},
		"pbkdf2 hash over 1 KiB": {Algorithm: PBKDF2SHA256, Hash: strings.Repeat("AAAA", 400), Params: map[string]string{"iterations": "1"}},
		"django 2^62 iterations": {Algorithm: PBKDF2SHA256, Hash: "pbkdf2_sha256$4611686018427387904$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY="},
		"firebase mem_cost 31":   {Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: fbParams("8", "31")},
		"bcrypt cost 99":         {Algorithm: Bcrypt, Hash: "$2a$99$" + bcryptHash[7:]},
		"phpass count 2^31":      {Algorithm: PHPass, Hash: "$P$T" + strings.Repeat("a", 30)},
	} {
		if err := Check(c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v; want ErrMalformed", name, err)
		}
	}
}

// TestErrorsKeepSecrets: no error quotes a hash, a salt or a Firebase
// project secret, whatever is wrong with the credential.
func TestErrorsKeepSecrets(t *testing.T) {
	const (
		secretKey = "U2VjcmV0U2lnbmVyS2V5UXVpdGVMb25nMTIzNDU2Nzg5MA==" // base64, decodes
		secretSep = "U2VjcmV0U2Vw"
		badKey    = "Secret*Signer*Key*Not*Base64"
		hashText  = "SecretHashValue0123456789SecretHashValue"
		saltText  = "SecretSaltValue0123"
	)
	creds := []Credential{
		{Algorithm: FirebaseScrypt, Hash: hashText, Salt: saltText, Params: map[string]string{"signer_key": secretKey, "salt_separator": secretSep, "rounds": "8", "mem_cost": "14"}},
		{Algorithm: FirebaseScrypt, Hash: hashText, Salt: saltText, Params: map[string]string{"signer_key": badKey, "salt_separator": secretSep, "rounds": "8", "mem_cost": "14"}},
		{Algorithm: FirebaseScrypt, Hash: hashText, Salt: saltText, Params: map[string]string{"signer_key": secretKey, "salt_separator": badKey, "rounds": "8", "mem_cost": "14"}},
		{Algorithm: FirebaseScrypt, Hash: "*" + hashText, Salt: saltText, Params: map[string]string{"signer_key": secretKey, "rounds": "8", "mem_cost": "14"}},
		{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: "*" + saltText, Params: map[string]string{"signer_key": secretKey, "rounds": "8", "mem_cost": "14"}},
		{Algorithm: Bcrypt, Hash: hashText},
		{Algorithm: Bcrypt, Hash: bcryptHash, Salt: saltText},
		{Algorithm: Argon2id, Hash: "$argon2id$" + hashText},
		{Algorithm: Argon2i, Hash: "$argon2i$v=19$m=256,t=2,p=1$" + saltText + "*$" + hashText},
		{Algorithm: Scrypt, Hash: "*" + hashText, Salt: saltText, Params: scryptParams},
		{Algorithm: Scrypt, Hash: scryptHash, Salt: "*" + saltText, Params: scryptParams},
		{Algorithm: PBKDF2SHA256, Hash: "pbkdf2_sha256$1$" + saltText + "$" + hashText + "*"},
		{Algorithm: PBKDF2SHA512, Hash: "$pbkdf2-sha512$1$" + saltText + "*$" + hashText},
		{Algorithm: PBKDF2SHA512, Hash: hashText + "*", Salt: saltText, Params: map[string]string{"iterations": "1", "encoding": "hex"}},
		{Algorithm: SHA256, Hash: hashText, Salt: saltText, Params: map[string]string{"salt_position": "suffix"}},
		{Algorithm: MD5, Hash: hashText, Salt: saltText},
		{Algorithm: PHPass, Hash: "$P$" + hashText},
		{Algorithm: EmulatorFake, Hash: hashText, Salt: saltText},
		{Algorithm: None, Hash: hashText, Salt: saltText},
		{Algorithm: Unknown, Hash: hashText, Salt: saltText},
	}
	for i, c := range creds {
		_, err := Verify(c, []byte("password"))
		errs := []error{err}
		if c.Algorithm != Unknown { // well formed whatever it holds
			errs = append(errs, Check(c))
		}
		for _, err := range errs {
			if err == nil {
				t.Errorf("credential %d (%s) gave no error", i, c.Algorithm)
				continue
			}
			for _, secret := range []string{secretKey, secretSep, badKey, hashText, saltText, "Secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("credential %d (%s): error %q quotes a secret", i, c.Algorithm, err)
				}
			}
		}
	}
}

// FuzzCheck: Check reads any credential without panicking, and its errors
// never quote the hash or the salt. (Verify is Check followed by the
// computation; fuzzing it would spend the fuzzer's time in the caps.)
func FuzzCheck(f *testing.F) {
	for _, v := range vectors {
		p := v.cred.Params
		f.Add(v.cred.Algorithm, v.cred.Hash, v.cred.Salt, p["n"]+p["iterations"]+p["rounds"], p["encoding"], p["salt_position"])
	}
	for _, m := range malformedCases {
		f.Add(m.cred.Algorithm, m.cred.Hash, m.cred.Salt, "", "", "")
	}
	f.Add(FirebaseScrypt, "$fbscrypt$v=1,n=14,r=8,p=1,Zq9xSecret=1,sk=a2V5$YQ==$Yg==", "", "", "", "")
	f.Add(FirebaseScrypt, "$firescrypt$ln=14,r=8,p=1,ln2Secret=1$YQ==$Yg==$Bw==$a2V5", "", "", "", "")
	f.Fuzz(func(t *testing.T, alg, hash, salt, num, enc, pos string) {
		params := map[string]string{}
		for k, v := range map[string]string{"n": num, "r": "1", "p": "1", "iterations": num, "encoding": enc, "salt_position": pos} {
			if v != "" {
				params[k] = v
			}
		}
		for _, c := range []Credential{
			{Algorithm: alg, Hash: hash, Salt: salt},
			{Algorithm: alg, Hash: hash, Salt: salt, Params: params},
		} {
			err := Check(c)
			if err == nil {
				continue
			}
			for _, secret := range []string{hash, salt} {
				// Long enough and hash-like (a digit, not the algorithm's
				// name) not to occur in an error's own words by chance.
				hashLike := len(secret) >= 12 && strings.ContainsAny(secret, "0123456789") && !strings.Contains(alg, secret)
				if hashLike && strings.Contains(err.Error(), secret) {
					t.Fatalf("Check(%s) error %q quotes the hash or salt", alg, err)
				}
			}
			// Nor a piece of them (a parameter name inside an encoded
			// hash): pieces of 8 or more characters with a letter and a
			// digit, which the errors' own words (algorithm names aside)
			// never are.
			names := strings.ToLower(strings.Join(Algorithms(), " ") + " " + alg)
			for _, frag := range strings.FieldsFunc(hash+"$"+salt, func(r rune) bool { return strings.ContainsRune("$,=:; ", r) }) {
				hashLike := len(frag) >= 8 && strings.ContainsAny(frag, "0123456789") &&
					strings.ContainsFunc(frag, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) &&
					!strings.Contains(names, strings.ToLower(frag))
				if hashLike && strings.Contains(err.Error(), frag) {
					t.Fatalf("Check(%s) error %q quotes a piece of the hash or salt, %q", alg, err, frag)
				}
			}
		}
	})
}

// FirebaseScryptParams writes the Params Verify reads: the README vector
// verifies through them.
func TestFirebaseScryptParams(t *testing.T) {
	p, err := firebasescrypt.ParseParams(fbSignerKey, fbSeparator, 8, 14)
	if err != nil {
		t.Fatal(err)
	}
	params := FirebaseScryptParams(p)
	if params["signer_key"] != fbSignerKey || params["salt_separator"] != fbSeparator || params["rounds"] != "8" || params["mem_cost"] != "14" {
		t.Fatalf("FirebaseScryptParams wrote other values than the configuration's (keys %d)", len(params))
	}
	c := Credential{Algorithm: FirebaseScrypt, Salt: fbSalt, Params: params, Hash: fbHash}
	if ok, err := Verify(c, []byte("user1password")); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
}

// TestFirebaseWithoutParameters: a Firebase scrypt hash without the
// project's parameters cannot be verified (ErrCannotVerify), from Verify
// and FirebaseScryptParamsFrom alike; parameters given in part, or not
// numbers, are malformed.
func TestFirebaseWithoutParameters(t *testing.T) {
	for _, params := range []map[string]string{nil, {}, {"salt_separator": ""}} {
		c := Credential{Algorithm: FirebaseScrypt, Hash: fbHash, Salt: fbSalt, Params: params}
		if err := Check(c); err != nil {
			t.Errorf("Check(%v) = %v; want nil, the hash and salt are well formed", params, err)
		}
		if ok, err := Verify(c, []byte("user1password")); ok || !errors.Is(err, ErrCannotVerify) || errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%v) = %v, %v; want ErrCannotVerify", params, ok, err)
		}
		if _, err := FirebaseScryptParamsFrom(params); !errors.Is(err, ErrCannotVerify) {
			t.Errorf("FirebaseScryptParamsFrom(%v) = %v; want ErrCannotVerify", params, err)
		}
	}
	if err := Check(Credential{Algorithm: FirebaseScrypt, Hash: "%%%", Salt: fbSalt}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a hash that is not base64, without parameters: %v; want ErrMalformed", err)
	}
	for name, params := range map[string]map[string]string{
		"no signer key":       with(fbParams("8", "14"), "signer_key", "<delete>"),
		"rounds not a number": fbParams("eight", "14"),
		"mem_cost missing":    with(fbParams("8", "14"), "mem_cost", "<delete>"),
		"rounds 9":            fbParams("9", "14"),
	} {
		if _, err := FirebaseScryptParamsFrom(params); !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), fbSignerKey) {
			t.Errorf("FirebaseScryptParamsFrom, %s: %v; want ErrMalformed", name, err)
		}
	}
}
