package firebasescrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/scrypt"

	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt/scrypttest"
)

// Public test vectors. The first configuration and the first two rows are
// the firebase/scrypt README's sample (also in reference/firebase.md); the
// empty-separator and (mem_cost 10, rounds 4) rows come from zitadel/passwap
// passwords/firebasescrypt tests; the last configuration is the one Ory
// Kratos' hash tests use; "mytestpassword" is supabase/auth's
// internal/crypto/password_test.go vector.
const (
	vectorKey  = scrypttest.SignerKey
	vectorSep  = scrypttest.SaltSeparator
	vectorSalt = scrypttest.Salt
)

var vectors = []struct {
	name                   string
	key, sep, salt         string
	rounds, memCost        int
	password, hash         string
	wrongPasswordsToReject []string
}{
	{"readme user1password", vectorKey, vectorSep, vectorSalt, 8, 14, "user1password",
		"lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==", []string{"user1passwor", "User1password", ""}},
	{"readme hunter2", vectorKey, vectorSep, vectorSalt, 8, 14, "hunter2",
		"70k8Vg5B3/OrvJOiqusnasv0dLcBHoDAqJrJr7TRLBfMw4MitWx51YXJYFdGiyMbMeKtWtLf5HiBDcN0SUOm4A==", []string{"hunter3"}},
	{"empty separator", vectorKey, "", vectorSalt, 8, 14, "user1password",
		"NohHtJ2FmkEqzefZ0IHnOlqTzFN8n6vXXd0EW2OIGuUh4rcwvVh7XVRDVs5yOrueoudRPIoimS6jIwf4pMW3rg==", []string{"hunter2"}},
	{"mem_cost 10 rounds 4", vectorKey, vectorSep, vectorSalt, 4, 10, "user1password",
		"EQ0tlNdKv5ZBDYN7ofOYlhhTEe5Tu9bueDmtDUhLPM+9dcS1u1ALgMcT6N1+U9GsDlVdd3FE2dmz37fU5Y8A9Q==", []string{"user2password"}},
	{"kratos vector", "YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyw==", vectorSep, "sPtDhWcd1MfdAw==", 8, 14, "8x4WjoDbSxJZdR",
		"xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==", []string{"8x4WjoDbSxJZdr"}},
	{"supabase vector", "ou9tdYTGyYm8kuR6Dt0Bp0kDuAYoXrK16mbZO4yGwAn3oLspjnN0/c41v8xZnO1n14J3MjKj1b2g6AUCAlFwMw==", vectorSep, "C0sHCg9ek77hsg==", 8, 14, "mytestpassword",
		"zKVTMvnWVw5BBOZNUdnsalx4c4c7y/w7IS5p6Ut2+CfEFFlz37J9huyQfov4iizN8dbjvEJlM5tQaJP84+hfTw==", []string{"mytestpassword1"}},
}

func mustParams(t *testing.T, key, sep string, rounds, memCost int) Params {
	t.Helper()
	p, err := ParseParams(key, sep, rounds, memCost)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			p := mustParams(t, v.key, v.sep, v.rounds, v.memCost)
			got, err := p.Hash([]byte(v.password), mustB64(t, v.salt))
			if err != nil {
				t.Fatal(err)
			}
			if b64 := base64.StdEncoding.EncodeToString(got); b64 != v.hash {
				t.Fatalf("Hash = %s, want %s", b64, v.hash)
			}
			for _, wrong := range v.wrongPasswordsToReject {
				if ok, err := p.VerifyBase64([]byte(wrong), v.salt, v.hash); ok || err != nil {
					t.Fatalf("VerifyBase64(%q) = %v, %v; want false", wrong, ok, err)
				}
			}
		})
	}
}

func TestVerifyAcceptsEveryBase64FlavourFirebaseUses(t *testing.T) {
	v := vectors[0]
	urlSafe := strings.NewReplacer("+", "-", "/", "_")
	p := mustParams(t, urlSafe.Replace(strings.TrimRight(v.key, "=")), strings.TrimRight(v.sep, "="), v.rounds, v.memCost)
	for _, f := range []func(string) string{
		func(s string) string { return s },
		urlSafe.Replace,
		func(s string) string { return strings.TrimRight(urlSafe.Replace(s), "=") },
		func(s string) string { return strings.TrimRight(s, "=") },
	} {
		if ok, err := p.VerifyBase64([]byte(v.password), f(v.salt), f(v.hash)); !ok || err != nil {
			t.Fatalf("VerifyBase64(%s, %s) = %v, %v", f(v.salt), f(v.hash), ok, err)
		}
	}
	if _, err := p.VerifyBase64([]byte(v.password), "!!", v.hash); err == nil || !strings.Contains(err.Error(), "salt") {
		t.Fatalf("bad salt: err = %v, want one naming the salt", err)
	}
}

