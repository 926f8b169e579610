package authexport

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
)

// errKratosMismatch is kratosCompare's wrong password; any other error is
// a string Kratos would not accept.
var errKratosMismatch = errors.New("mismatched hash and password")

// kratosCompare checks password against encoded as ory/kratos'
// hash.Compare does, written in this test from the rules of
// hash/hash_comparator.go and hash/hash_limits.go (ory/kratos b86338da),
// independently of kratosHash:
//
//   - the first prefix that matches decides the algorithm, in Kratos'
//     order (bcrypt, argon2id, argon2i, pbkdf2, scrypt, sha, md5; the
//     crypt(3), SSHA, firescrypt and HMAC forms are not needed here);
//   - "$"-separated fields, a fixed count per form; parameters read with
//     fmt.Sscanf patterns "i=%d,l=%d", "ln=%d,r=%d,p=%d", "m=%d,t=%d,p=%d",
//     "pf=%s";
//   - argon2 and pbkdf2 salt and hash in strict unpadded standard base64;
//     scrypt, sha and md5 fields in strict padded standard base64;
//   - scrypt's ln is N itself; the key length is the stored hash's length;
//   - sha and md5 digest the template with {SALT} and {PASSWORD} replaced
//     in one pass (strings.NewReplacer); an unsalted md5 is "$md5$<hash>";
//   - the bounds: pbkdf2 i 1..10,000,000; scrypt N 1..2^17, r 1..8, p
//     1..10; argon2 v=19, m 1..2^20 KiB, t 1..10, p 1..16; bcrypt cost ≤ 15.
func kratosCompare(password []byte, encoded string) error {
	strict, rawStrict := base64.StdEncoding.Strict(), base64.RawStdEncoding.Strict()
	parts := strings.Split(encoded, "$")
	match := func(re string) bool { return regexp.MustCompile(re).MatchString(encoded) }
	same := func(a, b []byte) error {
		if subtle.ConstantTimeCompare(a, b) == 1 {
			return nil
		}
		return errKratosMismatch
	}
	switch {
	case match(`^\$2[abzy]?\$`):
		cost, err := bcrypt.Cost([]byte(encoded))
		if err != nil || cost > 15 {
			return fmt.Errorf("bcrypt cost: %v", err)
		}
		if bcrypt.CompareHashAndPassword([]byte(encoded), password) != nil {
			return errKratosMismatch
		}
		return nil
	case match(`^\$argon2id\$`), match(`^\$argon2i\$`):
		if len(parts) != 6 {
			return errors.New("argon2: field count")
		}
		var v int
		if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
			return errors.New("argon2: version")
		}
		var m, t uint32
		var p uint8
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
			return fmt.Errorf("argon2 parameters: %v", err)
		}
		if m == 0 || m > 1<<20 || t == 0 || t > 10 || p == 0 || p > 16 {
			return errors.New("argon2: out of bounds")
		}
		salt, err1 := rawStrict.DecodeString(parts[4])
		want, err2 := rawStrict.DecodeString(parts[5])
		if err1 != nil || err2 != nil {
			return errors.New("argon2: base64")
		}
		derive := argon2.IDKey
		if parts[1] == "argon2i" {
			derive = argon2.Key
		}
		return same(want, derive(password, salt, t, m, p, uint32(len(want))))
	case match(`^\$pbkdf2-sha[0-9]{1,3}\$`):
		if len(parts) != 5 {
			return errors.New("pbkdf2: field count")
		}
		var newHash func() hash.Hash
		switch strings.TrimPrefix(parts[1], "pbkdf2-") {
		case "sha256":
			newHash = sha256.New
		case "sha512":
			newHash = sha512.New
		default:
			return errors.New("pbkdf2: a digest this test does not model")
		}
		var iter, keyLen uint32
		if _, err := fmt.Sscanf(parts[2], "i=%d,l=%d", &iter, &keyLen); err != nil {
			return fmt.Errorf("pbkdf2 parameters: %v", err)
		}
		if iter == 0 || iter > 10_000_000 {
			return errors.New("pbkdf2: out of bounds")
		}
		salt, err1 := rawStrict.DecodeString(parts[3])
		want, err2 := rawStrict.DecodeString(parts[4])
		if err1 != nil || err2 != nil {
			return errors.New("pbkdf2: base64")
		}
		got, err := pbkdf2.Key(newHash, string(password), salt, int(iter), len(want))
		if err != nil {
			return err
		}
		return same(want, got)
	case match(`^\$scrypt\$`):
		if len(parts) != 5 {
			return errors.New("scrypt: field count")
		}
		var n, r, p uint32
		if _, err := fmt.Sscanf(parts[2], "ln=%d,r=%d,p=%d", &n, &r, &p); err != nil {
			return fmt.Errorf("scrypt parameters: %v", err)
		}
		if n == 0 || n > 1<<17 || r == 0 || r > 8 || p == 0 || p > 10 {
			return errors.New("scrypt: out of bounds")
		}
		salt, err1 := strict.DecodeString(parts[3])
		want, err2 := strict.DecodeString(parts[4])
		if err1 != nil || err2 != nil {
			return errors.New("scrypt: base64")
		}
		got, err := scrypt.Key(password, salt, int(n), int(r), int(p), len(want))
		if err != nil {
			return err
		}
		return same(want, got)
	case match(`^\$sha(1|256|512)\$`), match(`^\$md5\$`):
		var newHash func() hash.Hash
		switch parts[1] {
		case "sha1":
			newHash = sha1.New
		case "sha256":
			newHash = sha256.New
		case "sha512":
			newHash = sha512.New
		case "md5":
			newHash = md5.New
		}
		message := password
		var stored string
		switch {
		case parts[1] == "md5" && len(parts) == 3:
			stored = parts[2]
		case len(parts) == 5:
			var pf64 string
			if _, err := fmt.Sscanf(parts[2], "pf=%s", &pf64); err != nil {
				return fmt.Errorf("pf: %v", err)
			}
			pf, err1 := strict.DecodeString(pf64)
			salt, err2 := strict.DecodeString(parts[3])
			if err1 != nil || err2 != nil {
				return errors.New("pf or salt: base64")
			}
			message = []byte(strings.NewReplacer("{SALT}", string(salt), "{PASSWORD}", string(password)).Replace(string(pf)))
			stored = parts[4]
		default:
			return errors.New("digest: field count")
		}
		want, err := strict.DecodeString(stored)
		if err != nil {
			return errors.New("digest: base64")
		}
		h := newHash()
		h.Write(message)
		return same(want, h.Sum(nil))
	}
	return errors.New("not a form this test models")
}

