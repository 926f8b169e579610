package kratostest_test

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/baasmigrate/baasmigrate/internal/authexport"
	"github.com/baasmigrate/baasmigrate/internal/kratostest"
	"github.com/baasmigrate/baasmigrate/internal/record"
	"github.com/baasmigrate/baasmigrate/passwords"
	"github.com/baasmigrate/baasmigrate/passwords/firebasescrypt"
)

// TestCredentialReadsWhatTheKratosExportWrites makes a credential of each
// algorithm the Kratos export converts, from a known password, exports it
// (authexport, --format kratos), reads the hashed_password back with
// Credential and checks passwords.Verify accepts the password and refuses
// another.
func TestCredentialReadsWhatTheKratosExportWrites(t *testing.T) {
	const pw = "pässwörd ✓"
	salt := []byte("NaCl-salt-16byte")
	b64 := base64.StdEncoding.EncodeToString
	digest := func(h []byte) string { return hex.EncodeToString(h) }
	sha := func(f func([]byte) []byte, pre, post []byte) string {
		return digest(f(append(append(append([]byte(nil), pre...), pw...), post...)))
	}
	pb, err := pbkdf2.Key(sha256.New, pw, salt, 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	pb512, err := pbkdf2.Key(sha512.New, pw, salt, 1000, 64)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scrypt.Key([]byte(pw), salt, 1024, 8, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a2 := argon2.IDKey([]byte(pw), salt, 2, 1024, 1, 32)
	fb, err := firebasescrypt.ParseParams("jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==", "Bw==", 8, 14)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := fb.Hash([]byte(pw), salt)
	if err != nil {
		t.Fatal(err)
	}
	s1 := func(b []byte) []byte { h := sha1.Sum(b); return h[:] }
	s256 := func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
	s512 := func(b []byte) []byte { h := sha512.Sum512(b); return h[:] }
	m5 := func(b []byte) []byte { h := md5.Sum(b); return h[:] }
	creds := map[string]passwords.Credential{
		"firebase scrypt": {Algorithm: passwords.FirebaseScrypt, Hash: b64(fh), Salt: b64(salt), Params: passwords.FirebaseScryptParams(fb)},
		"bcrypt":          {Algorithm: passwords.Bcrypt, Hash: string(bc)},
		"argon2id":        {Algorithm: passwords.Argon2id, Hash: fmt.Sprintf("$argon2id$v=19$m=1024,t=2,p=1$%s$%s", b64(salt), b64(a2))},
		"pbkdf2-sha256":   {Algorithm: passwords.PBKDF2SHA256, Hash: b64(pb), Salt: b64(salt), Params: map[string]string{"iterations": "1000"}},
		"pbkdf2-sha512":   {Algorithm: passwords.PBKDF2SHA512, Hash: b64(pb512), Salt: b64(salt), Params: map[string]string{"iterations": "1000"}},
		"scrypt":          {Algorithm: passwords.Scrypt, Hash: b64(sc), Salt: b64(salt), Params: map[string]string{"n": "1024", "r": "8", "p": "1"}},
		"sha1 prefix":     {Algorithm: passwords.SHA1, Hash: sha(s1, salt, nil), Salt: string(salt), Params: map[string]string{"salt_position": "prefix"}},
		"sha256 suffix":   {Algorithm: passwords.SHA256, Hash: sha(s256, nil, salt), Salt: string(salt), Params: map[string]string{"salt_position": "suffix"}},
		"sha512 unsalted": {Algorithm: passwords.SHA512, Hash: sha(s512, nil, nil)},
		"md5 unsalted":    {Algorithm: passwords.MD5, Hash: sha(m5, nil, nil)},
		"md5 prefix":      {Algorithm: passwords.MD5, Hash: sha(m5, salt, nil), Salt: string(salt), Params: map[string]string{"salt_position": "prefix"}},
	}
	for name, c := range creds {
		t.Run(name, func(t *testing.T) {
			if ok, err := passwords.Verify(c, []byte(pw)); !ok || err != nil {
				t.Fatalf("the source credential does not verify: %v", err)
			}
			exp, err := authexport.New("kratos", authexport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			email := "a@example.test"
			body := exp.Body(&record.User{UID: "u", Email: &email, Password: &c})
			hashed, _ := body["credentials"].(map[string]any)["password"].(map[string]any)["config"].(map[string]any)["hashed_password"].(string)
			if !kratostest.IsValidHashFormat(hashed) {
				t.Fatalf("the export wrote a hash form Kratos refuses")
			}
			kc, err := kratostest.Credential(hashed)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := passwords.Verify(kc, []byte(pw)); !ok || err != nil {
				t.Errorf("the right password: %v, %v", ok, err)
			}
			if ok, err := passwords.Verify(kc, []byte(pw+"x")); ok || err != nil {
				t.Errorf("a wrong password: %v, %v", ok, err)
			}
		})
	}
}

func TestCredentialRefusesWhatKratosDoesNotImport(t *testing.T) {
	for _, h := range []string{"", "plain", "md5:abc", "$P$B12345678"} {
		if kratostest.IsValidHashFormat(h) {
			t.Errorf("%q passes Kratos' import check", h)
		}
		if _, err := kratostest.Credential(h); !errors.Is(err, passwords.ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", h, err)
		}
	}
	for _, h := range []string{"$md5-crypt$abc", "{SSHA}abc", "$hmac-sha256$abc", "$sha512-crypt$x"} {
		if !kratostest.IsValidHashFormat(h) {
			t.Errorf("%q: Kratos imports it", h)
		}
		if _, err := kratostest.Credential(h); !errors.Is(err, kratostest.ErrNotModelled) {
			t.Errorf("%q: %v, want ErrNotModelled", h, err)
		}
	}
	if _, err := kratostest.Credential("$pbkdf2-sha256$i=1000,l=32$c2FsdA$!!!"); err == nil || strings.Contains(err.Error(), "!!!") {
		t.Errorf("a malformed PBKDF2 hash: %v", err)
	}
}
