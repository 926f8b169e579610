package passwords

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
)

// Salt positions of the salted digests, as Params "salt_position" names
// them.
const (
	saltPrefix = "prefix" // digest(salt ‖ password)
	saltSuffix = "suffix" // digest(password ‖ salt)
	saltNone   = "none"   // digest(password)
)

// decodeDigest reads a salted (or unsalted) SHA-1, SHA-256, SHA-512 or
// MD5 credential: Hash in hex unless Params "encoding" says base64; Salt as
// text unless "salt_encoding" says base64 or hex; "salt_position" says
// where the salt goes and is required when Salt is not empty.
func decodeDigest(c Credential) (Decoded, error) {
	if err := onlyParams(c, "salt_position", "encoding", "salt_encoding"); err != nil {
		return Decoded{}, err
	}
	newHash := digestHash(c.Algorithm)
	pos, given := c.Params["salt_position"]
	switch {
	case given && pos != saltPrefix && pos != saltSuffix && pos != saltNone:
		return Decoded{}, malformed(c, "parameter %q must be %s, %s or %s", "salt_position", saltPrefix, saltSuffix, saltNone)
	case !given && c.Salt != "":
		return Decoded{}, malformed(c, "parameter %q is missing: say whether the salt goes before (%s) or after (%s) the password",
			"salt_position", saltPrefix, saltSuffix)
	case !given:
		pos = saltNone
	case pos == saltNone && c.Salt != "":
		return Decoded{}, malformed(c, "Salt is given but parameter %q is %s", "salt_position", saltNone)
	case pos != saltNone && c.Salt == "":
		return Decoded{}, malformed(c, "parameter %q is %s but Salt is empty", "salt_position", pos)
	}
	hashEnc, saltEnc, err := encodings(c, encHex, encText)
	if err != nil {
		return Decoded{}, err
	}
	want, err := decode(c, "Hash", c.Hash, hashEnc)
	if err != nil {
		return Decoded{}, err
	}
	if size := newHash().Size(); len(want) != size {
		return Decoded{}, malformed(c, "Hash is %d bytes, want %d", len(want), size)
	}
	salt, err := decode(c, "Salt", c.Salt, saltEnc)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Algorithm: c.Algorithm, Hash: want, Salt: salt, SaltPosition: pos}, nil
}

// prepareDigest verifies what decodeDigest read.
func prepareDigest(c Credential) (verifier, error) {
	d, err := decodeDigest(c)
	if err != nil {
		return nil, err
	}
	newHash := digestHash(c.Algorithm)
	return func(password []byte) (bool, error) {
		h := newHash()
		if d.SaltPosition == saltPrefix {
			h.Write(d.Salt)
		}
		h.Write(password)
		if d.SaltPosition == saltSuffix {
			h.Write(d.Salt)
		}
		return equal(h.Sum(nil), d.Hash), nil
	}, nil
}

// digestHash is the digest of SHA1, SHA256, SHA512 or (anything else) MD5.
func digestHash(algorithm string) func() hash.Hash {
	switch algorithm {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return md5.New
}

// itoa64 is the alphabet of phpass' (and crypt(3)'s) base64.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// preparePHPass reads phpass' portable hash: "$P$" or "$H$", one character
// giving the base-2 logarithm of the iteration count (7 to 30, as the
// reference implementation), 8 characters of salt and 22 of hash.
func preparePHPass(c Credential) (verifier, error) {
	if err := noSalt(c); err != nil {
		return nil, err
	}
	h := c.Hash
	if !strings.HasPrefix(h, "$P$") && !strings.HasPrefix(h, "$H$") {
		return nil, malformed(c, "Hash does not start with $P$ or $H$")
	}
	if len(h) != 34 {
		return nil, malformed(c, "Hash is %d characters, want 34", len(h))
	}
	for i := 3; i < len(h); i++ {
		if strings.IndexByte(itoa64, h[i]) < 0 {
			return nil, malformed(c, "Hash has a character outside phpass' alphabet at position %d", i)
		}
	}
	countLog2 := strings.IndexByte(itoa64, h[3])
	if countLog2 < 7 || countLog2 > 30 {
		return nil, malformed(c, "the iteration count in Hash is not 2^7 to 2^30")
	}
	setting, want := h[:12], []byte(h)
	return func(password []byte) (bool, error) {
		return equal(phpassHash(password, setting, countLog2), want), nil
	}, nil
}

// phpassHash computes phpass' portable hash: MD5 of salt ‖ password, then
// 2^countLog2 times MD5 of the previous digest ‖ password, written after
// the 12-character setting in phpass' base64.
func phpassHash(password []byte, setting string, countLog2 int) []byte {
	buf := make([]byte, 0, md5.Size+len(password))
	sum := md5.Sum(append(append(buf, setting[4:12]...), password...))
	for i := 0; i < 1<<countLog2; i++ {
		sum = md5.Sum(append(append(buf[:0], sum[:]...), password...))
	}
	return append([]byte(setting), encode64(sum[:])...)
}

// encode64 is phpass' encode64: 3 bytes at a time, least significant
// first, 6 bits per character; a partial last group writes only the
// characters its bits reach.
func encode64(in []byte) []byte {
	var out []byte
	for i := 0; i < len(in); i += 3 {
		v := uint(in[i])
		n := 2
		if i+1 < len(in) {
			v |= uint(in[i+1]) << 8
			n = 3
		}
		if i+2 < len(in) {
			v |= uint(in[i+2]) << 16
			n = 4
		}
		for j := 0; j < n; j++ {
			out = append(out, itoa64[v>>(6*j)&63])
		}
	}
	return out
}

// emulatorPrefix starts the Firebase Auth emulator's stand-in hash.
const emulatorPrefix = "fakeHash:salt="

// prepareEmulatorFake reads the Auth emulator's "fakeHash:salt=<Salt>:
// password=<password>", which holds the password in clear: a password
// matches when the string rebuilt from it and Salt is Hash.
func prepareEmulatorFake(c Credential) (verifier, error) {
	if err := onlyParams(c); err != nil {
		return nil, err
	}
	head := emulatorPrefix + c.Salt + ":password="
	if !strings.HasPrefix(c.Hash, head) {
		return nil, malformed(c, "Hash is not the emulator's fakeHash:salt=<Salt>:password=… with this Salt")
	}
	want := []byte(c.Hash)
	return func(password []byte) (bool, error) {
		return equal(append([]byte(head), password...), want), nil
	}, nil
}