func TestVerifyRejectsTamperedHashes(t *testing.T) {
	// The cheapest configuration: this test is about the comparison.
	v := vectors[0]
	p := mustParams(t, v.key, v.sep, 1, 1)
	salt := mustB64(t, v.salt)
	hash, err := p.Hash([]byte(v.password), salt)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Verify([]byte(v.password), salt, hash); !ok {
		t.Fatal("the untampered hash does not verify")
	}
	for i := range hash {
		h := bytes.Clone(hash)
		h[i] ^= 1
		if ok, _ := p.Verify([]byte(v.password), salt, h); ok {
			t.Fatalf("a hash with byte %d flipped verified", i)
		}
	}
	for _, h := range [][]byte{nil, hash[:32], append(bytes.Clone(hash), 0)} {
		if ok, _ := p.Verify([]byte(v.password), salt, h); ok {
			t.Fatalf("a hash of %d bytes verified", len(h))
		}
	}
	// A different separator must not verify either.
	other := mustParams(t, v.key, "Cw==", 1, 1)
	if ok, _ := other.Verify([]byte(v.password), salt, hash); ok {
		t.Fatal("verified with the wrong salt separator")
	}
}

func TestParamsValidation(t *testing.T) {
	for _, c := range []struct {
		key, sep        string
		rounds, memCost int
		want            string
	}{
		{"", "Bw==", 8, 14, "signer key is empty"},
		{vectorKey, "Bw==", 0, 14, "rounds"},
		{vectorKey, "Bw==", 9, 14, "rounds"},
		{vectorKey, "Bw==", 8, 0, "memory cost"},
		{vectorKey, "Bw==", 8, 15, "memory cost"},
		{"not base64!", "Bw==", 8, 14, "signer key is not base64"},
		{vectorKey, "@@", 8, 14, "salt separator is not base64"},
	} {
		_, err := ParseParams(c.key, c.sep, c.rounds, c.memCost)
		if !errors.Is(err, ErrInvalidParams) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseParams(%q, %q, %d, %d) = %v, want %q", c.key, c.sep, c.rounds, c.memCost, err, c.want)
		}
		if err != nil && c.key != "" && strings.Contains(err.Error(), c.key) {
			t.Errorf("error %q quotes the signer key", err)
		}
	}
}

func TestParamsNeverPrintTheirSecrets(t *testing.T) {
	p := mustParams(t, vectorKey, "Bw==", 8, 14)
	raw := p.SignerKey()
	forms := []string{
		p.String(), p.GoString(),
		fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %q %x %X", p, p, p, p, p, p, p),
		fmt.Sprintf("%v", []Params{p}), fmt.Sprintf("%+v", struct{ P Params }{p}), fmt.Sprintf("%#v", &p),
	}
	secrets := []string{vectorKey, strings.TrimRight(vectorKey, "="), "Bw==", fmt.Sprintf("%x", raw), fmt.Sprintf("%X", raw), fmt.Sprint(raw), string(raw)}
	for _, f := range forms {
		for _, s := range secrets {
			if strings.Contains(f, s) {
				t.Fatalf("printed form %q contains a secret", f)
			}
		}
		if !strings.Contains(f, "redacted") && !strings.Contains(f, "fingerprint") {
			t.Fatalf("printed form %q does not say what it hides", f)
		}
	}
	if p.Fingerprint() == mustParams(t, vectorKey, "", 8, 14).Fingerprint() {
		t.Fatal("different separators have the same fingerprint")
	}
	if p.Fingerprint() != mustParams(t, strings.TrimRight(vectorKey, "="), "Bw", 8, 14).Fingerprint() {
		t.Fatal("the same parameters, differently encoded, have different fingerprints")
	}
}