// TestKratosCompareModel: the test's model of Kratos' comparator agrees
// with Kratos' own test suite (ory/kratos hash/hasher_test.go): the
// strings it verifies with the right password verify here, and those it
// refuses are refused here.
func TestKratosCompareModel(t *testing.T) {
	for _, c := range []struct {
		password, encoded string
		ok                bool
	}{
		{"test", "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI", true},
		{"test", "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpp", false},
		{"test", "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc", true},
		{"test", "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXcc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI", false},
		{"test", "$pbkdf2-sha512$I=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc", false},
		{"test", "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=", true},
		{"tesu", "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=", false},
		{"test", "$scrypt$ln=16385,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=", false},
		{"test", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=", true},
		{"tset", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=", false},
		{"test", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$5opmkgz03r$2qU2SGWP8viTM1md3FiI3+rjWXQ=", false},
		{"test", "$sha1$pf=e1BBU1NXT1JEfSUle1NBTFR9$NW9wbWtnejAzcg==$YX0AW8/MW5ojUlnzTaR43ucHCog=", true},
		{"test", "$sha256$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$0gfRVLCvtBCk20udLDEY5vNhujWx7RGjwRIS1ebMsLY=", true},
		{"test", "$sha512$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==", true},
		{"wrongpass", "$sha512$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==", false},
		{"test", "$md5$CY9rzUYh03PK3k6DJie09g==", true},
		{"test", "$md5$WhBei51A4TKXgNYuoiZdig==", false},
		{"ory", "$md5$ptoWyof5SobW+pbZu2QXoQ==", true},
		{"test", "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$q+RdKCgc+ipCAcm5ChQwlQ==", true},
		{"test", "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$hh8ZTp1hGPPZQqcr4+UXSQ==", false},
		{"test", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw", true},
		{"test", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRN2", false},
		{"test", "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c", true},
	} {
		err := kratosCompare([]byte(c.password), c.encoded)
		if c.ok && err != nil || !c.ok && err == nil {
			t.Errorf("%s with %q: %v, Kratos' tests say ok=%v", c.encoded, c.password, err, c.ok)
		}
	}
}

// kratosVectors are credentials as the users tables hold them, with the
// right and a wrong password, and (when known) the exact string Kratos'
// own tests verify for them. The first group reuses passwords/
// verify_test.go's published vectors; the second stores Kratos' own test
// strings (hash/hasher_test.go) in our hash + salt + parameters form, so
// that converting them must give back Kratos' string character for
// character.
var kratosVectors = []struct {
	name            string
	cred            passwords.Credential
	password, wrong string
	want            string // "" when only the prefix is checked
	prefix          string
}{
	// RFC 7914 section 12, vector 1 (empty password and salt).
	{"scrypt rfc7914 #1", passwords.Credential{Algorithm: passwords.Scrypt,
		Params: map[string]string{"n": "16", "r": "1", "p": "1", "key_length": "64"},
		Hash:   "d9ZXYjhleyA7GcpCwYoEl/FrSETjB0ro39/6P+3iFEL80Aad7QlI+DJqdToPyB8X6NPg+y4NNijPNeIMONGJBg=="}, "", "x",
		"$scrypt$ln=16,r=1,p=1$$d9ZXYjhleyA7GcpCwYoEl/FrSETjB0ro39/6P+3iFEL80Aad7QlI+DJqdToPyB8X6NPg+y4NNijPNeIMONGJBg==", "$scrypt$"},
	// RFC 7914 section 11 (PBKDF2-HMAC-SHA256), hex hash and salt.
	{"pbkdf2-sha256 rfc7914 #1", passwords.Credential{Algorithm: passwords.PBKDF2SHA256, Salt: "73616c74",
		Params: map[string]string{"iterations": "1", "key_length": "64", "encoding": "hex"},
		Hash:   "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"}, "passwd", "Passwd",
		"$pbkdf2-sha256$i=1,l=64$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLxJypzM8Xm2RZkWZLOdd+8xfHG4RbHjC9UJESBB06GXgw", "$pbkdf2-sha256$"},
	{"pbkdf2-sha256 rfc7914 #2", passwords.Credential{Algorithm: passwords.PBKDF2SHA256, Salt: "4e61436c",
		Params: map[string]string{"iterations": "80000", "encoding": "hex"},
		Hash:   "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"}, "Password", "password",
		"", "$pbkdf2-sha256$i=80000,l=64$TmFDbA$"},
	// Django's test_hashers vector and passlib's, from their modular strings.
	{"pbkdf2-sha256 django", passwords.Credential{Algorithm: passwords.PBKDF2SHA256,
		Hash: "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY="}, "lètmein", "letmein",
		"$pbkdf2-sha256$i=10000,l=32$c2Vhc2FsdA$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY", "$pbkdf2-sha256$"},
	{"pbkdf2-sha256 passlib", passwords.Credential{Algorithm: passwords.PBKDF2SHA256,
		Hash: "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ"}, "password", "passw0rd",
		"$pbkdf2-sha256$i=1212,l=32$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg+fJPeq1h/gXXY7acBp9/6c+tmQ", "$pbkdf2-sha256$"},
	{"pbkdf2-sha512 c=1", passwords.Credential{Algorithm: passwords.PBKDF2SHA512, Salt: "salt",
		Params: map[string]string{"iterations": "1", "encoding": "hex", "salt_encoding": "text"},
		Hash:   "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"}, "password", "passwore",
		"", "$pbkdf2-sha512$i=1,l=64$c2FsdA$"},
	{"pbkdf2-sha512 passlib", passwords.Credential{Algorithm: passwords.PBKDF2SHA512,
		Hash: "$pbkdf2-sha512$1212$RHY0Fr3IDMSVO/RSZyb5ow$eNLfBK.eVozomMr.1gYa17k9B7KIK25NOEshvhrSX.esqY3s.FvWZViXz4KoLlQI.BzY/YTNJOiKc5gBYFYGww"}, "password", "Password",
		"", "$pbkdf2-sha512$i=1212,l=64$RHY0Fr3IDMSVO/RSZyb5ow$"},
	// FIPS 180-4's "abc" and RFC 1321's vectors split into salt and password.
	{"sha1 prefix salt", passwords.Credential{Algorithm: passwords.SHA1, Salt: "a", Params: map[string]string{"salt_position": "prefix"},
		Hash: "a9993e364706816aba3e25717850c26c9cd0d89d"}, "bc", "ab",
		"$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$YQ==$qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", "$sha1$"},
	{"sha256 suffix salt", passwords.Credential{Algorithm: passwords.SHA256, Salt: "c", Params: map[string]string{"salt_position": "suffix"},
		Hash: "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}, "ab", "bc",
		"$sha256$pf=e1BBU1NXT1JEfXtTQUxUfQ==$Yw==$ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", "$sha256$"},
	{"sha256 base64 salt", passwords.Credential{Algorithm: passwords.SHA256, Salt: "YQ==",
		Params: map[string]string{"salt_position": "prefix", "encoding": "base64", "salt_encoding": "base64"},
		Hash:   "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="}, "bc", "ab",
		"$sha256$pf=e1NBTFR9e1BBU1NXT1JEfQ==$YQ==$ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", "$sha256$"},
	{"sha512 unsalted", passwords.Credential{Algorithm: passwords.SHA512,
		Hash: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"}, "abc", "abd",
		"", "$sha512$pf=e1BBU1NXT1JEfQ==$$"},
	{"md5 unsalted", passwords.Credential{Algorithm: passwords.MD5, Hash: "900150983cd24fb0d6963f7d28e17f72"}, "abc", "ABC",
		"$md5$kAFQmDzST7DWlj99KOF/cg==", "$md5$"},
	{"md5 prefix salt", passwords.Credential{Algorithm: passwords.MD5, Salt: "message ", Params: map[string]string{"salt_position": "prefix"},
		Hash: "f96b697d7cb7938d525a2f31aaf161d0"}, "digest", "message digest",
		"", "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$bWVzc2FnZSA=$"},
	// The reference implementation's argon2 strings (as passwords' tests).
	{"argon2id reference", passwords.Credential{Algorithm: passwords.Argon2id,
		Hash: "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"}, "password", "Password",
		"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", "$argon2id$"},
	{"argon2i reference, padded", passwords.Credential{Algorithm: passwords.Argon2i,
		Hash: "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8="}, "password", "passwore",
		"$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8", "$argon2i$"},

	// Kratos' own test strings (hash/hasher_test.go), given the way a
	// source hands such hashes over.
	{"kratos pbkdf2-sha256", passwords.Credential{Algorithm: passwords.PBKDF2SHA256,
		Salt: "1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc", Hash: "QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI", Params: map[string]string{"iterations": "100000"}},
		"test", "tesu", "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI", ""},
	{"kratos pbkdf2-sha512", passwords.Credential{Algorithm: passwords.PBKDF2SHA512,
		Salt: "bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU", Hash: "+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc", Params: map[string]string{"iterations": "100000", "key_length": "32"}},
		"test", "Test", "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc", ""},
	{"kratos scrypt", passwords.Credential{Algorithm: passwords.Scrypt,
		Salt: "2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=", Hash: "MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=", Params: map[string]string{"n": "16384", "r": "8", "p": "1"}},
		"test", "tesu", "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=", ""},
	{"kratos sha1", passwords.Credential{Algorithm: passwords.SHA1, Salt: "5opmkgz03r", Params: map[string]string{"salt_position": "prefix", "encoding": "base64"},
		Hash: "2qU2SGWP8viTM1md3FiI3+rjWXQ="}, "test", "tset", "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$2qU2SGWP8viTM1md3FiI3+rjWXQ=", ""},
	{"kratos sha256", passwords.Credential{Algorithm: passwords.SHA256, Salt: "NW9wbWtnejAzcg==", Params: map[string]string{"salt_position": "prefix", "encoding": "base64", "salt_encoding": "base64"},
		Hash: "0gfRVLCvtBCk20udLDEY5vNhujWx7RGjwRIS1ebMsLY="}, "test", "wrongpass", "$sha256$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$0gfRVLCvtBCk20udLDEY5vNhujWx7RGjwRIS1ebMsLY=", ""},
	{"kratos sha512", passwords.Credential{Algorithm: passwords.SHA512, Salt: "356f706d6b677a303372", Params: map[string]string{"salt_position": "prefix", "encoding": "base64", "salt_encoding": "hex"},
		Hash: "6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw=="}, "test", "wrongpass",
		"$sha512$pf=e1NBTFR9e1BBU1NXT1JEfQ==$NW9wbWtnejAzcg==$6ctpVuApMNp0CgBXcdHw/GC562eFEFGr4gpgANX8ZYsX+j5B19IkdmOY2Fytsz3QUwSWdGcUjbqwgJGTH0UYvw==", ""},
	{"kratos md5", passwords.Credential{Algorithm: passwords.MD5, Hash: "098f6bcd4621d373cade4e832627b4f6"}, "test", "tesT", "$md5$CY9rzUYh03PK3k6DJie09g==", ""},
	{"kratos md5 salted", passwords.Credential{Algorithm: passwords.MD5, Salt: "123", Params: map[string]string{"salt_position": "prefix", "encoding": "base64"},
		Hash: "q+RdKCgc+ipCAcm5ChQwlQ=="}, "test", "tesT", "$md5$pf=e1NBTFR9e1BBU1NXT1JEfQ==$MTIz$q+RdKCgc+ipCAcm5ChQwlQ==", ""},
	{"kratos argon2id", passwords.Credential{Algorithm: passwords.Argon2id, Hash: "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw"},
		"test", "tesT", "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw", ""},
}

// TestKratosConversions: every vector converts; the right password
// verifies under the model of Kratos' comparator and a wrong one does
// not; passwords.Verify agrees; and the string is the one expected
// (Kratos' own, for the second group).
func TestKratosConversions(t *testing.T) {
	for _, v := range kratosVectors {
		if ok, err := passwords.Verify(v.cred, []byte(v.password)); !ok || err != nil {
			t.Fatalf("%s: the vector does not verify with passwords.Verify: %v", v.name, err)
		}
		got, err := kratosHash(v.cred)
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if v.want != "" && got != v.want {
			t.Errorf("%s:\n got %s\nwant %s", v.name, got, v.want)
		}
		if !strings.HasPrefix(got, v.prefix) {
			t.Errorf("%s: %s does not start with %s", v.name, got, v.prefix)
		}
		if err := kratosCompare([]byte(v.password), got); err != nil {
			t.Errorf("%s: the right password does not verify in Kratos' form: %v", v.name, err)
		}
		if err := kratosCompare([]byte(v.wrong), got); !errors.Is(err, errKratosMismatch) {
			t.Errorf("%s: a wrong password: %v, want a mismatch", v.name, err)
		}
	}
}

// TestKratosSkips: credentials Kratos cannot verify, or would refuse at
// import, are exported without their password, with a reason that names
// the bound and quotes no secret.
func TestKratosSkips(t *testing.T) {
	argon := func(params string) *passwords.Credential {
		return &passwords.Credential{Algorithm: passwords.Argon2id, Hash: "$argon2id$v=19$" + params + "$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"}
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, note string
		cred       *passwords.Credential
	}{
		// RFC 7914's second vector: p=16 is over Kratos' 10.
		{"scrypt p", "SCRYPT p over 10", &passwords.Credential{Algorithm: passwords.Scrypt, Salt: "NaCl",
			Params: map[string]string{"n": "1024", "r": "8", "p": "16", "encoding": "hex", "salt_encoding": "text"},
			Hash:   "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"}},
		{"scrypt n", "SCRYPT n over 131072", &passwords.Credential{Algorithm: passwords.Scrypt, Salt: "c2FsdA==",
			Params: map[string]string{"n": "262144", "r": "1", "p": "1"}, Hash: "q83vEjRWeJCrze8SNFZ4kA=="}},
		{"scrypt r", "SCRYPT r over 8", &passwords.Credential{Algorithm: passwords.Scrypt, Salt: "c2FsdA==",
			Params: map[string]string{"n": "1024", "r": "16", "p": "1"}, Hash: "q83vEjRWeJCrze8SNFZ4kA=="}},
		{"argon2 t", "ARGON2ID passes t over 10", argon("m=256,t=11,p=2")},
		{"argon2 p", "ARGON2ID lanes p over 16", argon("m=256,t=2,p=17")},
		{"argon2 v=16", "a malformed ARGON2ID credential", &passwords.Credential{Algorithm: passwords.Argon2id,
			Hash: "$argon2id$v=16$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"}},
		{"bcrypt cost", "a bcrypt cost over 15", &passwords.Credential{Algorithm: passwords.Bcrypt, Hash: "$2a$16$" + string(bc[7:])}},
		{"digest salt not base64", "a malformed SHA256 credential", &passwords.Credential{Algorithm: passwords.SHA256, Salt: "c2FsdA*",
			Params: map[string]string{"salt_position": "prefix", "salt_encoding": "base64"}, Hash: strings.Repeat("ab", 32)}},
		{"phpass", "PHPASS hashes cannot be written for kratos", &passwords.Credential{Algorithm: passwords.PHPass, Hash: "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"}},
	} {
		e, _ := New("kratos", Options{})
		body := e.Body(&record.User{UID: "u", Email: sp("u@example.test"), Password: c.cred})
		if _, ok := body["credentials"]; ok || e.Stats.WithHash != 0 {
			t.Errorf("%s: exported with a hash: %v", c.name, body["credentials"])
		}
		found := false
		for n := range e.Stats.Notes {
			found = found || strings.Contains(n, c.note) && strings.Contains(n, "they must reset it")
			for _, secret := range []string{c.cred.Hash, c.cred.Salt} {
				if len(secret) > 4 && strings.Contains(n, secret) {
					t.Errorf("%s: note %q quotes the credential", c.name, n)
				}
			}
		}
		if !found {
			t.Errorf("%s: no note %q in %v", c.name, c.note, e.Stats.Notes)
		}
	}
}

// TestKratosOwnFormsKept: a hash already in Kratos' own form (which
// passwords cannot read as hash + salt + parameters) is still written as
// it is, and the Supabase export of converted algorithms is unchanged.
func TestKratosOwnFormsKept(t *testing.T) {
	own := "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE="
	e, _ := New("kratos", Options{})
	if got := e.hashFor(&record.User{UID: "u", Password: &passwords.Credential{Algorithm: passwords.Scrypt, Hash: own}}); got != own {
		t.Errorf("Kratos' own scrypt form: %q", got)
	}
	scryptCred := kratosVectors[0].cred
	s, _ := New("supabase", Options{})
	if got := s.hashFor(&record.User{UID: "u", Password: &scryptCred}); got != "" {
		t.Errorf("supabase wrote a scrypt hash: %q", got)
	}
}
