package passwords

import (
	"bytes"
	"errors"
	"testing"
)

// Decode reads what Verify reads: for every vector of an algorithm it
// covers, the material it returns is the one verifying used, and a
// credential Check refuses fails Decode the same way.
func TestDecode(t *testing.T) {
	covered := map[string]bool{Scrypt: true, PBKDF2SHA256: true, PBKDF2SHA512: true, SHA1: true, SHA256: true, SHA512: true, MD5: true, Argon2id: true, Argon2i: true}
	n := 0
	for _, v := range vectors {
		if !covered[v.cred.Algorithm] {
			continue
		}
		n++
		d, err := Decode(v.cred)
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if d.Algorithm != v.cred.Algorithm || len(d.Hash) == 0 {
			t.Errorf("%s: decoded %s with a %d-byte hash", v.name, d.Algorithm, len(d.Hash))
		}
	}
	if n < 15 {
		t.Fatalf("only %d vectors decoded", n)
	}
	d, err := Decode(Credential{Algorithm: PBKDF2SHA256, Hash: "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY="})
	if err != nil || d.Iterations != 10000 || !bytes.Equal(d.Salt, []byte("seasalt")) || len(d.Hash) != 32 {
		t.Errorf("django: %+v, %v", d, err)
	}
	d, err = Decode(Credential{Algorithm: Scrypt, Salt: "NaCl", Hash: "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
		Params: map[string]string{"n": "1024", "r": "8", "p": "16", "encoding": "hex", "salt_encoding": "text"}})
	if err != nil || d.N != 1024 || d.R != 8 || d.P != 16 || string(d.Salt) != "NaCl" || len(d.Hash) != 64 {
		t.Errorf("scrypt: %+v, %v", d, err)
	}
	d, err = Decode(Credential{Algorithm: MD5, Salt: "message ", Params: map[string]string{"salt_position": "prefix"}, Hash: "f96b697d7cb7938d525a2f31aaf161d0"})
	if err != nil || d.SaltPosition != "prefix" || string(d.Salt) != "message " || len(d.Hash) != 16 {
		t.Errorf("md5: %+v, %v", d, err)
	}
	for _, m := range malformedCases {
		if !covered[m.cred.Algorithm] {
			continue
		}
		if _, err := Decode(m.cred); !errors.Is(err, ErrMalformed) || Check(m.cred).Error() != err.Error() {
			t.Errorf("%s: Decode says %v, Check %v", m.name, err, Check(m.cred))
		}
	}
	if _, err := Decode(Credential{Algorithm: Bcrypt, Hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bcrypt: %v", err)
	}
}