// supabaseVerify follows supabase/auth internal/crypto/password.go
// (ParseFirebaseScryptHash, compareHashAndPasswordFirebaseScrypt) at commit
// b1cd2b0: its regular expression, padded standard base64 for every part,
// n as the log2 memory cost, a 32-byte scrypt key, AES-CTR with a zero IV
// over the signer key, constant-time comparison.
func supabaseVerify(t *testing.T, password, encoded string) bool {
	t.Helper()
	re := regexp.MustCompile(`^\$fbscrypt\$v=(?P<v>[0-9]+),n=(?P<n>[0-9]+),r=(?P<r>[0-9]+),p=(?P<p>[0-9]+)(?:,ss=(?P<ss>[^,]+))?(?:,sk=(?P<sk>[^$]+))?\$(?P<salt>[^$]+)\$(?P<hash>.+)$`)
	m := re.FindStringSubmatch(encoded)
	if m == nil {
		t.Fatalf("Supabase's pattern does not match %q", encoded)
	}
	get := func(name string) string { return m[re.SubexpIndex(name)] }
	if get("v") != "1" {
		t.Fatalf("version %q", get("v"))
	}
	n, _ := strconv.ParseUint(get("n"), 10, 32)
	r, _ := strconv.ParseUint(get("r"), 10, 64)
	p, _ := strconv.ParseUint(get("p"), 10, 8)
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("Supabase cannot decode %q: %v", s, err)
		}
		return b
	}
	hash, salt, sk, ss := dec(get("hash")), dec(get("salt")), dec(get("sk")), dec(get("ss"))
	ck, err := scrypt.Key([]byte(password), append(salt, ss...), 1<<n, int(r), int(p), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(ck)
	out := make([]byte, aes.BlockSize+len(sk))
	cipher.NewCTR(block, out[:aes.BlockSize]).XORKeyStream(out[aes.BlockSize:], sk)
	return subtle.ConstantTimeCompare(out[aes.BlockSize:], hash) == 1
}

// kratosVerify follows ory/kratos hash/hash_comparator.go
// (decodeFirebaseScryptHash, CompareFirebaseScrypt): exactly 7 parts split
// on '$', "ln=%d,r=%d,p=%d" with ln the log2 cost, strict padded standard
// base64, salt then hash then separator then signer key.
func kratosVerify(t *testing.T, password, encoded string) bool {
	t.Helper()
	parts := strings.Split(encoded, "$")
	if len(parts) != 7 || parts[1] != "firescrypt" {
		t.Fatalf("Kratos splits %q into %d parts", encoded, len(parts))
	}
	var ln, r, p int
	if _, err := fmt.Sscanf(parts[2], "ln=%d,r=%d,p=%d", &ln, &r, &p); err != nil {
		t.Fatalf("Kratos cannot scan %q: %v", parts[2], err)
	}
	var dec [4][]byte
	for i := range dec {
		b, err := base64.StdEncoding.Strict().DecodeString(parts[3+i])
		if err != nil {
			t.Fatalf("Kratos cannot decode part %d %q: %v", 3+i, parts[3+i], err)
		}
		dec[i] = b
	}
	salt, hash, ss, sk := dec[0], dec[1], dec[2], dec[3]
	ck, err := scrypt.Key([]byte(password), append(salt, ss...), 1<<ln, r, p, 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(ck)
	out := make([]byte, aes.BlockSize+len(sk))
	cipher.NewCTR(block, out[:aes.BlockSize]).XORKeyStream(out[aes.BlockSize:], sk)
	return subtle.ConstantTimeCompare(out[aes.BlockSize:], hash) == 1
}

func TestEncodedFormsVerifyTheWaySupabaseAndKratosDo(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			p := mustParams(t, v.key, v.sep, v.rounds, v.memCost)
			salt, hash := mustB64(t, v.salt), mustB64(t, v.hash)
			sb, err := p.SupabaseHash(salt, hash)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := p.KratosHash(salt, hash)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(sb, SupabasePrefix) || !strings.HasPrefix(kr, KratosPrefix) {
				t.Fatalf("prefixes: %q %q", sb, kr)
			}
			if v.sep == "" && strings.Contains(sb, ",ss=") {
				t.Fatalf("an empty separator must be left out for Supabase: %q", sb)
			}
			if !supabaseVerify(t, v.password, sb) || !kratosVerify(t, v.password, kr) {
				t.Fatal("the right password does not verify by Supabase's or Kratos' rules")
			}
			// (TestVectors checks every wrong password; one suffices here.)
			if wrong := v.wrongPasswordsToReject[0]; supabaseVerify(t, wrong, sb) || kratosVerify(t, wrong, kr) {
				t.Fatalf("wrong password %q verifies", wrong)
			}
			// Our own parser reads both back to the same values.
			for _, enc := range []string{sb, kr} {
				q, s, h, err := ParseEncoded(enc)
				if err != nil {
					t.Fatal(err)
				}
				if q.Fingerprint() != p.Fingerprint() || !bytes.Equal(s, salt) || !bytes.Equal(h, hash) {
					t.Fatalf("ParseEncoded(%q) did not round-trip", enc)
				}
				if enc == kr { // both parse to the same values: verify one
					if ok, err := VerifyEncoded([]byte(v.password), enc); !ok || err != nil {
						t.Fatalf("VerifyEncoded = %v, %v", ok, err)
					}
				}
			}
		})
	}
}

func TestParseEncodedAcceptsTheUpstreamTestStrings(t *testing.T) {
	// Verbatim from supabase/auth password_test.go and the Kratos-format
	// string zitadel/passwap tests against.
	for _, c := range []struct{ enc, pw string }{
		{"$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==,sk=ou9tdYTGyYm8kuR6Dt0Bp0kDuAYoXrK16mbZO4yGwAn3oLspjnN0/c41v8xZnO1n14J3MjKj1b2g6AUCAlFwMw==$C0sHCg9ek77hsg==$zKVTMvnWVw5BBOZNUdnsalx4c4c7y/w7IS5p6Ut2+CfEFFlz37J9huyQfov4iizN8dbjvEJlM5tQaJP84+hfTw==", "mytestpassword"},
		{"$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$" + vectorKey, "user1password"},
	} {
		enc, pw := c.enc, c.pw
		if ok, err := VerifyEncoded([]byte(pw), enc); !ok || err != nil {
			t.Errorf("VerifyEncoded(%q) = %v, %v", enc, ok, err)
		}
		if ok, _ := VerifyEncoded([]byte(pw+"x"), enc); ok {
			t.Errorf("a wrong password verified against %q", enc)
		}
	}
}

func TestParseEncodedRefusesMalformedStrings(t *testing.T) {
	good := "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$bHNyZg==$Bw==$" + vectorKey
	for _, bad := range []string{
		"", "$2y$10$abc", "$fbscrypt$v=2,n=14,r=8,p=1,sk=" + vectorKey + "$YQ==$Yg==",
		"$fbscrypt$v=1,n=14,r=8,p=2,sk=" + vectorKey + "$YQ==$Yg==",
		"$fbscrypt$v=1,n=14,r=8,sk=" + vectorKey + "$YQ==$Yg==",
		"$fbscrypt$v=1,n=14,r=8,p=1,sk=" + vectorKey + "$YQ==",
		"$fbscrypt$v=1,n=x,r=8,p=1,sk=" + vectorKey + "$YQ==$Yg==",
		"$fbscrypt$v=1,n=14,r=8,p=1,zz=1,sk=" + vectorKey + "$YQ==$Yg==",
		good + "$extra", strings.Replace(good, "Bw==", "Bw", 1), strings.Replace(good, "ln=14", "ln=15", 1),
	} {
		if _, _, _, err := ParseEncoded(bad); err == nil {
			t.Errorf("ParseEncoded(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), vectorKey) {
			t.Errorf("error %q quotes the signer key", err)
		}
	}
}

// TestParseEncodedErrorsQuoteNoFragment: ParseEncoded's errors name
// parameters by position or by the names the forms define, never by any
// piece of the string (an unknown or repeated parameter's name included).
func TestParseEncodedErrorsQuoteNoFragment(t *testing.T) {
	own := map[string]bool{"v": true, "n": true, "r": true, "p": true, "ln": true, "ss": true, "sk": true, "fbscrypt": true, "firescrypt": true}
	for _, bad := range []string{
		"$fbscrypt$v=1,n=14,r=8,p=1,Zq9xSecret=1,sk=" + vectorKey + "$YQ==$Yg==",
		"$fbscrypt$v=1,n=14,r=8,p=1,sk=a2V5,sk=a2V5$YQ==$Yg==",
		"$fbscrypt$v=1,Zq9xSecret=1,n=14,r=8,p=1$YQ==$Yg==",
		"$firescrypt$ln=14,r=8,p=1,ln=14$YQ==$Yg==$Bw==$" + vectorKey,
		"$firescrypt$ln=14,r=8,p=1,Zq9xSecret$YQ==$Yg==$Bw==$" + vectorKey,
		"$firescrypt$ln=14,r=8,Zq9xSecret=2$YQ==$Yg==$Bw==$" + vectorKey,
	} {
		_, _, _, err := ParseEncoded(bad)
		if err == nil {
			t.Errorf("ParseEncoded accepted malformed string %d", len(bad))
			continue
		}
		for _, frag := range strings.FieldsFunc(bad, func(r rune) bool { return r == '$' || r == ',' || r == '=' }) {
			if len(frag) < 2 || own[frag] || strings.Trim(frag, "0123456789") == "" {
				continue
			}
			if strings.Contains(err.Error(), frag) {
				t.Errorf("error %q quotes %q, a piece of the hash", err, frag)
			}
		}
	}
}
